"""VDSR of Kim, Lee, Lee, "Accurate Image Super-Resolution Using Very Deep Convolutional Networks", CVPR 2016."""
from typing import Optional

import torch
from torch import nn

from lrfr.registry import MODELS
from lrfr.utils.checks import SizeArg, check_positive_int
from .base_sr import PreUpsampleSR, check_kernel_size, init_he_


@MODELS.register_module()
class VDSR(PreUpsampleSR):
    """VDSR: a 20-layer plain CNN predicting the residual between the HR image and its bicubic estimate.

    ``y = x_up + f(x_up)`` with ``x_up = bicubic(x)`` and ``f`` = ``num_layers`` 3x3
    convolutions, ReLU after all but the last (global residual learning, the paper's
    key idea). The SR head of CSRI (Cheng et al., ACCV 2018)::

        name        layers            channels
        conv_first  1 conv + ReLU     in -> 64
        body        18 conv + ReLU    64 -> 64
        conv_last   1 conv            64 -> in

    Parameters: ``(9*in*64 + 64) + 18*(9*64*64 + 64) + (9*64*in + in)``, i.e. 668,227 for
    RGB and 665,921 for the paper's Y channel (``in_channels=1``), the "about 665k". Zero
    padding keeps the size, as in the paper. He-normal initialisation (the paper's).

    Args:
        in_channels (int): image channels (in = out). Defaults to 3.
        mid_channels (int): width of the hidden layers. Defaults to 64.
        num_layers (int): number of convolutions, at least 2. Defaults to 20.
        kernel_size (int): odd kernel of every layer. Defaults to 3.
        output_size (int | tuple[int, int]): ``(H, W)`` of the output. Defaults to (112, 96).
        bias (bool): convolutions with bias. Defaults to True.
        init_cfg (dict, optional): mmengine initialisation, e.g. ``Pretrained`` weights of an
            SR-only run (see :class:`PreUpsampleSR`). Defaults to None.

    Example:
        >>> sr = MODELS.build(dict(type='VDSR', output_size=(112, 96)))
        >>> sr(torch.zeros(1, 3, 16, 14)).shape
        torch.Size([1, 3, 112, 96])
    """

    def __init__(self,
                 in_channels: int = 3,
                 mid_channels: int = 64,
                 num_layers: int = 20,
                 kernel_size: int = 3,
                 output_size: SizeArg = (112, 96),
                 bias: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(in_channels, output_size, init_cfg)
        mid_channels = check_positive_int(mid_channels, 'mid_channels')
        self.num_layers = check_positive_int(num_layers, 'num_layers', minimum=2)
        k = check_kernel_size(kernel_size, 'kernel_size')
        self.conv_first = nn.Conv2d(in_channels, mid_channels, k, padding=k // 2, bias=bias)
        body = []
        for _ in range(num_layers - 2):
            body += [nn.Conv2d(mid_channels, mid_channels, k, padding=k // 2, bias=bias), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*body)
        self.conv_last = nn.Conv2d(mid_channels, in_channels, k, padding=k // 2, bias=bias)
        self.act = nn.ReLU(inplace=True)
        init_he_(self)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        """LR ``(N, C, h, w)`` -> SR ``(N, C, *output_size)``."""
        x = self.upsample(lr)
        return x + self.conv_last(self.body(self.act(self.conv_first(x))))
