"""Datasets, samplers and transforms."""
from .samplers import *  # noqa: F401,F403
from .transforms import *  # noqa: F401,F403
from .base_face import BaseFaceDataset  # noqa: F401,E402
from .celeba import CelebADataset  # noqa: F401,E402
from .face_folder import FaceFolderDataset, FaceListDataset  # noqa: F401,E402
from .packed import PackedFaceDataset  # noqa: F401,E402
from .mx_face import MXFaceDataset  # noqa: F401,E402
from .tinyface import TinyFaceDataset  # noqa: F401,E402
from .demo import DemoHRFaceDataset, DemoTinyFaceDataset  # noqa: F401,E402
