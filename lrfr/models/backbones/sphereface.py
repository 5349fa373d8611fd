"""SphereFace networks (sphere4/10/20/36/64) of Liu et al., "SphereFace: Deep Hypersphere Embedding
for Face Recognition", CVPR 2017 (released ``sphereface_deploy.prototxt``, ``sphereface_64_model.prototxt``)."""
from typing import Dict, Optional, Tuple

import torch
from torch import nn

from lrfr.registry import MODELS
from .base_backbone import FaceBackbone, SizeArg, SizeTracer, check_width_mult, scale_width
from .blocks import caffe_fc, make_prelu_stage

#: Channels of the four stages.
SPHERE_CHANNELS = (64, 128, 256, 512)


@MODELS.register_module()
class SphereFaceNet(FaceBackbone):
    """The SphereFace CNN (Liu et al., CVPR 2017); sphere20a is the model of the LRFR paper's Table 3.

    Four stages, each a 3x3 stride-2 padded convolution with bias + PReLU, then residual
    units ``x + PReLU(conv(PReLU(conv(x))))`` (3x3, stride 1, padding 1, no bias: the
    prototxt freezes that bias at zero); fc5 on the flattened map gives the embedding.
    Units per stage by depth (Table 2 of the paper; depth counts the convolutions,
    ``4 + 2 * sum(units)``)::

        depth   units per stage
        4       0, 0, 0, 0
        10      0, 1, 2, 0
        20      1, 2, 4, 1     (sphere20a)
        36      2, 4, 8, 2
        64      3, 8, 16, 3    (sphere64a)

    Feature map sizes at the paper's 112x96 input::

        stage   output
        conv1    64 x 56x48
        conv2   128 x 28x24
        conv3   256 x 14x12
        conv4   512 x  7x6
        fc5     512          from 512*7*6 = 21504 features

    sphere20a at 112x96 has 22,666,944 parameters and sphere64a 48,186,816 (hand count in the tests).

    Args:
        depth (int): 4, 10, 20, 36 or 64. Defaults to 20.
        input_size (int | tuple[int, int]): ``(height, width)``. Defaults to (112, 96).
        embed_dim (int): width of fc5. Defaults to 512.
        width_mult (float): multiplier of the stage widths 64/128/256/512. Defaults to 1.0.
        in_channels (int): image channels. Defaults to 3.
        init_cfg (dict, optional): mmengine initialisation config (:class:`FaceBackbone`). Defaults to None.

    Example:
        >>> net = MODELS.build(dict(type='SphereFaceNet', depth=20))
        >>> net(torch.zeros(1, 3, 112, 96)).shape
        torch.Size([1, 512])
    """

    arch_settings: Dict[int, Tuple[int, int, int, int]] = {
        4: (0, 0, 0, 0),
        10: (0, 1, 2, 0),
        20: (1, 2, 4, 1),
        36: (2, 4, 8, 2),
        64: (3, 8, 16, 3),
    }

    def __init__(self,
                 depth: int = 20,
                 input_size: SizeArg = (112, 96),
                 embed_dim: int = 512,
                 width_mult: float = 1.0,
                 in_channels: int = 3,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(input_size, embed_dim, in_channels, init_cfg=init_cfg)
        if depth not in self.arch_settings:
            raise ValueError(f'SphereFaceNet depth must be one of {sorted(self.arch_settings)}, got {depth!r}')
        self.depth = depth
        self.num_units = self.arch_settings[depth]
        width_mult = check_width_mult(width_mult)
        chs = [in_channels] + [scale_width(c, width_mult) for c in SPHERE_CHANNELS]

        sizes = SizeTracer(type(self).__name__, self.input_size)
        stages = []
        for i, n in enumerate(self.num_units):
            sizes.apply(f'conv{i + 1}_1', 3, 2, 1)
            stages.append(make_prelu_stage(chs[i], chs[i + 1], n, stride=2, padding=1, pool=False))
        self.stages = nn.Sequential(*stages)
        self.feature_size = sizes.size
        self.fc5 = caffe_fc(chs[-1], sizes.size, self.embed_dim)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc5(self.stages(x).flatten(1))

    def extra_repr(self) -> str:
        return f'depth={self.depth}, ' + super().extra_repr()
