"""What every lrfr model shares: a default data preprocessor and mmengine's ``forward(mode=...)`` dispatch."""
from typing import List, Optional, Union

import torch
from mmengine.model import BaseModel
from mmpretrain.structures import DataSample
from torch import nn

from lrfr.registry import MODELS


class LRFRBaseModel(BaseModel):
    """An mmengine ``BaseModel`` whose data preprocessor defaults to :class:`FaceDataPreprocessor`.

    Subclasses implement ``tensor(inputs)``, ``loss(inputs, data_samples)`` and
    ``predict(inputs, data_samples)``; ``forward`` dispatches on ``mode`` and rejects anything else.

    Args:
        data_preprocessor (dict | nn.Module, optional): defaults to ``FaceDataPreprocessor``.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self, data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='FaceDataPreprocessor')
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)

    def forward(self,
                inputs: torch.Tensor,
                data_samples: Optional[List[DataSample]] = None,
                mode: str = 'tensor'):
        if mode == 'tensor':
            return self.tensor(inputs)
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise RuntimeError(f'Invalid mode "{mode}": expected "tensor", "loss" or "predict"')

    def tensor(self, inputs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, inputs: torch.Tensor, data_samples: List[DataSample]) -> dict:
        raise NotImplementedError

    def predict(self, inputs: torch.Tensor, data_samples: Optional[List[DataSample]] = None) -> list:
        raise NotImplementedError


def new_samples(data_samples: Optional[List[DataSample]], batch_size: int) -> List[DataSample]:
    """The batch's data samples, or empty ones when predict is called on bare images."""
    return data_samples if data_samples is not None else [DataSample() for _ in range(batch_size)]
