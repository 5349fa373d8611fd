"""Necks: feature maps of a generic backbone -> face embedding."""
from .embedding_neck import EmbeddingNeck

__all__ = ['EmbeddingNeck']
