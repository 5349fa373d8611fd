"""Python API: strict checkpoint loading and inference (embed faces, enrol a gallery, identify)."""
from .checkpoint import load_checkpoint_strict
from .inference import FaceGallery, extract_embeddings, init_model

__all__ = ['load_checkpoint_strict', 'init_model', 'extract_embeddings', 'FaceGallery']
