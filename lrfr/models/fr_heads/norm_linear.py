"""Linear layer with L2-normalised weight rows, computed in float32 with autocast off."""
import torch
import torch.nn.functional as F
from torch import nn

from lrfr.utils.checks import check_positive_int
from .base_head import upcast


class NormLinear(nn.Module):
    """``y = x @ normalize(W)^T``: inner products of ``x`` with unit class vectors, no bias.

    The shared classifier of the angular-margin heads (CosFace, ArcFace, AdaFace,
    SphereFace's A-Softmax): with ``||W_j|| = 1`` the logit of class ``j`` is
    ``||x|| cos(theta_j)``, so feeding normalised ``x`` gives ``cos(theta_j)``.

    The product runs in float32 (float64 inputs stay float64) with autocast disabled: in bfloat16 a cosine has
    only ~3 significant digits, an error that the scale ``s = 64`` and the
    margins would then amplify (InsightFace and mmpretrain's margin heads keep
    this part in full precision for the same reason).

    Args:
        in_features (int): embedding size ``D``.
        out_features (int): number of classes ``C``.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features = check_positive_int(in_features, 'in_features')
        self.out_features = check_positive_int(out_features, 'out_features')
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """nn.Linear's initialisation: row norms about 0.58 whatever ``D`` is.

        Only the direction of a row matters to the logits, but its norm sets the
        effective step size of the optimiser (a gradient step rotates a short row
        more), so a ``D``-independent norm keeps learning rates portable.
        """
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, D)`` -> ``(N, C)`` inner products with the unit class vectors, at least float32."""
        with torch.autocast(device_type=x.device.type, enabled=False):
            x = upcast(x)
            weight = F.normalize(self.weight.to(x.dtype), dim=1)
            return F.linear(x, weight)

    def extra_repr(self) -> str:
        return f'in_features={self.in_features}, out_features={self.out_features}'
