"""Shared base of lrfr's face-recognition backbones, and the argument checks they use.

A backbone maps an image batch ``(N, C, H, W)`` at a fixed ``input_size`` to an
embedding ``(N, embed_dim)``. The face nets here end in a fully connected layer on
the flattened last feature map (caffe-face, SphereFace, VGG-Face, DeepID2,
ArcFace's IResNet), so the input size fixes that layer's width: it is derived once,
by the output-size formula below, and checked on every forward so that a wrong
image size fails with a message instead of a shape error deep inside a matmul.
"""
from typing import Optional, Tuple

import torch
from mmengine.model import BaseModule

from lrfr.utils.checks import SizeArg, check_positive_int, to_size_pair


def scale_width(channels: int, width_mult: float) -> int:
    """``channels * width_mult`` rounded, at least 1 (for the tiny variants used in CPU tests)."""
    return max(1, int(round(channels * width_mult)))


def check_width_mult(width_mult: float) -> float:
    """Return ``width_mult`` as a float if it is a positive number; raise otherwise."""
    if isinstance(width_mult, bool) or not isinstance(width_mult, (int, float)) or width_mult <= 0:
        raise ValueError(f'width_mult must be a positive number, got {width_mult!r}')
    return float(width_mult)


def conv_out_size(size: int, kernel: int, stride: int = 1, padding: int = 0,
                  ceil_mode: bool = False) -> int:
    """Output length along one axis of a convolution or pooling, PyTorch's formula.

    ``out = floor((size + 2p - k + (s - 1 if ceil_mode else 0)) / s) + 1``; in ceil
    mode the last window must start inside the input (or left padding), as in
    ``torch.nn.MaxPool2d(ceil_mode=True)`` and Caffe's pooling. A result ``< 1``
    means the feature map vanished.

    Args:
        size (int): input length.
        kernel (int): kernel length.
        stride (int): stride. Defaults to 1.
        padding (int): padding on each side. Defaults to 0.
        ceil_mode (bool): round up (Caffe pooling) instead of down. Defaults to False.
    """
    numerator = size + 2 * padding - kernel + (stride - 1 if ceil_mode else 0)
    out = numerator // stride + 1  # floor division, as PyTorch's div_rtn
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


class SizeTracer:
    """Follows the spatial size of a feature map through a backbone's layers at build time.

    Raises a ``ValueError`` naming the backbone, its ``input_size`` and the layer at
    which the map vanished, which is how a too-small input is reported.

    Args:
        owner (str): backbone name for messages.
        input_size (tuple[int, int]): ``(height, width)`` of the input image.
    """

    def __init__(self, owner: str, input_size: Tuple[int, int]) -> None:
        self.owner = owner
        self.input_size = input_size
        self.size = input_size

    def apply(self, layer: str, kernel: int, stride: int = 1, padding: int = 0,
              ceil_mode: bool = False) -> Tuple[int, int]:
        """Update the size by one conv/pool layer and return it."""
        h, w = (conv_out_size(s, kernel, stride, padding, ceil_mode) for s in self.size)
        if h < 1 or w < 1:
            raise ValueError(
                f'{self.owner}: input_size={self.input_size} is too small: the feature map '
                f'({self.size[0]}x{self.size[1]}) vanishes at {layer} (kernel {kernel}, stride {stride}, '
                f'padding {padding}); use a larger input_size')
        self.size = (h, w)
        return self.size


class FaceBackbone(BaseModule):
    """Base of the face backbones: fixed input size in, ``(N, embed_dim)`` embedding out.

    Subclasses build their layers, set ``embed_dim`` and implement ``forward_features``
    (image -> embedding); :meth:`forward` checks the input first. Like mmpretrain's
    ``BaseBackbone`` it is an mmengine ``BaseModule``: a subclass applies its own
    initialisation while it builds its layers (``reset_parameters``), and ``init_cfg``
    runs afterwards, when the runner calls ``init_weights()``, e.g. to load the
    backbone of a trained face model.

    Args:
        input_size (int | tuple[int, int]): ``(height, width)`` the net is built for.
        embed_dim (int): embedding width.
        in_channels (int): image channels. Defaults to 3.
        init_cfg (dict, optional): mmengine initialisation config, e.g.
            ``dict(type='Pretrained', checkpoint='work_dirs/<fr config>/final.pth', prefix='backbone.')``.
            Defaults to None.
    """

    def __init__(self, input_size: SizeArg, embed_dim: int, in_channels: int = 3,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.input_size = to_size_pair(input_size, 'input_size')
        self.embed_dim = check_positive_int(embed_dim, 'embed_dim')
        self.in_channels = check_positive_int(in_channels, 'in_channels')

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a ``ValueError`` unless ``x`` is ``(N, in_channels, *input_size)``."""
        expected = (self.in_channels, *self.input_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f'{type(self).__name__} expects images of shape (N, {expected[0]}, '
                             f'{expected[1]}, {expected[2]}) (input_size={self.input_size}), '
                             f'got {tuple(x.shape)}')

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Image ``(N, C, H, W)`` -> embedding ``(N, embed_dim)``."""
        self.check_input(x)
        return self.forward_features(x)

    def extra_repr(self) -> str:
        return f'input_size={self.input_size}, embed_dim={self.embed_dim}'
