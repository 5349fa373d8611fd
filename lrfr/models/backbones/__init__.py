"""FR backbones: image ``(N, 3, H, W)`` -> embedding ``(N, embed_dim)``."""
from .adaface_ir import AdaFaceIR
from .base_backbone import FaceBackbone
from .blocks import LocallyConnected2d
from .centreface import CentreFaceNet
from .deepid2 import DeepID2
from .iresnet import IResNet
from .sphereface import SphereFaceNet
from .vggface import VGGFace

__all__ = ['AdaFaceIR', 'FaceBackbone', 'LocallyConnected2d', 'CentreFaceNet', 'DeepID2', 'IResNet',
           'SphereFaceNet', 'VGGFace']
