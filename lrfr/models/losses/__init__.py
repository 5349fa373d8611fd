from .pixel_loss import EuclideanLoss, PixelMSELoss

__all__ = ['EuclideanLoss', 'PixelMSELoss']
