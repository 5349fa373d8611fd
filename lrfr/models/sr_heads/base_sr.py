"""Base of the pre-upsampling SR heads (SRCNN, VDSR, DRRN): bicubic to the output size, then a CNN."""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn

from lrfr.utils.checks import SizeArg, check_positive_int, to_size_pair


class PreUpsampleSR(BaseModule):
    """An SR head that first interpolates the LR image to ``output_size``, then refines it with a CNN.

    SRCNN, VDSR and DRRN all take the bicubic-upsampled image as input (the "pre-upsampling"
    family); doing the interpolation inside the head lets one model accept LR faces of any
    size and always return the FR input size. Interpolation is PyTorch's bicubic
    (``align_corners=False``, Keys kernel with a=-0.75 as in OpenCV; MATLAB's imresize used
    by the papers has a=-0.5, a small difference at edges). An input already at
    ``output_size`` is passed through untouched. Subclasses define ``conv_first``, ``body``,
    ``conv_last`` and :meth:`forward`.

    Args:
        in_channels (int): image channels (in = out). Defaults to 3.
        output_size (int | tuple[int, int]): ``(H, W)`` of the SR output, the FR input size.
            Defaults to (112, 96).
        init_cfg (dict, optional): mmengine initialisation, e.g. the weights of an SR-only run:
            ``dict(type='Pretrained', checkpoint='work_dirs/<sr config>/final.pth', prefix='sr.')``.
    """

    def __init__(self, in_channels: int = 3, output_size: SizeArg = (112, 96),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = check_positive_int(in_channels, 'in_channels')
        self.output_size: Tuple[int, int] = to_size_pair(output_size, 'output_size')

    def upsample(self, lr: torch.Tensor) -> torch.Tensor:
        """Check ``lr`` is ``(N, in_channels, h, w)`` and bicubic-resize it to ``output_size``."""
        if lr.dim() != 4 or lr.shape[1] != self.in_channels:
            raise ValueError(f'{type(self).__name__} expects LR images of shape (N, {self.in_channels}, h, w), '
                             f'got {tuple(lr.shape)}')
        if tuple(lr.shape[-2:]) == self.output_size:
            return lr
        return F.interpolate(lr, size=self.output_size, mode='bicubic', align_corners=False)

    def extra_repr(self) -> str:
        return f'in_channels={self.in_channels}, output_size={self.output_size}'


def check_kernel_size(value: int, name: str) -> int:
    """An odd positive kernel size, so that ``padding = k // 2`` keeps the map size."""
    value = check_positive_int(value, name)
    if value % 2 == 0:
        raise ValueError(f'{name} must be odd to keep the image size with padding k // 2, got {value}')
    return value


def init_he_(module: nn.Module) -> None:
    """He (MSRA) normal initialisation of every convolution, zero biases (VDSR sec. 3; DRRN's prototxt)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode='fan_in', nonlinearity='relu')
            if m.bias is not None:
                nn.init.zeros_(m.bias)
