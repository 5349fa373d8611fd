"""Bicubic resizes left by the pipeline to the batch (``batched=True`` transforms), done on the device.

Per-sample Pillow resizing is the largest per-image cost of the CSRI pipelines on a CPU
worker (docs/benchmark.md, "Feeding a GPU"): the synthetic branch's down- and up-sampling
(``BicubicDownsample``) and the native branch's resize to the FR input (``ResizeFace``).
With ``batched=True`` those transforms only record the sizes (``batch_resize`` metainfo);
these functions then resize whole groups of faces with one ``F.interpolate`` call each.
"""
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F

from lrfr.datasets.transforms.formatting import BATCH_KEEP_HR, BATCH_RESIZE

Size = Tuple[int, int]


def bicubic_chain(imgs: torch.Tensor, sizes: Sequence[Size]) -> torch.Tensor:
    """Resize a ``(N, C, H, W)`` uint8 batch through ``sizes`` in turn, rounding to uint8 after each step.

    Anti-aliased bicubic (``antialias=True``: Keys' cubic with a = -0.5 and a kernel that
    widens with the shrink factor), the filter of Pillow and MATLAB ``imresize`` that the
    per-sample path (:func:`lrfr.datasets.transforms.degradations.resize`) uses; rounding
    and clipping to 0..255 after every step reproduces the per-sample path's uint8
    intermediate (the LR face is an 8-bit image). Pillow also rounds between its
    horizontal and vertical passes, torch does not: outputs differ by a grey level or two
    on smooth faces, more where an up-sampling overshoots on sharp edges.

    Args:
        imgs (torch.Tensor): ``(N, C, H, W)`` uint8 (or integral float) images.
        sizes (Sequence[tuple]): the ``(H, W)`` of each step.

    Returns:
        torch.Tensor: ``(N, C, H', W')`` uint8, on ``imgs``' device.
    """
    out = imgs.float()
    for size in sizes:
        if tuple(out.shape[-2:]) != tuple(size):
            out = F.interpolate(out, size=tuple(size), mode='bicubic', align_corners=False,
                                antialias=True).round_().clamp_(0, 255)
    return out.byte()


def apply_batch_resize(imgs: List[torch.Tensor], data_samples: Sequence) -> List[torch.Tensor]:
    """Resize every image whose data sample has ``batch_resize`` metainfo; keep the HR face where asked.

    Images are grouped by (shape, sizes) so each group is one :func:`bicubic_chain`
    call; a sample with ``batch_keep_hr`` gets its packed image (the HR face) as
    ``hr_img`` first. Images of samples without ``batch_resize`` are returned as they are.

    Args:
        imgs (list[torch.Tensor]): ``(C, H, W)`` uint8 images, one per data sample.
        data_samples (Sequence): the batch's data samples (``hr_img`` is set on them).
    """
    if len(imgs) != len(data_samples):
        raise ValueError(f'FaceDataPreprocessor: {len(imgs)} images but {len(data_samples)} data samples')
    groups: Dict[tuple, List[int]] = {}
    for i, sample in enumerate(data_samples):
        sizes = sample.metainfo.get(BATCH_RESIZE)
        if sizes is None:
            continue
        if sample.metainfo.get(BATCH_KEEP_HR) and 'hr_img' in sample:
            raise ValueError(f'FaceDataPreprocessor: sample {sample.metainfo.get("img_path", i)} has both '
                             f'an hr_img and {BATCH_KEEP_HR}; a transform after BicubicDownsample(batched=True) '
                             'set hr_img')
        key = (tuple(imgs[i].shape), tuple(tuple(s) for s in sizes))
        groups.setdefault(key, []).append(i)
    out = list(imgs)
    for (_, sizes), idx in groups.items():
        batch = torch.stack([imgs[i] for i in idx])
        resized = bicubic_chain(batch, sizes)
        for k, i in enumerate(idx):
            if data_samples[i].metainfo.get(BATCH_KEEP_HR):
                data_samples[i].hr_img = batch[k]
            out[i] = resized[k]
    return out
