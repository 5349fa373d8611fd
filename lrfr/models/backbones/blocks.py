"""Layers shared by the face backbones.

* :class:`ConvPReLU` and :class:`PReLUResUnit`: the building blocks of the caffe-face
  network (Wen et al., ECCV 2016) and of SphereFace's sphere20a/64a (Liu et al., CVPR
  2017), which share one design: a transition convolution with PReLU, then residual
  units ``x + PReLU(conv(PReLU(conv(x))))`` with no activation after the sum.
* :class:`LocallyConnected2d`: a convolution whose filters are not shared across
  positions (DeepID, DeepID2; Sun et al. 2014), optionally shared within blocks of
  positions (DeepID2's third layer shares weights in 2x2 regions).
"""
import math
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn

from lrfr.utils.checks import SizeArg, check_positive_int, to_size_pair
from .base_backbone import conv_out_size


def caffe_xavier_(weight: torch.Tensor) -> None:
    """Caffe's ``xavier`` filler: ``U(-sqrt(3 / fan_in), sqrt(3 / fan_in))``.

    ``kaiming_uniform_`` with ``a=1`` has gain 1, hence exactly this bound.
    """
    nn.init.kaiming_uniform_(weight, a=1)


def caffe_fc(in_channels: int, map_size: Tuple[int, int], out_features: int) -> nn.Linear:
    """The caffe-face ``fc5`` on a flattened ``in_channels x H x W`` map: xavier weights, zero bias."""
    fc = nn.Linear(in_channels * map_size[0] * map_size[1], out_features)
    caffe_xavier_(fc.weight)
    nn.init.zeros_(fc.bias)
    return fc


