"""Angular-margin softmax heads on the unit hypersphere: CosFace, ArcFace, AdaFace.

One family, InsightFace's habit: a head computes ``cos(theta_j)`` between the
normalised embedding and normalised class vectors, replaces the target class's
cosine by a margin function of it, and scales everything by ``s``. Only the
margin function differs between members, so :class:`BaseMarginHead` holds all
the rest (and the one documented signature the members extend), and
:class:`CosineMarginHead` the constant-margin function that :class:`MarginHead`,
:class:`CosFaceHead` and :class:`ArcFaceHead` configure.
"""
import math
from abc import abstractmethod
from typing import Any, Tuple

import torch
import torch.nn.functional as F

from lrfr.registry import MODELS
from .base_head import BaseFaceHead, upcast
from .norm_linear import NormLinear


def check_angular_margin(value: float, name: str) -> float:
    """An angle in ``[0, pi)`` radians (beyond, ``cos(theta + m)`` has no decreasing part left)."""
    if not 0.0 <= value < math.pi:
        raise ValueError(f'{name} must be in [0, pi) radians, got {value}')
    return float(value)


def check_non_negative(value: float, name: str) -> float:
    """A number ``>= 0`` (NaN refused)."""
    if not value >= 0.0:
        raise ValueError(f'{name} must be >= 0, got {value}')
    return float(value)


