"""Linear classifier + softmax cross-entropy, the plain training head of DeepID2/CentreFace/VGGFace."""
from typing import Any, Tuple

import torch
from torch import nn

from lrfr.registry import MODELS
from .base_head import BaseFaceHead


@MODELS.register_module()
class SoftmaxHead(BaseFaceHead):
    """Softmax cross-entropy over a linear classifier: ``logits = W x + b``.

    ``loss_cls = loss_weight * CE(softmax(W x + b), y)`` (with optional label
    smoothing), the "softmax loss" of the face models compared in Cheng et al.
    2018 (Table 3) and the FR loss of CSRI (their Eq. 2). Pair it with
    :class:`CenterLoss` through :class:`CompositeHead` for CentreFace.

    Example:
        >>> head = dict(type='SoftmaxHead', num_classes=10575, in_channels=512)

    Args:
        num_classes, in_channels, **kwargs (``loss_weight``, ``label_smoothing``,
            ``init_cfg``): as :class:`BaseFaceHead`.
        bias (bool): learn a bias ``b``. Defaults to True.
    """

    def __init__(self, num_classes: int, in_channels: int, bias: bool = True, **kwargs: Any) -> None:
        super().__init__(num_classes, in_channels, **kwargs)
        self.fc = nn.Linear(in_channels, num_classes, bias=bias)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """Logits ``W x + b`` ``(N, C)``."""
        return self.fc(feats)

    def train_logits(self, feats: torch.Tensor,
                     labels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """No margin: the training logits are the plain logits."""
        logits = self.fc(feats)
        return logits, logits
