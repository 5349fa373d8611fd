"""Python API: checkpoints (strict loading, the published ``final.pth``) and inference (embed faces, enrol a
gallery, identify)."""
from .checkpoint import FINAL_CHECKPOINT, last_checkpoint, load_checkpoint_strict, publish_final_checkpoint
from .inference import FaceGallery, extract_embeddings, init_model

__all__ = ['FINAL_CHECKPOINT', 'last_checkpoint', 'load_checkpoint_strict', 'publish_final_checkpoint',
           'init_model', 'extract_embeddings', 'FaceGallery']
