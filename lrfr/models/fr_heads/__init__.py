"""Classification heads and losses that train face embeddings (softmax, centre loss, margins)."""
from .asoftmax_head import ASoftmaxHead, chebyshev_cos
from .base_head import BaseEmbeddingHead, BaseFaceHead
from .center_loss import CenterLoss
from .composite_head import CompositeHead
from .margin_head import AdaFaceHead, ArcFaceHead, BaseMarginHead, CosFaceHead, CosineMarginHead, MarginHead
from .norm_linear import NormLinear
from .partial_fc import PartialFCHead, ddp_ignore_sharded
from .softmax_head import SoftmaxHead

__all__ = [
    'BaseEmbeddingHead', 'BaseFaceHead', 'NormLinear', 'SoftmaxHead', 'CenterLoss', 'CompositeHead',
    'BaseMarginHead', 'CosineMarginHead', 'MarginHead', 'CosFaceHead', 'ArcFaceHead', 'AdaFaceHead',
    'ASoftmaxHead', 'chebyshev_cos', 'PartialFCHead', 'ddp_ignore_sharded'
]
