"""PSNR / SSIM of super-resolved faces against their HR targets, as an mmengine metric plugin."""
import math
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from lrfr.registry import METRICS
from ..functional.sr_quality import CHANNEL_ORDERS, psnr, ssim
from ..reporting import make_table


@METRICS.register_module()
class SRQualityMetric(BaseMetric):
    """Mean PSNR (dB) and SSIM of the SR output ``pred_img`` against ``hr_img``.

    SR models put ``pred_img`` (the SR output, normalised like the inputs) on each
    data sample in predict; synthetic LR/HR samples carry ``hr_img`` (normalised in
    place by ``FaceDataPreprocessor``, or still uint8). Float images are mapped back to
    0..255 with ``x * std + mean``; uint8 images are taken as they are. The SR output
    is then clamped to 0..255 and, with ``quantize``, rounded as when saved to an
    8-bit file (what SR papers evaluate). Samples without both fields (e.g. native LR
    faces) are skipped. See :mod:`lrfr.evaluation.functional.sr_quality` for the
    definitions (Wang et al. 2004 SSIM, BT.601 Y channel).

    Example::

        val_evaluator = [dict(type='IdentificationMetric'),
                         dict(type='SRQualityMetric', y_channel=True)]

    Args:
        mean (float | Sequence[float]): normalisation mean. Defaults to 127.5.
        std (float | Sequence[float]): normalisation std. Defaults to 128.0.
        y_channel (bool): evaluate on BT.601 luma. Defaults to False.
        crop_border (int): border pixels ignored. Defaults to 0.
        quantize (bool): round the de-normalised images to integers. Defaults to True.
        channel_order (str): ``'bgr'`` or ``'rgb'`` (only matters with ``y_channel``).
            Defaults to ``'bgr'``.
        collect_device (str): ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): metric key prefix. Defaults to None (``'sr'``).
        collect_dir (str, optional): folder for CPU gathering. Defaults to None.
    """

    default_prefix = 'sr'

    def __init__(self,
                 mean: Union[float, Sequence[float]] = 127.5,
                 std: Union[float, Sequence[float]] = 128.0,
                 y_channel: bool = False,
                 crop_border: int = 0,
                 quantize: bool = True,
                 channel_order: str = 'bgr',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        self.mean = torch.as_tensor(mean, dtype=torch.float64).reshape(-1, 1, 1)
        self.std = torch.as_tensor(std, dtype=torch.float64).reshape(-1, 1, 1)
        if (self.std <= 0).any():
            raise ValueError(f'SRQualityMetric: std must be positive, got {std}')
        if channel_order not in CHANNEL_ORDERS:
            raise ValueError(f'SRQualityMetric: channel_order must be one of {CHANNEL_ORDERS}, '
                             f'got {channel_order!r}')
        if not isinstance(crop_border, int) or crop_border < 0:
            raise ValueError(f'SRQualityMetric: crop_border must be a non-negative int, '
                             f'got {crop_border!r}')
        self.y_channel = y_channel
        self.crop_border = crop_border
        self.quantize = quantize
        self.channel_order = channel_order

    def to_pixels(self, img: Any) -> torch.Tensor:
        """A ``(C, H, W)`` image on the 0..255 scale (float64): uint8 kept, floats de-normalised."""
        t = torch.as_tensor(img).detach().cpu()
        if t.dim() == 4 and t.shape[0] == 1:
            t = t[0]
        if t.dim() != 3:
            raise ValueError(f'SRQualityMetric: expected a (C, H, W) image, got shape '
                             f'{tuple(t.shape)}')
        if t.is_floating_point():
            t = t.double() * self.std + self.mean
        t = t.double().clamp(0, 255)
        return t.round() if self.quantize else t

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """One entry per sample (None when it has no ``pred_img`` / ``hr_img`` pair)."""
        for sample in data_samples:
            if 'pred_img' not in sample or 'hr_img' not in sample:
                self.results.append(None)  # keeps ranks' result lists aligned for gathering
                continue
            pred, hr = self.to_pixels(sample['pred_img']), self.to_pixels(sample['hr_img'])
            if pred.shape != hr.shape:
                raise ValueError(f'SRQualityMetric: pred_img {tuple(pred.shape)} and hr_img '
                                 f'{tuple(hr.shape)} differ in shape (sample '
                                 f"{sample.get('img_path', sample.get('sample_idx'))})")
            kw = dict(crop_border=self.crop_border, y_channel=self.y_channel,
                      channel_order=self.channel_order)
            self.results.append(dict(psnr=psnr(pred, hr, **kw), ssim=ssim(pred, hr, **kw)))

    def compute_metrics(self, results: List[Optional[dict]]) -> Dict[str, float]:
        """Mean PSNR and SSIM over the samples that have an HR target.

        Returns:
            dict: ``PSNR`` (dB; ``inf`` only if every output equals its target) and ``SSIM``.
        """
        scored = [r for r in results if r is not None]
        if not scored:
            raise ValueError('SRQualityMetric: no data sample carries both `pred_img` (set by an '
                             'SR model in predict) and `hr_img` (synthetic LR/HR pairs)')
        metrics = dict(PSNR=float(np.mean([r['psnr'] for r in scored])),
                       SSIM=float(np.mean([r['ssim'] for r in scored])))
        table = make_table(['PSNR (dB)', 'SSIM', 'images'],
                           [[f"{metrics['PSNR']:.2f}" if math.isfinite(metrics['PSNR']) else 'inf',
                             f"{metrics['SSIM']:.4f}", len(scored)]],
                           title=f' {self.prefix}: SR quality{" (Y)" if self.y_channel else ""} ',
                           label_column=False)
        print_log('\n' + table, logger='current')
        return metrics
