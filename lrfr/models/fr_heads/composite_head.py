"""Several training heads on one embedding, their losses summed: e.g. softmax + centre loss."""
from typing import Dict, Optional, Sequence, Union

import torch
from mmengine.model import BaseModule
from torch import nn

from lrfr.models.builder import build_part
from lrfr.registry import MODELS


@MODELS.register_module()
class CompositeHead(BaseModule):
    """Apply several heads to the same embeddings and merge their loss dicts.

    ``loss`` returns the union of the members' dicts; the runner sums every key
    containing ``'loss'``, so the total is e.g. ``loss_cls + loss_center`` for
    CentreFace (Wen et al. 2016: softmax + lambda * centre loss). Keys must be
    distinct across members: a clash raises instead of silently dropping a term.
    ``forward`` returns the logits of the first member that produces logits.
    All members must agree on ``num_classes`` and ``in_channels``.

    Example:
        >>> head = dict(type='CompositeHead', heads=[
        ...     dict(type='SoftmaxHead', num_classes=10575, in_channels=512),
        ...     dict(type='CenterLoss', num_classes=10575, in_channels=512,
        ...          loss_weight=0.003, alpha=0.5)])

    Args:
        heads (Sequence[dict | nn.Module]): member heads (configs or modules), each
            with ``loss(feats, labels) -> dict``; at least one must produce logits.
        init_cfg (dict, optional): mmengine initialisation config. Defaults to None.
    """

    produces_logits: bool = True

    def __init__(self,
                 heads: Sequence[Union[dict, nn.Module]],
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if isinstance(heads, (dict, nn.Module)) or not isinstance(heads, Sequence) or not heads:
            raise TypeError('heads must be a non-empty list of head configs or modules, '
                            f'got {type(heads).__name__}')
        self.heads = nn.ModuleList([build_part(h) for h in heads])
        for i, head in enumerate(self.heads):
            if not callable(getattr(head, 'loss', None)):
                raise TypeError(f'heads[{i}] ({type(head).__name__}) has no loss(feats, labels) method')
        for attr in ('num_classes', 'in_channels'):
            values = {getattr(h, attr) for h in self.heads if hasattr(h, attr)}
            if len(values) > 1:
                raise ValueError(f'all heads must share {attr}, got {sorted(values)}')
        classifiers = [h for h in self.heads if getattr(h, 'produces_logits', True)]
        if not classifiers:
            raise ValueError('CompositeHead needs at least one head that produces logits '
                             '(e.g. SoftmaxHead); use a loss-only head such as CenterLoss alone instead')
        self.classifier_index = list(self.heads).index(classifiers[0])

    @property
    def num_classes(self) -> int:
        """Number of identities, from the classifier member."""
        return self.heads[self.classifier_index].num_classes

    @property
    def in_channels(self) -> int:
        """Embedding size, from the classifier member."""
        return self.heads[self.classifier_index].in_channels

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, C)`` of the first member that produces logits."""
        return self.heads[self.classifier_index](feats)

    def loss(self, feats: torch.Tensor, labels: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Union of the members' loss dicts (keys must not clash)."""
        losses: Dict[str, torch.Tensor] = {}
        owner: Dict[str, str] = {}
        for i, head in enumerate(self.heads):
            name = f'heads[{i}] ({type(head).__name__})'
            for key, value in head.loss(feats, labels).items():
                if key in losses:
                    raise ValueError(f'loss key {key!r} is returned by both {owner[key]} and {name}; '
                                     'combine heads whose loss keys differ')
                losses[key], owner[key] = value, name
        return losses