class BaseMarginHead(BaseFaceHead):
    """Normalised weights and features, no bias, scale ``s``, a margin on the target logit.

    ``logit_j = s * cos(theta_j)`` for ``j != y`` and ``logit_y = s * f(cos(theta_y), ||x||)``
    where ``f`` is :meth:`target_logit`. Cosines and margins are computed in
    float32 with autocast disabled (reduced precision would be scaled by ``s``),
    and cosines are clamped to ``[-1, 1]`` against rounding.

    Members take ``num_classes, in_channels``, their own margin arguments, and pass
    the rest (``**kwargs``) on to this signature.

    Args:
        num_classes (int): number of identities ``C`` (at least 2).
        in_channels (int): embedding size ``D``.
        scale (float): logit scale ``s > 0``. Defaults to 64.0 (CosFace's and ArcFace's).
        **kwargs: ``loss_weight``, ``label_smoothing``, ``init_cfg`` of :class:`BaseFaceHead`.
    """

    def __init__(self, num_classes: int, in_channels: int, scale: float = 64.0, **kwargs: Any) -> None:
        super().__init__(num_classes, in_channels, **kwargs)
        if not scale > 0:
            raise ValueError(f'scale must be > 0, got {scale}')
        self.scale = float(scale)
        self.fc = NormLinear(in_channels, num_classes)

    def cosine(self, feats: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Return ``cos(theta)`` ``(N, C)`` clamped to [-1, 1] and feature norms ``(N, 1)``, >= float32."""
        with torch.autocast(device_type=feats.device.type, enabled=False):
            feats = upcast(feats)
            norms = feats.norm(dim=1, keepdim=True)
            cos = self.fc(F.normalize(feats, dim=1)).clamp(-1.0, 1.0)
        return cos, norms

    @abstractmethod
    def target_logit(self, cos_t: torch.Tensor, norms: torch.Tensor) -> torch.Tensor:
        """Margin function ``f``: target cosines ``(N, 1)`` and norms ``(N, 1)`` -> ``(N, 1)`` (unscaled)."""

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """Plain logits ``s * cos(theta)`` ``(N, C)``, no margin."""
        return self.cosine(feats)[0] * self.scale

    def train_logits(self, feats: torch.Tensor,
                     labels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``s * cos`` with the target column replaced by ``s * f(cos_y, ||x||)``; and the plain logits."""
        cos, norms = self.cosine(feats)
        index = labels.long().unsqueeze(1)
        with torch.autocast(device_type=feats.device.type, enabled=False):
            target = self.target_logit(cos.gather(1, index), norms)
            margin_logits = cos.scatter(1, index, target) * self.scale
        return margin_logits, cos * self.scale

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, scale={self.scale}'


class CosineMarginHead(BaseMarginHead):
    """Constant margins on the target angle and cosine: ``f = cos(theta_y + m_ang) - m_add``.

    The InsightFace combined margin (without its multiplicative SphereFace term,
    which lives in :class:`ASoftmaxHead` in its original form). Subclasses choose
    the margins from their own arguments and call :meth:`set_margins` once.

    With an angular margin, ``cos(theta + m)`` stops decreasing once
    ``theta + m > pi``; like the ArcFace reference code, the target logit there
    falls back to ``cos(theta) - m * sin(m)`` (still decreasing in theta), or,
    with ``easy_margin``, the margin is dropped wherever ``cos(theta) <= 0``.
    ``cos(theta + m)`` is expanded as ``cos cos_m - sin sin_m`` so no ``acos``
    (infinite slope at +-1) enters the graph; ``cos(m)``, ``sin(m)``,
    ``cos(pi - m)`` and ``m sin(m)`` are non-persistent buffers.

    Args: as :class:`BaseMarginHead`.
    """

    def set_margins(self, angular_margin: float = 0.0, additive_margin: float = 0.0,
                    easy_margin: bool = False) -> None:
        """Store the margins and their buffers; the caller has checked them under its own argument names
        (``m_ang`` in ``[0, pi)`` radians, ``m_add >= 0``), so an error names what the user wrote."""
        self.angular_margin = float(angular_margin)
        self.additive_margin = float(additive_margin)
        self.easy_margin = bool(easy_margin)
        m = self.angular_margin
        self.register_buffer('cos_m', torch.tensor(math.cos(m)), persistent=False)
        self.register_buffer('sin_m', torch.tensor(math.sin(m)), persistent=False)
        # theta + m > pi  <=>  cos(theta) < cos(pi - m): where the fallback starts.
        self.register_buffer('threshold', torch.tensor(math.cos(math.pi - m)), persistent=False)
        self.register_buffer('fallback', torch.tensor(m * math.sin(m)), persistent=False)

    def target_logit(self, cos_t: torch.Tensor, norms: torch.Tensor) -> torch.Tensor:
        """``cos(theta + m_ang) - m_add``, with the fallback or easy margin past the valid range."""
        if self.angular_margin > 0:
            # clamp_min keeps sqrt's slope finite at cos = +-1 (the clamp passes no gradient there).
            sin_t = (1.0 - cos_t * cos_t).clamp_min(1e-12).sqrt()
            phi = cos_t * self.cos_m - sin_t * self.sin_m
            if self.easy_margin:
                phi = torch.where(cos_t > 0, phi, cos_t)
            else:
                phi = torch.where(cos_t > self.threshold, phi, cos_t - self.fallback)
        else:
            phi = cos_t
        return phi - self.additive_margin

    def extra_repr(self) -> str:
        return (f'{super().extra_repr()}, angular_margin={self.angular_margin}, '
                f'additive_margin={self.additive_margin}, easy_margin={self.easy_margin}')


@MODELS.register_module()
class MarginHead(CosineMarginHead):
    """Combined-margin softmax: ``f = cos(theta_y + m_ang) - m_add`` (see :class:`CosineMarginHead`).

    * CosFace / AM-Softmax (Wang et al. 2018): ``m_ang = 0``, ``m_add = m``;
    * ArcFace (Deng et al. 2019): ``m_ang = m``, ``m_add = 0``;
    * both margins together, as InsightFace's ``(1, m_ang, m_add)`` triples.

    Example:
        >>> head = dict(type='MarginHead', num_classes=10575, in_channels=512,
        ...             scale=64.0, angular_margin=0.3, additive_margin=0.2)

    Args:
        num_classes, in_channels, **kwargs (``scale``, ``loss_weight``, ``label_smoothing``,
            ``init_cfg``): as :class:`BaseMarginHead`.
        angular_margin (float): ``m_ang`` in ``[0, pi)`` radians. Defaults to 0.0.
        additive_margin (float): ``m_add >= 0``. Defaults to 0.0.
        easy_margin (bool): apply the angular margin only where ``cos(theta) > 0``
            instead of the ``theta + m > pi`` fallback. Defaults to False.
    """

    def __init__(self, num_classes: int, in_channels: int, angular_margin: float = 0.0,
                 additive_margin: float = 0.0, easy_margin: bool = False, **kwargs: Any) -> None:
        super().__init__(num_classes, in_channels, **kwargs)
        self.set_margins(check_angular_margin(angular_margin, 'angular_margin'),
                         check_non_negative(additive_margin, 'additive_margin'), easy_margin)


@MODELS.register_module()
class CosFaceHead(CosineMarginHead):
    """CosFace / large-margin cosine loss (Wang et al., CVPR 2018): ``f = cos(theta_y) - m``.

    Example:
        >>> head = dict(type='CosFaceHead', num_classes=10575, in_channels=512)

    Args:
        num_classes, in_channels, **kwargs (``scale``, ``loss_weight``, ``label_smoothing``,
            ``init_cfg``): as :class:`BaseMarginHead`.
        margin (float): additive cosine margin ``m >= 0``. Defaults to 0.35 (the paper's).
    """

    def __init__(self, num_classes: int, in_channels: int, margin: float = 0.35, **kwargs: Any) -> None:
        super().__init__(num_classes, in_channels, **kwargs)
        self.set_margins(additive_margin=check_non_negative(margin, 'margin'))


@MODELS.register_module()
class ArcFaceHead(CosineMarginHead):
    """ArcFace / additive angular margin loss (Deng et al., CVPR 2019): ``f = cos(theta_y + m)``.

    Past ``theta_y + m > pi`` the target logit is ``cos(theta_y) - m sin(m)``
    (or, with ``easy_margin``, ``cos(theta_y)`` wherever ``cos(theta_y) <= 0``),
    as in the ArcFace reference implementation; see :class:`CosineMarginHead`.

    Example:
        >>> head = dict(type='ArcFaceHead', num_classes=10575, in_channels=512, margin=0.5)

    Args:
        num_classes, in_channels, **kwargs (``scale``, ``loss_weight``, ``label_smoothing``,
            ``init_cfg``): as :class:`BaseMarginHead`.
        margin (float): angular margin ``m`` in ``[0, pi)`` radians. Defaults to 0.5 (the paper's).
        easy_margin (bool): drop the margin where ``cos(theta_y) <= 0`` instead of
            the fallback. Defaults to False.
    """

    def __init__(self, num_classes: int, in_channels: int, margin: float = 0.5,
                 easy_margin: bool = False, **kwargs: Any) -> None:
        super().__init__(num_classes, in_channels, **kwargs)
        self.set_margins(angular_margin=check_angular_margin(margin, 'margin'), easy_margin=easy_margin)


@MODELS.register_module()
class AdaFaceHead(BaseMarginHead):
    """AdaFace: quality-adaptive margin from the feature norm (Kim, Jain, Liu, CVPR 2022).

    The embedding norm is a proxy of image quality. With batch statistics
    ``mu``, ``sigma`` of the (detached, clipped to [0.001, 100]) norms, kept as
    EMAs ``mu <- a * mu_batch + (1 - a) * mu`` (same for ``sigma``, unbiased
    batch std; updated in training mode before use, as in the official code),

    ``z = clip(h * (||x|| - mu) / (sigma + eps), -1, 1)``,
    ``g_angle = -m * z``, ``g_add = m + m * z``,
    ``f = cos(clip(theta_y + g_angle, eps, pi - eps)) - g_add``,

    so low-norm (hard, low-quality) faces get an ArcFace-like angular margin
    ``+m`` and high-norm faces a larger CosFace-like additive one. ``theta`` is
    ``acos`` of the cosine clamped to ``[-1 + eps, 1 - eps]`` (finite slope).

    Under DDP the EMA buffers follow DistributedDataParallel's buffer broadcast
    (rank 0's statistics), as in the official implementation; batches of one
    sample leave them unchanged (no std).

    Example:
        >>> head = dict(type='AdaFaceHead', num_classes=10575, in_channels=512)

    Args:
        num_classes, in_channels, **kwargs (``scale``, ``loss_weight``, ``label_smoothing``,
            ``init_cfg``): as :class:`BaseMarginHead`.
        margin (float): margin ``m >= 0``. Defaults to 0.4 (the paper's).
        h (float): concentration ``h > 0`` of the normalised norm. Defaults to 0.333.
        t_alpha (float): EMA weight ``a`` of the new batch, in ``(0, 1]``. Defaults to 0.01.
        eps (float): the official code's small constant. Defaults to 1e-3.
    """

    #: Initial norm statistics of the official implementation.
    INIT_MEAN = 20.0
    INIT_STD = 100.0

    def __init__(self, num_classes: int, in_channels: int, margin: float = 0.4, h: float = 0.333,
                 t_alpha: float = 0.01, eps: float = 1e-3, **kwargs: Any) -> None:
        super().__init__(num_classes, in_channels, **kwargs)
        self.margin = check_non_negative(margin, 'margin')
        if not h > 0.0:
            raise ValueError(f'h must be > 0, got {h}')
        if not 0.0 < t_alpha <= 1.0:
            raise ValueError(f't_alpha must be in (0, 1], got {t_alpha}')
        if not 0.0 < eps < 0.1:
            raise ValueError(f'eps must be in (0, 0.1), got {eps}')
        self.h, self.t_alpha, self.eps = float(h), float(t_alpha), float(eps)
        # Persistent: the statistics are training state, resumed with the checkpoint.
        self.register_buffer('batch_mean', torch.tensor(self.INIT_MEAN))
        self.register_buffer('batch_std', torch.tensor(self.INIT_STD))

    @torch.no_grad()
    def update_norm_stats(self, norms: torch.Tensor) -> None:
        """EMA update of ``batch_mean`` / ``batch_std`` from safe norms ``(N, 1)`` (N >= 2)."""
        if norms.numel() < 2:
            return
        a = self.t_alpha
        self.batch_mean.mul_(1 - a).add_(a * norms.mean().to(self.batch_mean.dtype))
        self.batch_std.mul_(1 - a).add_(a * norms.std().to(self.batch_std.dtype))

    def margin_scaler(self, norms: torch.Tensor) -> torch.Tensor:
        """``z = clip(h (||x|| - mu) / (sigma + eps), -1, 1)`` from safe norms ``(N, 1)``."""
        z = (norms - self.batch_mean) / (self.batch_std + self.eps)
        return (z * self.h).clamp(-1.0, 1.0)

    def target_logit(self, cos_t: torch.Tensor, norms: torch.Tensor) -> torch.Tensor:
        """``cos(clip(theta + g_angle, eps, pi - eps)) - g_add``; updates the EMAs in training."""
        safe_norms = norms.detach().clamp(0.001, 100.0)
        if self.training:
            self.update_norm_stats(safe_norms)
        z = self.margin_scaler(safe_norms)
        theta = cos_t.clamp(-1.0 + self.eps, 1.0 - self.eps).acos()
        theta_m = (theta - self.margin * z).clamp(self.eps, math.pi - self.eps)
        return theta_m.cos() - (self.margin + self.margin * z)

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, margin={self.margin}, h={self.h}, t_alpha={self.t_alpha}'
