"""SR-only model: trains an SR head on LR/HR pairs (the first step of the paper's independent SR-FR learning)."""
from typing import Dict, List, Optional, Union

import torch
from mmpretrain.structures import DataSample
from torch import nn

from lrfr.models.builder import ModuleCfg, build_part
from lrfr.registry import MODELS
from .base import LRFRBaseModel, new_samples


@MODELS.register_module()
class SuperResolver(LRFRBaseModel):
    """An SR head with a pixel loss, trained on LR/HR pairs (samples with ``hr_img``), e.g. CelebA pairs.

    ``predict`` stores the SR output as ``pred_img`` for ``SRQualityMetric`` (PSNR/SSIM). The SR head is held
    as ``self.sr`` like in :class:`SRFaceRecognizer`, so its weights load there with
    ``init_cfg=dict(type='Pretrained', checkpoint=..., prefix='sr.')``.

    Args:
        sr (dict | nn.Module): the SR head.
        sr_loss (dict | nn.Module): pixel loss. Defaults to ``EuclideanLoss``.
        data_preprocessor (dict, optional): defaults to ``FaceDataPreprocessor``.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 sr: ModuleCfg,
                 sr_loss: ModuleCfg = dict(type='EuclideanLoss'),
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.sr = build_part(sr)
        self.sr_loss = build_part(sr_loss)

    def tensor(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.sr(inputs)

    def loss(self, inputs: torch.Tensor, data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        missing = [s.metainfo.get('img_path', i) for i, s in enumerate(data_samples) if 'hr_img' not in s]
        if missing:
            raise KeyError(f'SuperResolver trains on LR/HR pairs, but {len(missing)} samples have no hr_img '
                           f'(e.g. {missing[0]}); add BicubicDownsample(keep_hr=True) to the pipeline')
        hr = torch.stack([s.hr_img for s in data_samples])
        return dict(loss_sr=self.sr_loss(self.sr(inputs), hr))

    @torch.no_grad()
    def predict(self, inputs: torch.Tensor,
                data_samples: Optional[List[DataSample]] = None) -> List[DataSample]:
        sr_imgs = self.sr(inputs)
        data_samples = new_samples(data_samples, inputs.size(0))
        for sample, img in zip(data_samples, sr_imgs):
            sample.pred_img = img
        return data_samples
