"""Pixel losses for super-resolution, attached by the config (the SR nets hold no loss)."""
import torch
from torch import nn

from lrfr.registry import MODELS


def check_same_shape(loss: str, pred: torch.Tensor, target: torch.Tensor) -> None:
    """SR output and HR target must match pixel for pixel."""
    if pred.shape != target.shape:
        raise ValueError(f'{loss}: prediction {tuple(pred.shape)} and target {tuple(target.shape)} '
                         'differ; the SR output size must equal the HR target size')


@MODELS.register_module()
class EuclideanLoss(nn.Module):
    """Caffe's EuclideanLoss, the SR loss of VDSR and of CSRI's eq. (1): ``1/(2N) * sum_n ||sr_n - hr_n||_2^2``.

    The squared L2 norm is summed over the pixels of each image and averaged over the batch, as in the
    caffe training of VDSR that CSRI builds on. This scale matters: the paper's ``lambda_sr = 0.003`` weighs a
    *per-image sum*; a per-pixel mean would make the SR term ~30,000x smaller at 112x96x3.

    Args:
        loss_weight (float): multiplies the loss. Defaults to 1.0.
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        check_same_shape('EuclideanLoss', pred, target)
        diff = (pred.float() - target.float()).flatten(1)
        return self.loss_weight * diff.pow(2).sum(1).mean() / 2

