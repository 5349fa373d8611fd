"""Python API: checkpoints (strict loading, the published ``final.pth``), inference (embed faces), persistent
galleries with faiss / torch search (enrol, save, load, identify) and export (ONNX, TorchScript)."""
from .checkpoint import FINAL_CHECKPOINT, last_checkpoint, load_checkpoint_strict, publish_final_checkpoint
from .gallery import GALLERY_VERSION, FaceGallery, model_fingerprint
from .index import BruteForceIndex, FaissIndex, build_index
from .inference import extract_embeddings, init_model, iter_embeddings

__all__ = ['FINAL_CHECKPOINT', 'last_checkpoint', 'load_checkpoint_strict', 'publish_final_checkpoint',
           'init_model', 'extract_embeddings', 'iter_embeddings', 'FaceGallery', 'GALLERY_VERSION',
           'model_fingerprint', 'BruteForceIndex', 'FaissIndex', 'build_index']
