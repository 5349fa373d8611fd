"""SRCNN of Dong, Loy, He, Tang, "Learning a Deep Convolutional Network for Image Super-Resolution", ECCV 2014."""
from typing import Optional, Sequence

import torch
from torch import nn

from lrfr.registry import MODELS
from lrfr.utils.checks import SizeArg, check_positive_int
from .base_sr import PreUpsampleSR, check_kernel_size, init_he_


@MODELS.register_module()
class SRCNN(PreUpsampleSR):
    """SRCNN: patch extraction, non-linear mapping, reconstruction on the bicubic-upsampled image.

    ``y = W3 * ReLU(W2 * ReLU(W1 * bicubic(x) + b1) + b2) + b3`` (no residual: the net
    predicts the HR image itself). Layers and defaults (the paper's 9-1-5 net; 9-5-5 with
    ``kernel_sizes=(9, 5, 5)``)::

        name        kernel   channels
        conv_first  9x9      in -> 64    + ReLU
        body        1x1      64 -> 32    + ReLU
        conv_last   5x5      32 -> in

    Differences from the paper: convolutions are zero-padded by ``k // 2`` so the output
    keeps ``output_size`` (the paper used valid convolutions and cropped the target); it
    works on all ``in_channels`` channels (the paper used the Y channel: with
    ``in_channels=1`` the weights number 8,032 for 9-1-5 and 57,184 for 9-5-5, the paper's
    figures); weights start from He-normal instead of N(0, 0.001^2), so training with
    today's optimisers starts at unit activation scale.

    Args:
        in_channels (int): image channels (in = out). Defaults to 3.
        mid_channels (Sequence[int]): widths of the first two layers. Defaults to (64, 32).
        kernel_sizes (Sequence[int]): kernels of the three layers, odd. Defaults to (9, 1, 5).
        output_size (int | tuple[int, int]): ``(H, W)`` of the output. Defaults to (112, 96).
        init_cfg (dict, optional): mmengine initialisation, e.g. ``Pretrained`` weights of an
            SR-only run (see :class:`PreUpsampleSR`). Defaults to None.

    Example:
        >>> sr = MODELS.build(dict(type='SRCNN', output_size=(112, 96)))
        >>> sr(torch.zeros(1, 3, 28, 24)).shape
        torch.Size([1, 3, 112, 96])
    """

    def __init__(self,
                 in_channels: int = 3,
                 mid_channels: Sequence[int] = (64, 32),
                 kernel_sizes: Sequence[int] = (9, 1, 5),
                 output_size: SizeArg = (112, 96),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(in_channels, output_size, init_cfg)
        if len(mid_channels) != 2:
            raise ValueError(f'mid_channels must have 2 values, got {tuple(mid_channels)}')
        if len(kernel_sizes) != 3:
            raise ValueError(f'kernel_sizes must have 3 values, got {tuple(kernel_sizes)}')
        c1, c2 = (check_positive_int(c, f'mid_channels[{i}]') for i, c in enumerate(mid_channels))
        k1, k2, k3 = (check_kernel_size(k, f'kernel_sizes[{i}]') for i, k in enumerate(kernel_sizes))
        self.conv_first = nn.Conv2d(in_channels, c1, k1, padding=k1 // 2)
        self.body = nn.Sequential(nn.Conv2d(c1, c2, k2, padding=k2 // 2), nn.ReLU(inplace=True))
        self.conv_last = nn.Conv2d(c2, in_channels, k3, padding=k3 // 2)
        self.act = nn.ReLU(inplace=True)
        init_he_(self)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        """LR ``(N, C, h, w)`` -> SR ``(N, C, *output_size)``."""
        x = self.upsample(lr)
        return self.conv_last(self.body(self.act(self.conv_first(x))))
