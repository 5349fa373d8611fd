"""Embedding neck: turns the feature maps of a generic (e.g. mmpretrain) backbone into a face embedding."""
from typing import Callable, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from lrfr.registry import MODELS
from lrfr.utils.checks import SizeArg, check_positive_int, to_size_pair


@MODELS.register_module()
class EmbeddingNeck(nn.Module):
    """Feature map -> ``[global average pool | flatten] -> dropout -> Linear -> BN1d`` -> embedding.

    mmpretrain backbones return a tuple of feature maps (``out_indices``); this neck
    takes one of them (``index``, the last by default) and produces ``(N, embed_dim)``.
    With ``in_size=None`` the map is average-pooled over space (any input size works);
    with ``in_size=(h, w)`` it is flattened, which keeps the spatial layout that face
    embeddings rely on, as the output block of ArcFace's IResNet does
    (BN-dropout-flatten-FC-BN). The attribute ``embed_dim`` gives the width to whoever needs it.

    Args:
        in_channels (int): channels of the selected feature map.
        embed_dim (int): embedding width. Defaults to 512.
        in_size (int | tuple[int, int], optional): ``(h, w)`` of the map to flatten;
            None for global average pooling. Defaults to None.
        index (int): which map of a tuple/list input to use. Defaults to -1.
        dropout (float): dropout before the Linear layer. Defaults to 0.0.
        norm_layer (callable, optional): ``norm_layer(embed_dim)`` after the Linear layer.
            Defaults to ``nn.BatchNorm1d``; None for a plain Linear embedding.

    Example:
        >>> model = dict(type='FaceRecognizer',
        ...              backbone=dict(type='mmpretrain.ResNet', depth=18),
        ...              neck=dict(type='EmbeddingNeck', in_channels=512, in_size=(4, 3)))
    """

    def __init__(self,
                 in_channels: int,
                 embed_dim: int = 512,
                 in_size: Optional[SizeArg] = None,
                 index: int = -1,
                 dropout: float = 0.0,
                 norm_layer: Optional[Callable[[int], nn.Module]] = nn.BatchNorm1d) -> None:
        super().__init__()
        self.in_channels = check_positive_int(in_channels, 'in_channels')
        self.embed_dim = check_positive_int(embed_dim, 'embed_dim')
        self.in_size: Optional[Tuple[int, int]] = None if in_size is None else to_size_pair(in_size, 'in_size')
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f'index must be an int, got {index!r}')
        self.index = index
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f'dropout must be in [0, 1), got {dropout}')
        in_features = in_channels if self.in_size is None else in_channels * self.in_size[0] * self.in_size[1]
        self.pool = nn.AdaptiveAvgPool2d(1) if self.in_size is None else nn.Identity()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_features, embed_dim)
        self.norm = nn.Identity() if norm_layer is None else norm_layer(embed_dim)

    def select(self, feats: Union[torch.Tensor, Sequence[torch.Tensor]]) -> torch.Tensor:
        """Pick the configured map from a backbone output and check its shape."""
        if isinstance(feats, (tuple, list)):
            if not -len(feats) <= self.index < len(feats):
                raise IndexError(f'EmbeddingNeck index={self.index} but the backbone returned {len(feats)} '
                                 "feature maps; set the backbone's out_indices or the neck's index")
            feats = feats[self.index]
        if not isinstance(feats, torch.Tensor) or feats.dim() != 4 or feats.shape[1] != self.in_channels:
            shape = tuple(feats.shape) if isinstance(feats, torch.Tensor) else type(feats).__name__
            raise ValueError(f'EmbeddingNeck expects a feature map (N, {self.in_channels}, h, w) '
                             f'(in_channels={self.in_channels}), got {shape}')
        if self.in_size is not None and tuple(feats.shape[-2:]) != self.in_size:
            raise ValueError(f'EmbeddingNeck was built to flatten {self.in_size[0]}x{self.in_size[1]} maps '
                             f'(in_size={self.in_size}), got {tuple(feats.shape[-2:])}; set in_size to the '
                             "backbone's output size or None for global pooling")
        return feats

    def forward(self, feats: Union[torch.Tensor, Sequence[torch.Tensor]]) -> torch.Tensor:
        """Feature map(s) -> embedding ``(N, embed_dim)``."""
        x = self.pool(self.select(feats)).flatten(1)
        return self.norm(self.fc(self.dropout(x)))
