"""Python API: checkpoint loading (and inference helpers)."""
from .checkpoint import load_checkpoint_strict

__all__ = ['load_checkpoint_strict']
