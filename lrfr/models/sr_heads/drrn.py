"""DRRN of Tai, Yang, Liu, "Image Super-Resolution via Deep Recursive Residual Network", CVPR 2017."""
from typing import Callable, Optional

import torch
from torch import nn

from lrfr.registry import MODELS
from lrfr.utils.checks import SizeArg, check_positive_int
from .base_sr import PreUpsampleSR, check_kernel_size, init_he_

NormLayer = Optional[Callable[[int], nn.Module]]


def _norm(norm_layer: NormLayer, channels: int) -> nn.Module:
    return nn.Identity() if norm_layer is None else norm_layer(channels)


class PreActConv(nn.Sequential):
    """Pre-activation convolution ``conv(ReLU(BN(x)))`` (He et al., ECCV 2016), DRRN's layer.

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        kernel_size (int): odd kernel, padded by ``k // 2``.
        norm_layer (callable, optional): ``norm_layer(channels)`` before the activation; None for none.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, norm_layer: NormLayer) -> None:
        super().__init__()
        self.norm = _norm(norm_layer, in_channels)
        self.act = nn.ReLU(inplace=False)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)


class RecursiveBlock(nn.Module):
    """DRRN recursive block: U residual units sharing one pair of convolutions.

    ``H_u = g(H_{u-1}) + H_0`` for ``u = 1..U`` (eq. 6 of the paper: every unit's identity
    branch is the block input ``H_0``, the "multi-path" structure), with
    ``g(h) = conv_b(ReLU(BN_b,u(conv_a(ReLU(BN_a,u(h))))))``. The two convolutions
    (weights and biases) are shared by the U units; the batch norms are not: each unit
    has its own, as in the authors' Caffe prototxts, where only the convolution
    parameters are named for sharing (``RB1_wa``/``RB1_wb``) since a shared BN would mix
    the statistics of different depths.

    Args:
        channels (int): width of the block.
        num_units (int): U, the number of recursions.
        kernel_size (int): odd kernel of both convolutions.
        norm_layer (callable, optional): normalisation before each activation; None for none.
    """

    def __init__(self, channels: int, num_units: int, kernel_size: int, norm_layer: NormLayer) -> None:
        super().__init__()
        self.num_units = num_units
        self.conv_a = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2)
        self.conv_b = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2)
        self.norms_a = nn.ModuleList(_norm(norm_layer, channels) for _ in range(num_units))
        self.norms_b = nn.ModuleList(_norm(norm_layer, channels) for _ in range(num_units))
        self.act = nn.ReLU(inplace=False)

    def forward(self, h0: torch.Tensor) -> torch.Tensor:
        h = h0
        for norm_a, norm_b in zip(self.norms_a, self.norms_b):
            h = self.conv_b(self.act(norm_b(self.conv_a(self.act(norm_a(h)))))) + h0
        return h


class DRRNStage(nn.Sequential):
    """One DRRN stage after the first: an entry :class:`PreActConv` then a :class:`RecursiveBlock`.

    The entry convolution's output is the block's ``H_0``.
    """

    def __init__(self, channels: int, num_units: int, kernel_size: int, norm_layer: NormLayer) -> None:
        super().__init__()
        self.entry = PreActConv(channels, channels, kernel_size, norm_layer)
        self.block = RecursiveBlock(channels, num_units, kernel_size, norm_layer)


@MODELS.register_module()
class DRRN(PreUpsampleSR):
    """DRRN: B recursive blocks of U weight-shared residual units, with global residual learning.

    ``y = x_up + f(x_up)``, ``x_up = bicubic(x)``. Every convolution is pre-activated by
    BN + ReLU, as in the authors' released Caffe models (``DRRN_B1U9_20C128``,
    ``DRRN_B1U25_52C128``: BatchNorm + Scale + ReLU before every convolution, the first
    one on the input image included). Set
    ``norm_layer=None`` for the BN-free variant of several PyTorch ports. Depth is
    ``(1 + 2U) * B + 1`` convolutions (52 for B1U25)::

        name         content                                              channels
        conv_first   BN-ReLU-conv (entry of block 1)                      in -> 128
        body[0]      recursive block: U units sharing conv_a, conv_b      128
        body[b>0]    entry BN-ReLU-conv, then a recursive block           128
        conv_last    BN-ReLU-conv                                         128 -> in

    Parameter count (3x3 kernels, C = in_channels, m = mid_channels, B = num_blocks,
    U = num_units): convolutions ``(9*C*m + m) + B*2*(9*m*m + m) + (B-1)*(9*m*m + m)
    + (9*m*C + C)``, BN scales and shifts ``2C + 2m*(2UB + B - 1) + 2m``. The paper's
    "297K" for B1U25 is the Y-channel convolution weights alone:
    ``9*128 + 2*9*128*128 + 9*128 = 297,216``.

    Args:
        in_channels (int): image channels (in = out). Defaults to 3.
        mid_channels (int): width of the network. Defaults to 128.
        num_blocks (int): B, recursive blocks. Defaults to 1.
        num_units (int): U, residual units per block. Defaults to 25.
        kernel_size (int): odd kernel of every convolution. Defaults to 3.
        output_size (int | tuple[int, int]): ``(H, W)`` of the output. Defaults to (112, 96).
        norm_layer (callable, optional): ``norm_layer(channels)`` before each ReLU.
            Defaults to ``nn.BatchNorm2d``; None drops normalisation.
        init_cfg (dict, optional): mmengine initialisation, e.g. ``Pretrained`` weights of an
            SR-only run (see :class:`PreUpsampleSR`). Defaults to None.

    Example:
        >>> sr = MODELS.build(dict(type='DRRN', num_units=9, output_size=(112, 96)))
        >>> sr(torch.zeros(2, 3, 16, 14)).shape
        torch.Size([2, 3, 112, 96])
    """

    def __init__(self,
                 in_channels: int = 3,
                 mid_channels: int = 128,
                 num_blocks: int = 1,
                 num_units: int = 25,
                 kernel_size: int = 3,
                 output_size: SizeArg = (112, 96),
                 norm_layer: NormLayer = nn.BatchNorm2d,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(in_channels, output_size, init_cfg)
        m = check_positive_int(mid_channels, 'mid_channels')
        self.num_blocks = check_positive_int(num_blocks, 'num_blocks')
        self.num_units = check_positive_int(num_units, 'num_units')
        k = check_kernel_size(kernel_size, 'kernel_size')
        if norm_layer is not None and not callable(norm_layer):
            raise TypeError(f'norm_layer must be a layer class such as nn.BatchNorm2d, or None, got {norm_layer!r}')
        self.conv_first = PreActConv(in_channels, m, k, norm_layer)
        blocks = [RecursiveBlock(m, num_units, k, norm_layer)]
        blocks += [DRRNStage(m, num_units, k, norm_layer) for _ in range(num_blocks - 1)]
        self.body = nn.Sequential(*blocks)
        self.conv_last = PreActConv(m, in_channels, k, norm_layer)
        init_he_(self)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        """LR ``(N, C, h, w)`` -> SR ``(N, C, *output_size)``."""
        x = self.upsample(lr)
        return x + self.conv_last(self.body(self.conv_first(x)))
