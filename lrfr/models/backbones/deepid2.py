"""DeepID2 network of Sun, Wang, Tang, "Deep Learning Face Representation by Joint
Identification-Verification", NIPS 2014 (one ConvNet of the ensemble)."""
from typing import Optional

import torch
from torch import nn

from lrfr.registry import MODELS
from .base_backbone import FaceBackbone, SizeArg, SizeTracer, check_width_mult, scale_width
from .blocks import LocallyConnected2d

#: Output channels of the four feature-extraction layers (Fig. 1 of the paper).
DEEPID2_CHANNELS = (20, 40, 60, 80)


@MODELS.register_module()
class DeepID2(FaceBackbone):
    """One DeepID2 ConvNet: conv, conv, locally shared conv, locally connected, then the 160-d DeepID2 layer.

    Layout at the paper's 55x47 rectangular patch (ReLU after every weight layer; max-pool
    2x2 stride 2; the DeepID2 layer is fully connected to both the pooled third layer and
    the fourth layer, so it sees two scales)::

        layer    type                                   kernel   output
        conv1    convolution                            4x4      20 x 52x44
        pool1    max-pool                                        20 x 26x22
        conv2    convolution                            3x3      40 x 24x20
        pool2    max-pool                                        40 x 12x10
        conv3    locally connected, shared in 2x2       3x3      60 x 10x8   (5x4 filter sets)
        pool3    max-pool                                        60 x 5x4
        conv4    locally connected, unshared            2x2      80 x 4x3    (12 filter sets)
        deepid2  fc on [pool3, conv4] = 1200 + 960 features      160

    What is simplified with respect to the paper, and why:

    * one ConvNet on one region (the whole aligned face at ``input_size``) instead of
      200 ConvNets on 200 patches (regions x scales x RGB/grey) of which 25 are greedily
      selected and their 25 x 160-d features concatenated and PCA-reduced to 180-d: an
      ensemble of per-patch nets is outside a backbone's job, and the LRFR paper's
      low-resolution faces have no detail to crop patches from;
    * the joint identification-verification loss is not part of the backbone; any lrfr
      head (softmax, centre loss, margins) trains the 160-d embedding;
    * ``input_size`` is an argument (default 55x47, the paper's rectangular patch); the
      locally connected layers, whose number of filters depends on the map size, are
      sized for it.

    Args:
        input_size (int | tuple[int, int]): ``(height, width)``. Defaults to (55, 47).
        embed_dim (int): width of the DeepID2 layer. Defaults to 160.
        width_mult (float): multiplier of the channels 20/40/60/80. Defaults to 1.0.
        share_size (int | tuple[int, int]): weight-sharing region of conv3. Defaults to 2.
        in_channels (int): image channels. Defaults to 3.
        init_cfg (dict, optional): mmengine initialisation config (:class:`FaceBackbone`). Defaults to None.

    Example:
        >>> net = MODELS.build(dict(type='DeepID2'))
        >>> net(torch.zeros(1, 3, 55, 47)).shape
        torch.Size([1, 160])
    """

    def __init__(self,
                 input_size: SizeArg = (55, 47),
                 embed_dim: int = 160,
                 width_mult: float = 1.0,
                 share_size: SizeArg = 2,
                 in_channels: int = 3,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(input_size, embed_dim, in_channels, init_cfg=init_cfg)
        width_mult = check_width_mult(width_mult)
        c1, c2, c3, c4 = (scale_width(c, width_mult) for c in DEEPID2_CHANNELS)
        sizes = SizeTracer(type(self).__name__, self.input_size)
        sizes.apply('conv1', 4)
        sizes.apply('pool1', 2, 2)
        sizes.apply('conv2', 3)
        conv3_in = sizes.apply('pool2', 2, 2)
        sizes.apply('conv3', 3)
        conv4_in = sizes.apply('pool3', 2, 2)
        conv4_out = sizes.apply('conv4', 2)

        self.conv1 = nn.Sequential(nn.Conv2d(in_channels, c1, 4), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2))
        self.conv2 = nn.Sequential(nn.Conv2d(c1, c2, 3), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2))
        self.conv3 = nn.Sequential(LocallyConnected2d(c2, c3, 3, conv3_in, share_size=share_size),
                                   nn.ReLU(inplace=True), nn.MaxPool2d(2, 2))
        self.conv4 = nn.Sequential(LocallyConnected2d(c3, c4, 2, conv4_in), nn.ReLU(inplace=True))
        self.fc = nn.Linear(c3 * conv4_in[0] * conv4_in[1] + c4 * conv4_out[0] * conv4_out[1], self.embed_dim)
        self.act = nn.ReLU(inplace=True)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        pool3 = self.conv3(self.conv2(self.conv1(x)))
        conv4 = self.conv4(pool3)
        # DeepID2 layer: y = ReLU(W3 pool3 + W4 conv4 + b), one linear map on the concatenation.
        return self.act(self.fc(torch.cat([pool3.flatten(1), conv4.flatten(1)], dim=1)))
