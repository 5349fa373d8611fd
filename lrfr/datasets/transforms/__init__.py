"""Face data transforms: loading, LR synthesis (bicubic / realistic degradation), resize, flip, packing."""
from .crop_bbox import CropBBox  # noqa: F401,E402  (dataset engineer: CelebA in-the-wild boxes)
from .formatting import PackFaceInputs
from .loading import FaceImageError, LoadFaceImage, load_face_image
from .lr_synthesis import BicubicDownsample, RandomDegradation
from .processing import RandomHFlip, ResizeFace

__all__ = [
    'BicubicDownsample', 'CropBBox', 'FaceImageError', 'LoadFaceImage', 'PackFaceInputs',
    'RandomDegradation', 'RandomHFlip', 'ResizeFace', 'load_face_image'
]
