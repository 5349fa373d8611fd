"""Losses that are not heads: the pixel loss of the SR term."""
from .pixel_loss import EuclideanLoss

__all__ = ['EuclideanLoss']
