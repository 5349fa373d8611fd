"""AdaFace's IR nets (Kim, Jain & Liu, "AdaFace: Quality Adaptive Margin for Face Recognition", CVPR 2022),
the ``ir_18/34/50/101`` backbones of the public ``mk-minchul/AdaFace`` repository (``net.py``)."""
from typing import Dict, Optional, Tuple

from lrfr.registry import MODELS
from .base_backbone import SizeArg
from .iresnet import IResNet


@MODELS.register_module()
class AdaFaceIR(IResNet):
    """AdaFace's IR-18/34/50/101: an :class:`IResNet` with two differences in the layout.

    AdaFace's ``Backbone`` (``net.py``, after face.evoLVe / TFace) stacks the same
    BN-Conv-BN-PReLU-Conv-BN units with the stride on the second convolution, but

    * a strided unit that keeps its width (the first unit of stage 1, 64 -> 64) has a
      parameter-free shortcut that keeps every second pixel (``MaxPool2d(1, 2)``)
      where InsightFace's IResNet has a 1x1 convolution + BN;
    * the embedding BN1d has no scale or shift (``affine=False``), only running statistics;
    * its output layer has a dropout of 0.4 before the FC (inactive at test time).

    Its ``ir_101`` is the 100-layer net (stages of 3, 13, 30, 3 units), as in AdaFace's
    ``IR_101``. AdaFace's forward returns the unit-length embedding and its norm; here the
    backbone returns the embedding before normalisation (their product), so the norm stays
    available: the metric's ``l2_normalize`` divides it out, and flip fusion by summing these
    un-normalised embeddings is AdaFace's norm-weighted fusion (docs/model_zoo.md). Module
    names are lrfr's :class:`IResNet` names; ``tools/model_converters/adaface_ir.py`` maps
    AdaFace's ``input_layer / body / output_layer`` checkpoints onto them.

    Args:
        depth (int): 18, 34, 50 or 100 (AdaFace's ``ir_101``). Defaults to 50.
        input_size (int | tuple[int, int]): ``(height, width)``. Defaults to (112, 112).
        embed_dim (int): embedding width. Defaults to 512.
        dropout (float): dropout before the FC. Defaults to 0.4 (AdaFace's).
        width_mult (float): multiplier of the widths 64/128/256/512. Defaults to 1.0.
        in_channels (int): image channels. Defaults to 3.
        init_cfg (dict, optional): mmengine initialisation config. Defaults to None.
    """

    arch_settings: Dict[int, Tuple[int, int, int, int]] = {
        depth: units for depth, units in IResNet.arch_settings.items() if depth <= 100}
    subsample_shortcut = True
    embedding_bn_affine = False

    def __init__(self,
                 depth: int = 50,
                 input_size: SizeArg = (112, 112),
                 embed_dim: int = 512,
                 dropout: float = 0.4,
                 width_mult: float = 1.0,
                 in_channels: int = 3,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(depth=depth, input_size=input_size, embed_dim=embed_dim, dropout=dropout,
                         width_mult=width_mult, in_channels=in_channels, init_cfg=init_cfg)
