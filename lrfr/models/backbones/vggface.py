"""VGG-Face: the VGG-16 face descriptor of Parkhi, Vedaldi, Zisserman, "Deep Face Recognition", BMVC 2015."""
from typing import Optional, Sequence

import torch
from torch import nn

from lrfr.registry import MODELS
from .base_backbone import (FaceBackbone, SizeArg, SizeTracer, check_positive_int, check_width_mult,
                            scale_width)

#: VGG-16 (configuration D of Simonyan & Zisserman 2015): convolutions per block and block widths.
VGG16_CONVS = (2, 2, 3, 3, 3)
VGG16_CHANNELS = (64, 128, 256, 512, 512)


@MODELS.register_module()
class VGGFace(FaceBackbone):
    """VGG-16 face network (Parkhi et al., BMVC 2015); the embedding is fc7 (the input of the classifier fc8).

    Layout (3x3 convolutions, stride 1, padding 1, ReLU; max-pool 2x2 stride 2, rounded down)::

        block   convs   channels   output at 224x224   at 112x96
        conv1   2       64         112x112             56x48
        conv2   2       128        56x56               28x24
        conv3   3       256        28x28               14x12
        conv4   3       512        14x14               7x6
        conv5   3       512        7x7                 3x3
        fc6     -       4096       from 512*7*7        from 512*3*3
        fc7     -       4096       the embedding

    fc6 and fc7 are followed by ReLU and dropout (p=0.5) as in VGG-16, so the embedding
    is the activation that feeds the identity classifier (the paper's descriptor). The
    paper's input is 224x224: there the net has 134,260,544 parameters (torchvision's
    VGG-16 count, 138,357,544, minus its 1000-way fc8). For other input sizes fc6 is
    sized to the map left by conv5 (the "adapted to the input size" of the LRFR paper's
    re-training); ``fc_dim`` and ``width_mult`` make small variants.

    Args:
        input_size (int | tuple[int, int]): ``(height, width)``. Defaults to (224, 224).
        fc_dim (int): width of fc6 and fc7, hence ``embed_dim``. Defaults to 4096.
        width_mult (float): multiplier of the conv widths 64/.../512. Defaults to 1.0.
        dropout (float): dropout after fc6 and fc7. Defaults to 0.5.
        num_convs (Sequence[int]): convolutions per block. Defaults to (2, 2, 3, 3, 3) (VGG-16).
        in_channels (int): image channels. Defaults to 3.
        init_cfg (dict, optional): mmengine initialisation config (:class:`FaceBackbone`). Defaults to None.

    Example:
        >>> net = MODELS.build(dict(type='VGGFace', input_size=(112, 96)))
        >>> net.eval()(torch.zeros(1, 3, 112, 96)).shape
        torch.Size([1, 4096])
    """

    def __init__(self,
                 input_size: SizeArg = (224, 224),
                 fc_dim: int = 4096,
                 width_mult: float = 1.0,
                 dropout: float = 0.5,
                 num_convs: Sequence[int] = VGG16_CONVS,
                 in_channels: int = 3,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(input_size, fc_dim, in_channels, init_cfg=init_cfg)
        if len(num_convs) != 5:
            raise ValueError(f'num_convs must give 5 blocks, got {tuple(num_convs)}')
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f'dropout must be in [0, 1), got {dropout}')
        width_mult = check_width_mult(width_mult)
        self.num_convs = tuple(check_positive_int(n, f'num_convs[{i}]') for i, n in enumerate(num_convs))

        sizes = SizeTracer(type(self).__name__, self.input_size)
        layers, prev = [], in_channels
        for i, (n, c) in enumerate(zip(self.num_convs, VGG16_CHANNELS)):
            c = scale_width(c, width_mult)
            for _ in range(n):
                layers += [nn.Conv2d(prev, c, 3, 1, 1), nn.ReLU(inplace=True)]
                prev = c
            sizes.apply(f'pool{i + 1}', 2, 2)
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        self.feature_size = sizes.size
        self.fc6 = nn.Linear(prev * sizes.size[0] * sizes.size[1], fc_dim)
        self.fc7 = nn.Linear(fc_dim, fc_dim)
        self.act = nn.ReLU(inplace=True)
        self.drop = nn.Dropout(dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torchvision's VGG initialisation: Kaiming-normal (fan-out) convolutions, N(0, 0.01) fc, zero biases."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x).flatten(1)
        x = self.drop(self.act(self.fc6(x)))
        return self.drop(self.act(self.fc7(x)))
