"""IResNet: the "improved" ResNets of ArcFace (Deng et al., "ArcFace: Additive Angular Margin Loss
for Deep Face Recognition", CVPR 2019), as in InsightFace's ``arcface_torch/backbones/iresnet.py``."""
from typing import Dict, Optional, Tuple

import torch
from torch import nn

from lrfr.registry import MODELS
from .base_backbone import FaceBackbone, SizeArg, SizeTracer, check_width_mult, scale_width

#: Widths of the four stages.
IRESNET_CHANNELS = (64, 128, 256, 512)


class IBasicBlock(nn.Module):
    """ArcFace's improved residual unit: ``y = shortcut(x) + BN(conv(PReLU(BN(conv(BN(x))))))``.

    Both convolutions are 3x3 without bias; the stride sits on the second one (ArcFace's
    "BN-Conv-BN-PReLU-Conv-BN" unit). The shortcut is a 1x1
    strided convolution + BN when the shape changes, the identity otherwise. With
    ``subsample_shortcut`` a strided unit that keeps the width takes every ``stride``-th
    pixel instead (a parameter-free ``MaxPool2d(1, stride)``, AdaFace's ``BasicBlockIR``);
    InsightFace's IResNet uses the convolution there too.

    Args:
        in_channels (int): input channels.
        channels (int): output channels.
        stride (int): stride of the second convolution. Defaults to 1.
        subsample_shortcut (bool): parameter-free shortcut for strided units of unchanged
            width. Defaults to False.
    """

    def __init__(self, in_channels: int, channels: int, stride: int = 1,
                 subsample_shortcut: bool = False) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels, eps=1e-5)
        self.conv1 = nn.Conv2d(in_channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels, eps=1e-5)
        self.prelu = nn.PReLU(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels, eps=1e-5)
        self.downsample: Optional[nn.Module] = None
        if subsample_shortcut and in_channels == channels and stride != 1:
            self.downsample = nn.MaxPool2d(1, stride)
        elif stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride, bias=False),
                                            nn.BatchNorm2d(channels, eps=1e-5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x)))))
        return self.bn3(out) + identity


@MODELS.register_module()
class IResNet(FaceBackbone):
    """ArcFace's IResNet-18/34/50/100/200 (Deng et al., CVPR 2019; InsightFace ``arcface_torch``).

    Layout at 112x112 (at 112x96 the maps are 56x48, 28x24, 14x12, 7x6)::

        layer    blocks (18/34/50/100/200)   channels   output
        conv1    3x3 conv, BN, PReLU         64         112x112
        layer1   2 / 3 / 3  / 3  / 6         64         56x56
        layer2   2 / 4 / 4  / 13 / 26        128        28x28
        layer3   2 / 6 / 14 / 30 / 60        256        14x14
        layer4   2 / 3 / 3  / 3  / 6         512        7x7
        output   BN2d, dropout, flatten, FC, BN1d   embed_dim (from 512*7*7)

    The first unit of each layer has stride 2. Module names follow InsightFace's so its
    state dicts load directly (``tools/model_converters/insightface_iresnet.py`` checks
    and converts a ``backbone.pth``); as there, the last BN1d's scale is fixed to 1 (not
    trained), convolutions start from N(0, 0.1^2) and BN from (1, 0). The FC width
    follows ``input_size``; ``width_mult`` scales every width for tiny CPU variants. At
    112x112 with a 512-d embedding the parameter counts (the frozen BN scale included) are
    24,025,600 / 34,139,328 / 43,590,848 / 65,156,160 for depths 18 / 34 / 50 / 100.

    Args:
        depth (int): 18, 34, 50, 100 or 200. Defaults to 50.
        input_size (int | tuple[int, int]): ``(height, width)``, 112x112 or 112x96 in practice.
            Defaults to (112, 112).
        embed_dim (int): embedding width. Defaults to 512.
        dropout (float): dropout before the FC. Defaults to 0.0.
        width_mult (float): multiplier of the widths 64/128/256/512. Defaults to 1.0.
        in_channels (int): image channels. Defaults to 3.
        init_cfg (dict, optional): mmengine initialisation config (:class:`FaceBackbone`). Defaults to None.

    Example:
        >>> net = MODELS.build(dict(type='IResNet', depth=18, input_size=(112, 96)))
        >>> net.eval()(torch.zeros(1, 3, 112, 96)).shape
        torch.Size([1, 512])
    """

    arch_settings: Dict[int, Tuple[int, int, int, int]] = {
        18: (2, 2, 2, 2),
        34: (3, 4, 6, 3),
        50: (3, 4, 14, 3),
        100: (3, 13, 30, 3),
        200: (6, 26, 60, 6),
    }
    #: Shortcut of strided units that keep their width (see :class:`IBasicBlock`).
    subsample_shortcut: bool = False
    #: Whether the embedding BN1d has a scale and shift (a frozen scale of 1 here).
    embedding_bn_affine: bool = True

    def __init__(self,
                 depth: int = 50,
                 input_size: SizeArg = (112, 112),
                 embed_dim: int = 512,
                 dropout: float = 0.0,
                 width_mult: float = 1.0,
                 in_channels: int = 3,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(input_size, embed_dim, in_channels, init_cfg=init_cfg)
        if depth not in self.arch_settings:
            raise ValueError(f'{type(self).__name__} depth must be one of {sorted(self.arch_settings)}, got {depth!r}')
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f'dropout must be in [0, 1), got {dropout}')
        self.depth = depth
        width_mult = check_width_mult(width_mult)
        chs = [scale_width(c, width_mult) for c in IRESNET_CHANNELS]

        sizes = SizeTracer(type(self).__name__, self.input_size)
        self.conv1 = nn.Conv2d(in_channels, chs[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(chs[0], eps=1e-5)
        self.prelu = nn.PReLU(chs[0])
        prev = chs[0]
        for i, (n, c) in enumerate(zip(self.arch_settings[depth], chs)):
            sizes.apply(f'layer{i + 1}', 3, 2, 1)
            blocks = [IBasicBlock(prev, c, stride=2, subsample_shortcut=self.subsample_shortcut)]
            blocks += [IBasicBlock(c, c) for _ in range(n - 1)]
            self.add_module(f'layer{i + 1}', nn.Sequential(*blocks))
            prev = c
        self.feature_size = sizes.size
        self.bn2 = nn.BatchNorm2d(prev, eps=1e-5)
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(prev * sizes.size[0] * sizes.size[1], self.embed_dim)
        self.features = nn.BatchNorm1d(self.embed_dim, eps=1e-5, affine=self.embedding_bn_affine)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """InsightFace's initialisation: conv ~ N(0, 0.1^2), BN (1, 0), embedding BN scale fixed at 1."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0, 0.1)
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)) and m.affine:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if self.features.affine:
            self.features.weight.requires_grad_(False)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(self.bn2(x).flatten(1))
        return self.features(self.fc(x))
