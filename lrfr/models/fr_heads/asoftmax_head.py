"""A-Softmax, the angular softmax of SphereFace (Liu et al., CVPR 2017), in its original form."""
import math
from typing import Any, Tuple

import torch

from lrfr.registry import MODELS
from lrfr.utils.checks import check_positive_int
from .base_head import BaseFaceHead, upcast
from .norm_linear import NormLinear


def chebyshev_cos(cos: torch.Tensor, m: int) -> torch.Tensor:
    """``cos(m theta)`` from ``cos(theta)`` by the Chebyshev recursion ``T_{n+1} = 2c T_n - T_{n-1}``.

    ``T_m(cos theta) = cos(m theta)``: e.g. ``T_4(c) = 8c^4 - 8c^2 + 1``. A polynomial
    has a finite slope everywhere, unlike ``cos(m * acos(c))`` at ``c = +-1``.

    Args:
        cos (Tensor): cosines, any shape.
        m (int): multiplier, ``m >= 0``.
    """
    prev, cur = torch.ones_like(cos), cos
    if m == 0:
        return prev
    for _ in range(m - 1):
        prev, cur = cur, 2 * cos * cur - prev
    return cur


@MODELS.register_module()
class ASoftmaxHead(BaseFaceHead):
    """A-Softmax loss of SphereFace (Liu et al. 2017), as its caffe ``MarginInnerProduct`` layer.

    Class vectors are normalised, there is no bias and the feature is *not*
    normalised, so the plain logit is ``||x|| cos(theta_j)``. The target logit
    gets the multiplicative angular margin ``m`` through

    ``psi(theta) = (-1)^k cos(m theta) - 2k`` for ``theta`` in ``[k pi/m, (k+1) pi/m]``,

    ``cos(m theta)`` from the Chebyshev polynomial (``8c^4 - 8c^2 + 1`` for ``m = 4``)
    and ``k`` from comparing ``cos(theta)`` with the buffer of ``cos(j pi / m)``,
    so ``k`` is piecewise constant and ``psi`` continuous and decreasing. As in the
    caffe layer, training blends it with the plain logit to ease optimisation:

    ``logit_y = ||x|| (lambda cos(theta_y) + psi(theta_y)) / (1 + lambda)``,

    ``lambda = asoftmax_lambda`` being annealed by :class:`ASoftmaxLambdaHook`
    (``max(lambda_min, base (1 + gamma iter)^(-power))``; SphereFace uses
    base=1000, gamma=0.12, power=1, lambda_min=5). Computed in float32 (or float64)
    with autocast disabled.

    Example:
        >>> head = dict(type='ASoftmaxHead', num_classes=10575, in_channels=512, margin=4)
        >>> custom_hooks = [dict(type='ASoftmaxLambdaHook')]

    Args:
        num_classes, in_channels, **kwargs (``loss_weight``, ``label_smoothing``,
            ``init_cfg``): as :class:`BaseFaceHead`.
        margin (int): angular multiplier ``m >= 1`` (``m = 1`` is the normalised-weight
            softmax). Defaults to 4 (the paper's).
        asoftmax_lambda (float): initial blend weight ``lambda >= 0``; 0 is pure
            A-Softmax. The hook overwrites it before every training iteration.
            Defaults to 0.0.
    """

    def __init__(self, num_classes: int, in_channels: int, margin: int = 4,
                 asoftmax_lambda: float = 0.0, **kwargs: Any) -> None:
        super().__init__(num_classes, in_channels, **kwargs)
        self.margin = check_positive_int(margin, 'margin', minimum=1)
        self.asoftmax_lambda = asoftmax_lambda
        self.fc = NormLinear(in_channels, num_classes)
        # cos(j pi / m), j = 1..m-1: cos(theta) <= cos(j pi / m) <=> theta >= j pi / m.
        thresholds = [math.cos(j * math.pi / self.margin) for j in range(1, self.margin)]
        self.register_buffer('k_thresholds', torch.tensor(thresholds, dtype=torch.float32),
                             persistent=False)

    @property
    def asoftmax_lambda(self) -> float:
        """Blend weight ``lambda`` of the plain cosine in the target logit."""
        return self._asoftmax_lambda

    @asoftmax_lambda.setter
    def asoftmax_lambda(self, value: float) -> None:
        value = float(value)
        if not (value >= 0.0 and math.isfinite(value)):
            raise ValueError(f'asoftmax_lambda must be a finite number >= 0, got {value}')
        self._asoftmax_lambda = value

    def psi(self, cos: torch.Tensor) -> torch.Tensor:
        """``psi(theta) = (-1)^k cos(m theta) - 2k`` from ``cos(theta)`` (any shape)."""
        k = (cos.unsqueeze(-1) <= self.k_thresholds.to(cos.dtype)).sum(dim=-1)
        sign = 1 - 2 * (k % 2)
        return sign * chebyshev_cos(cos, self.margin) - 2 * k

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """Plain logits ``||x|| cos(theta_j)`` ``(N, C)``."""
        return self.fc(feats)

    def train_logits(self, feats: torch.Tensor,
                     labels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Plain logits with the target replaced by ``||x|| (lambda cos + psi) / (1 + lambda)``."""
        index = labels.long().unsqueeze(1)
        with torch.autocast(device_type=feats.device.type, enabled=False):
            feats = upcast(feats)
            logits = self.fc(feats)
            norms = feats.norm(dim=1, keepdim=True)
            # A zero feature has no angle; its clamped norm only avoids 0/0 (the logit stays 0).
            cos_t = (logits.gather(1, index) / norms.clamp_min(1e-12)).clamp(-1.0, 1.0)
            lam = self.asoftmax_lambda
            target = norms * (lam * cos_t + self.psi(cos_t)) / (1.0 + lam)
            margin_logits = logits.scatter(1, index, target)
        return margin_logits, logits

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, margin={self.margin}, asoftmax_lambda={self.asoftmax_lambda}'
