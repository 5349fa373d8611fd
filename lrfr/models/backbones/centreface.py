"""CentreFace network: the 27-layer residual CNN of Wen et al., "A Discriminative Feature Learning
Approach for Deep Face Recognition", ECCV 2016 (caffe-face ``face_example/face_train_test.prototxt``)."""
from typing import Optional, Sequence

import torch
from torch import nn

from lrfr.registry import MODELS
from .base_backbone import (FaceBackbone, SizeArg, SizeTracer, check_positive_int, check_width_mult,
                            scale_width)
from .blocks import ConvPReLU, caffe_fc, make_prelu_stage

#: Channels of conv1a then of the four stages (conv1b, conv2, conv3, conv4) in the prototxt.
CENTREFACE_CHANNELS = (32, 64, 128, 256, 512)


@MODELS.register_module()
class CentreFaceNet(FaceBackbone):
    """The face CNN trained with softmax + centre loss by Wen et al. (ECCV 2016); the FR part of CSRI.

    Layout at the paper's 112x96 input (all kernels 3x3, PReLU after every convolution;
    transition convolutions stride 1 and unpadded, unit convolutions padded by 1;
    max-pool 2x2 stride 2 in Caffe's ceil mode; a unit is ``x + PReLU(conv(PReLU(conv(x))))``)::

        layer        output        notes
        conv1a       32 x 110x94
        conv1b       64 x 108x92
        pool1b       64 x  54x46
        res2_x       64 x  54x46   1 unit
        conv2       128 x  52x44
        pool2       128 x  26x22
        res3_x      128 x  26x22   2 units
        conv3       256 x  24x20
        pool3       256 x  12x10
        res4_x      256 x  12x10   5 units
        conv4       512 x  10x8
        pool4       512 x   5x4
        res5_x      512 x   5x4    3 units
        fc5         512            from 512*5*4 = 10240 features; the embedding

    The prototxt's unit convolutions have a bias frozen at zero (``lr_mult: 0``); they are
    built without bias here (same function, see :class:`~.blocks.PReLUResUnit`). With
    ``in_channels=3`` and ``input_size=(112, 96)`` this gives 27,536,800 parameters.
    The fc5 width follows from ``input_size``, so a tiny variant (e.g. ``input_size=(48, 40)``,
    ``width_mult=0.125``, ``num_units=(1, 1, 1, 1)``) runs on CPU in tests.

    Args:
        input_size (int | tuple[int, int]): ``(height, width)`` of the input. Defaults to (112, 96).
        embed_dim (int): width of fc5, the embedding. Defaults to 512.
        num_units (Sequence[int]): residual units per stage. Defaults to (1, 2, 5, 3).
        width_mult (float): multiplier of every channel count (32/64/128/256/512). Defaults to 1.0.
        in_channels (int): image channels. Defaults to 3.
        init_cfg (dict, optional): mmengine initialisation config (:class:`FaceBackbone`). Defaults to None.

    Example:
        >>> net = MODELS.build(dict(type='CentreFaceNet'))
        >>> net(torch.zeros(2, 3, 112, 96)).shape
        torch.Size([2, 512])
    """

    def __init__(self,
                 input_size: SizeArg = (112, 96),
                 embed_dim: int = 512,
                 num_units: Sequence[int] = (1, 2, 5, 3),
                 width_mult: float = 1.0,
                 in_channels: int = 3,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(input_size, embed_dim, in_channels, init_cfg=init_cfg)
        if len(num_units) != 4:
            raise ValueError(f'num_units must give 4 stages, got {tuple(num_units)}')
        self.num_units = tuple(check_positive_int(n, f'num_units[{i}]', minimum=0)
                               for i, n in enumerate(num_units))
        width_mult = check_width_mult(width_mult)
        chs = [scale_width(c, width_mult) for c in CENTREFACE_CHANNELS]

        sizes = SizeTracer(type(self).__name__, self.input_size)
        sizes.apply('conv1a', 3)
        self.conv1a = ConvPReLU(in_channels, chs[0], 3, 1, 0)
        stages = []
        for i, n in enumerate(self.num_units):
            sizes.apply(f'stage {i + 1} transition conv', 3)
            sizes.apply(f'stage {i + 1} max-pool', 2, 2, ceil_mode=True)
            stages.append(make_prelu_stage(chs[i], chs[i + 1], n, stride=1, padding=0, pool=True))
        self.stages = nn.Sequential(*stages)
        self.feature_size = sizes.size
        self.fc5 = caffe_fc(chs[-1], sizes.size, self.embed_dim)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc5(self.stages(self.conv1a(x)).flatten(1))