class ConvPReLU(nn.Sequential):
    """Convolution with bias followed by a per-channel PReLU (caffe-face / SphereFace transition layer).

    Initialised as in the released prototxts: Caffe ``xavier`` weights, zero bias,
    PReLU slopes 0.25.

    Args:
        in_channels (int): input channels.
        out_channels (int): output channels.
        kernel_size (int): square kernel. Defaults to 3.
        stride (int): stride. Defaults to 1.
        padding (int): zero padding. Defaults to 0 (caffe-face transitions are unpadded).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 1, padding: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=True)
        self.act = nn.PReLU(out_channels)
        caffe_xavier_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)


class PReLUResUnit(nn.Module):
    """Residual unit ``y = x + PReLU(conv2(PReLU(conv1(x))))`` of caffe-face and SphereFace.

    Both convolutions are 3x3, stride 1, padding 1. In the released prototxts their
    bias has ``lr_mult: 0`` and a zero filler, i.e. it stays zero: we build them
    without bias, which computes the same function and counts the learnable
    parameters honestly. Weights start from ``N(0, 0.01^2)`` as there, so a fresh
    unit is close to the identity.

    Args:
        channels (int): input = output channels.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.act1 = nn.PReLU(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.act2 = nn.PReLU(channels)
        for conv in (self.conv1, self.conv2):
            nn.init.normal_(conv.weight, std=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.act2(self.conv2(self.act1(self.conv1(x))))


def make_prelu_stage(in_channels: int, out_channels: int, num_units: int, stride: int,
                     padding: int, pool: bool) -> nn.Sequential:
    """One stage of caffe-face / SphereFace: transition ``ConvPReLU`` (+ max-pool), then residual units.

    Args:
        in_channels (int): input channels.
        out_channels (int): channels of the stage.
        num_units (int): number of :class:`PReLUResUnit`.
        stride (int): stride of the transition convolution.
        padding (int): padding of the transition convolution.
        pool (bool): add Caffe's 2x2/2 max-pool (ceil mode) after the transition.
    """
    layers = [ConvPReLU(in_channels, out_channels, 3, stride, padding)]
    if pool:
        # Caffe rounds pooled sizes up; ceil_mode keeps odd inputs identical to it.
        layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
    layers += [PReLUResUnit(out_channels) for _ in range(num_units)]
    return nn.Sequential(*layers)


class LocallyConnected2d(nn.Module):
    """2-D locally connected layer: a convolution with a different filter at each output position.

    ``y[n, o, i, j] = b[r(i, j), o] + sum_{c, u, v} W[r(i, j), o, c, u, v] * x[n, c, s*i + u - p, s*j + v - p]``
    where ``r(i, j) = (i // share_h, j // share_w)`` is the weight-sharing region of
    output position ``(i, j)``. ``share_size=(1, 1)`` gives fully unshared weights
    (DeepID2's fourth layer); ``(2, 2)`` shares each filter within 2x2 output blocks
    (DeepID2's third layer, following DeepID, Sun et al. CVPR 2014, eq. 1). Because the
    number of filters depends on the output size, so does the input size; it is fixed
    at construction.

    Implemented as unfold + batched matmul: one ``(N, C*k*k) @ (C*k*k, O)`` product per
    output position. The region index of each position is a buffer computed once.

    Args:
        in_channels (int): input channels ``C``.
        out_channels (int): output channels ``O``.
        kernel_size (int): square kernel ``k``.
        input_size (int | tuple[int, int]): ``(height, width)`` of the input map.
        stride (int): stride ``s``. Defaults to 1.
        padding (int): zero padding ``p``. Defaults to 0.
        share_size (int | tuple[int, int]): output positions per shared filter. Defaults to 1 (unshared).
        bias (bool): add a bias per region and channel. Defaults to True.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 input_size: SizeArg, stride: int = 1, padding: int = 0, share_size: SizeArg = 1,
                 bias: bool = True) -> None:
        super().__init__()
        self.in_channels = check_positive_int(in_channels, 'in_channels')
        self.out_channels = check_positive_int(out_channels, 'out_channels')
        self.kernel_size = check_positive_int(kernel_size, 'kernel_size')
        self.stride = check_positive_int(stride, 'stride')
        self.padding = check_positive_int(padding, 'padding', minimum=0)
        self.input_size = to_size_pair(input_size, 'input_size')
        self.share_size = to_size_pair(share_size, 'share_size')
        self.output_size: Tuple[int, int] = tuple(
            conv_out_size(s, self.kernel_size, self.stride, self.padding) for s in self.input_size)
        if min(self.output_size) < 1:
            raise ValueError(f'LocallyConnected2d: input_size={self.input_size} is too small for '
                             f'kernel_size={kernel_size}, stride={stride}, padding={padding}')
        # Regions cover the output map; the last row/column of regions may be partial.
        self.num_regions: Tuple[int, int] = tuple(
            math.ceil(o / s) for o, s in zip(self.output_size, self.share_size))
        fan_in = self.in_channels * self.kernel_size ** 2
        self.weight = nn.Parameter(torch.empty(*self.num_regions, self.out_channels, fan_in))
        self.bias = nn.Parameter(torch.empty(*self.num_regions, self.out_channels)) if bias else None
        oh, ow = self.output_size
        rows = torch.arange(oh) // self.share_size[0]
        cols = torch.arange(ow) // self.share_size[1]
        # Flat region index of each output position, row-major like F.unfold's column order.
        self.register_buffer('region_index', (rows[:, None] * self.num_regions[1] + cols[None, :]).flatten(),
                             persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Same distribution as ``nn.Conv2d``'s default: ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``."""
        bound = 1.0 / math.sqrt(self.weight.shape[-1])
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != (self.in_channels, *self.input_size):
            raise ValueError(f'LocallyConnected2d expects (N, {self.in_channels}, {self.input_size[0]}, '
                             f'{self.input_size[1]}), got {tuple(x.shape)}')
        n = x.shape[0]
        cols = F.unfold(x, self.kernel_size, padding=self.padding, stride=self.stride)  # (N, C*k*k, L)
        weight = self.weight.flatten(0, 1)[self.region_index]  # (L, O, C*k*k)
        out = torch.matmul(cols.permute(2, 0, 1), weight.transpose(1, 2))  # (L, N, O)
        if self.bias is not None:
            out = out + self.bias.flatten(0, 1)[self.region_index].unsqueeze(1)
        return out.permute(1, 2, 0).reshape(n, self.out_channels, *self.output_size)

    def extra_repr(self) -> str:
        return (f'{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, '
                f'input_size={self.input_size}, stride={self.stride}, padding={self.padding}, '
                f'share_size={self.share_size}, output_size={self.output_size}')
