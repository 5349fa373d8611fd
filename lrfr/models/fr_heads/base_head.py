"""Shared surface of the classification heads: logits for inference, a loss dict for training."""
from abc import ABCMeta, abstractmethod
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule

from lrfr.structures import DISTRACTOR_LABEL
from lrfr.utils.checks import check_positive_int


def upcast(tensor: torch.Tensor) -> torch.Tensor:
    """Cast half/bfloat16 to float32 and leave float32/float64 alone.

    Margin maths must not run in reduced precision, and keeping float64 lets the
    tests run ``torch.autograd.gradcheck`` through the real code path.
    """
    return tensor.float() if tensor.is_floating_point() and tensor.element_size() < 4 else tensor


def check_batch(feats: torch.Tensor, labels: torch.Tensor, num_classes: int,
                in_channels: int) -> None:
    """Raise a clear error when ``feats``/``labels`` cannot be a training batch of the head.

    Cross-entropy would silently skip ``-100`` (its ``ignore_index``, which is also
    :data:`lrfr.structures.DISTRACTOR_LABEL`) and fail with an opaque device assert
    on other out-of-range labels, so the range is checked here once per batch (with an asynchronous
    assert: no host-device synchronisation on a GPU, a clear error at once on the CPU).

    Args:
        feats (Tensor): embeddings, expected ``(N, D)``.
        labels (Tensor): identity labels, expected integer ``(N,)`` in ``[0, num_classes)``.
        num_classes (int): number of identities of the head.
        in_channels (int): embedding size ``D`` of the head.
    """
    if feats.dim() != 2 or feats.size(1) != in_channels:
        raise ValueError(f'feats must be (N, {in_channels}) embeddings (in_channels={in_channels}), '
                         f'got shape {tuple(feats.shape)}')
    if labels.dim() != 1 or labels.numel() != feats.size(0):
        raise ValueError(f'labels must be ({feats.size(0)},) to match feats {tuple(feats.shape)}, '
                         f'got shape {tuple(labels.shape)}')
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise TypeError(f'labels must be an integer tensor, got {labels.dtype}')
    if labels.numel() == 0:
        return
    try:
        # no host sync on a GPU: there a bad label fails the run at the next synchronisation (device assert);
        # on the CPU the assert raises at once and the values are read for the message
        torch._assert_async(((labels >= 0) & (labels < num_classes)).all(), 'labels out of range')
    except RuntimeError:
        low, high = int(labels.min()), int(labels.max())
        hint = (f' ({DISTRACTOR_LABEL} is DISTRACTOR_LABEL: distractors have no identity to train on)'
                if low == DISTRACTOR_LABEL else '')
        raise ValueError(f'labels must lie in [0, {num_classes}) for this head, '
                         f'got values in [{low}, {high}]{hint}') from None


class BaseEmbeddingHead(BaseModule):
    """Base of every training head on face embeddings: ``(feats (N, D), labels (N,)) -> loss dict``.

    Holds what the classifiers (:class:`BaseFaceHead`) and the loss-only heads
    (:class:`~lrfr.models.fr_heads.CenterLoss`) share: the number of identities,
    the embedding size, the loss weight, their argument checks and the batch check.

    Args:
        num_classes (int): number of identities ``C`` (at least 2).
        in_channels (int): embedding size ``D``.
        loss_weight (float): weight ``>= 0`` of the head's loss term.
        init_cfg (dict, optional): mmengine initialisation config. Defaults to None.
    """

    def __init__(self, num_classes: int, in_channels: int, loss_weight: float,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.num_classes = check_positive_int(num_classes, 'num_classes', minimum=2)
        self.in_channels = check_positive_int(in_channels, 'in_channels')
        if not loss_weight >= 0:  # also refuses NaN
            raise ValueError(f'loss_weight must be >= 0, got {loss_weight}')
        self.loss_weight = float(loss_weight)

    def check_batch(self, feats: torch.Tensor, labels: torch.Tensor) -> None:
        """Raise a clear error when ``feats``/``labels`` cannot be a training batch of this head."""
        check_batch(feats, labels, self.num_classes, self.in_channels)

    def extra_repr(self) -> str:
        return f'num_classes={self.num_classes}, in_channels={self.in_channels}'


class BaseFaceHead(BaseEmbeddingHead, metaclass=ABCMeta):
    """Base of the classification heads used to train face embeddings.

    Every head follows the lrfr head interface:

    * ``forward(feats) -> logits`` ``(N, C)``: the plain class scores (no margin),
      used for accuracy and inference-time classification;
    * ``loss(feats, labels) -> dict``: ``loss_cls`` (cross-entropy of the
      *training* logits, those with the head's margin, times ``loss_weight``) and
      ``accuracy`` (top-1 of the plain logits, in percent; logged, not summed).

    Subclasses implement :meth:`forward` and :meth:`train_logits`, take
    ``num_classes, in_channels`` and their own arguments, and pass the rest
    (``**kwargs``) on to this signature, documented here once.

    Args:
        num_classes (int): number of identities ``C`` (at least 2).
        in_channels (int): embedding size ``D``.
        loss_weight (float): weight of the cross-entropy term. Defaults to 1.0.
        label_smoothing (float): cross-entropy label smoothing in ``[0, 1)``.
            Defaults to 0.0.
        init_cfg (dict, optional): mmengine initialisation config. Defaults to None.
    """

    #: Heads that produce class logits (``CenterLoss`` does not); CompositeHead reads this.
    produces_logits: bool = True

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 loss_weight: float = 1.0,
                 label_smoothing: float = 0.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(num_classes, in_channels, loss_weight, init_cfg=init_cfg)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f'label_smoothing must be in [0, 1), got {label_smoothing}')
        self.label_smoothing = float(label_smoothing)

    @abstractmethod
    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """Plain logits ``(N, C)`` of embeddings ``(N, D)``."""

    @abstractmethod
    def train_logits(self, feats: torch.Tensor,
                     labels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Return ``(margin_logits, plain_logits)``, both ``(N, C)``.

        ``margin_logits`` feed the cross-entropy; ``plain_logits`` (what
        :meth:`forward` returns) give the accuracy. Returning both from one pass
        avoids computing the cosine matrix twice.
        """

    def loss(self, feats: torch.Tensor, labels: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Cross-entropy of the training logits, and top-1 accuracy (percent) of the plain ones.

        Args:
            feats (Tensor): embeddings ``(N, D)``.
            labels (Tensor): identity labels ``(N,)`` in ``[0, num_classes)``.

        Returns:
            dict: ``loss_cls`` (summed by the runner) and ``accuracy`` (logged only).
        """
        self.check_batch(feats, labels)
        margin_logits, plain_logits = self.train_logits(feats, labels)
        loss = F.cross_entropy(upcast(margin_logits), labels, label_smoothing=self.label_smoothing)
        with torch.no_grad():
            accuracy = (plain_logits.argmax(dim=1) == labels).float().mean() * 100.0
        return dict(loss_cls=loss * self.loss_weight, accuracy=accuracy)
