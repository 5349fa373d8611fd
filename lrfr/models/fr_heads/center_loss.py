"""Centre loss (Wen, Zhang, Li, Qiao, ECCV 2016), the intra-class term of CentreFace."""
from typing import Dict, Optional

import torch
from mmengine.dist import all_reduce, get_world_size

from lrfr.registry import MODELS
from .base_head import BaseEmbeddingHead, upcast


@MODELS.register_module()
class CenterLoss(BaseEmbeddingHead):
    """Centre loss: pull each embedding towards a running centre of its identity.

    ``loss_center = lambda * L_C`` with
    ``L_C = 1/(2N) * sum_i ||x_i - c_{y_i}||^2`` over the ``N`` samples of the batch
    (the caffe-face normalisation: the paper's ``1/2 sum`` divided by the batch
    size, so ``dL_C/dx_i = (x_i - c_{y_i}) / N``). Gradients flow to ``x`` only.

    The centres ``c`` are a buffer, *not* optimised: in training mode each call
    first computes the loss with the current centres, then applies the paper's
    update (Eq. 4 and Algorithm 1) with its own rate ``alpha``:

    ``delta_c_j = sum_i [y_i = j] (c_j - x_i) / (1 + sum_i [y_i = j])``,
    ``c_j <- c_j - alpha * delta_c_j``.

    Under distributed training the sums over ``i`` cover the global batch (one
    all-reduce), so every rank holds the same centres, which DDP's buffer
    broadcast would otherwise overwrite with rank 0's.

    It has no logits: combine it with a classifier through :class:`CompositeHead`
    (CentreFace = softmax + centre loss):

    Example:
        >>> head = dict(type='CompositeHead', heads=[
        ...     dict(type='SoftmaxHead', num_classes=10575, in_channels=512),
        ...     dict(type='CenterLoss', num_classes=10575, in_channels=512)])

    Args:
        num_classes (int): number of identities ``C`` (at least 2).
        in_channels (int): embedding size ``D``.
        loss_weight (float): ``lambda >= 0``. Defaults to 0.003 (the paper's face setting).
        alpha (float): centre update rate in ``(0, 1]``. Defaults to 0.5 (the paper's).
        init_cfg (dict, optional): mmengine initialisation config. Defaults to None.
    """

    #: No class logits: CompositeHead takes its forward from another member.
    produces_logits: bool = False

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 loss_weight: float = 0.003,
                 alpha: float = 0.5,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(num_classes, in_channels, loss_weight, init_cfg=init_cfg)
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f'alpha must be in (0, 1], got {alpha}')
        self.alpha = float(alpha)
        # Zeros: deterministic, and the update moves each centre to its class mean
        # within a few visits; persistent so a resumed run keeps its centres.
        self.register_buffer('centers', torch.zeros(num_classes, in_channels))

    @torch.no_grad()
    def update_centers(self, feats: torch.Tensor, labels: torch.Tensor) -> None:
        """Apply ``c_j <- c_j - alpha * sum_i [y_i=j](c_j - x_i) / (1 + sum_i [y_i=j])``.

        Args:
            feats (Tensor): embeddings ``(N, D)`` (detached here).
            labels (Tensor): labels ``(N,)`` in ``[0, num_classes)``.
        """
        feats = feats.detach().to(self.centers.dtype)
        labels = labels.long()
        if get_world_size() > 1:
            # Every rank must reduce a tensor of the same shape: the full class table.
            classes, slots = None, labels
            num_rows = self.num_classes
        else:
            # One process: only the classes in the batch, not O(num_classes * D) per step.
            classes, slots = labels.unique(return_inverse=True)
            num_rows = classes.numel()
        # Columns 0..D-1: sum of (c_j - x_i); column D: count of class j. One all-reduce.
        stats = self.centers.new_zeros(num_rows, self.in_channels + 1)
        rows = torch.cat([self.centers[labels] - feats, feats.new_ones(labels.numel(), 1)], dim=1)
        stats.index_add_(0, slots, rows)
        all_reduce(stats, op='sum')
        delta = stats[:, :-1] / (1.0 + stats[:, -1:])
        if classes is None:
            self.centers.sub_(self.alpha * delta)
        else:
            self.centers.index_add_(0, classes, delta, alpha=-self.alpha)

    def loss(self, feats: torch.Tensor, labels: torch.Tensor) -> Dict[str, torch.Tensor]:
        """``dict(loss_center=lambda * L_C)``; updates the centres afterwards in training mode.

        Args:
            feats (Tensor): embeddings ``(N, D)``.
            labels (Tensor): labels ``(N,)`` in ``[0, num_classes)``.
        """
        self.check_batch(feats, labels)
        labels = labels.long()
        with torch.autocast(device_type=feats.device.type, enabled=False):
            x = upcast(feats)
            centers = self.centers[labels].to(x.dtype)
            loss = (x - centers).pow(2).sum() / (2 * max(x.size(0), 1))
        if self.training:
            self.update_centers(feats, labels)
        return dict(loss_center=loss * self.loss_weight)

    def forward(self, feats: torch.Tensor, labels: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Same as :meth:`loss` (a loss module has nothing else to compute)."""
        return self.loss(feats, labels)

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, loss_weight={self.loss_weight}, alpha={self.alpha}'
