"""Batching and normalisation of face images (and of HR targets for LR/HR pairs)."""
from typing import List, Optional, Sequence, Union

import torch
from mmengine.model import BaseDataPreprocessor

from lrfr.datasets.transforms.formatting import BATCH_RESIZE
from lrfr.registry import MODELS
from .batch_resize import apply_batch_resize


@MODELS.register_module()
class FaceDataPreprocessor(BaseDataPreprocessor):
    """Stack, move and normalise face images: ``(img - mean) / std``.

    The default ``mean=127.5, std=128`` is caffe-face's (Wen et al. 2016) input
    scaling, used by CentreFace and SphereFace. Images stay in the channel order
    the loader produced (BGR for OpenCV) unless ``to_rgb`` is set.

    For synthetic LR/HR pairs the data samples carry an ``hr_img`` (CHW uint8);
    it is normalised the same way and stored back on the sample as a float
    tensor on the model's device, so SR losses compare like with like.

    Resizes that the pipeline left to the batch (``batched=True`` in
    ``BicubicDownsample`` / ``ResizeFace``: ``batch_resize`` metainfo) are done here, on
    the device, before normalisation (see :mod:`.batch_resize`); a batched
    ``BicubicDownsample`` sample's packed HR face becomes its ``hr_img``.

    Args:
        mean (float | Sequence[float]): per-channel mean. Defaults to 127.5.
        std (float | Sequence[float]): per-channel std. Defaults to 128.0.
        to_rgb (bool): swap BGR to RGB. Defaults to False.
        channels_last (bool): return inputs in ``torch.channels_last`` memory
            format (faster convolutions on GPUs with tensor cores).
        non_blocking (bool): copy inputs and data-sample tensors (``hr_img``,
            labels) to the device with ``non_blocking=True`` (mmengine's
            ``cast_data``): from pinned host memory (``pin_memory=True`` in the
            DataLoader) the copy is queued on the stream instead of stalling the
            host until it ends. Harmless on a CPU. Defaults to True.
    """

    def __init__(self,
                 mean: Union[float, Sequence[float]] = 127.5,
                 std: Union[float, Sequence[float]] = 128.0,
                 to_rgb: bool = False,
                 channels_last: bool = False,
                 non_blocking: bool = True) -> None:
        super().__init__(non_blocking=non_blocking)
        mean_t = torch.as_tensor(mean, dtype=torch.float32).reshape(-1, 1, 1)
        std_t = torch.as_tensor(std, dtype=torch.float32).reshape(-1, 1, 1)
        if (std_t <= 0).any():
            raise ValueError(f'FaceDataPreprocessor: std must be positive, got {std}')
        self.register_buffer('mean', mean_t, persistent=False)
        self.register_buffer('std', std_t, persistent=False)
        self.to_rgb = to_rgb
        self.channels_last = channels_last

    def normalize(self, imgs: torch.Tensor) -> torch.Tensor:
        """Normalise a uint8/float image batch ``(N, C, H, W)`` to float."""
        imgs = imgs.float()
        if self.to_rgb and imgs.size(1) == 3:
            imgs = imgs.flip(1)
        return (imgs - self.mean) / self.std

    def _stack(self, imgs: Union[torch.Tensor, List[torch.Tensor]], what: str) -> torch.Tensor:
        if isinstance(imgs, torch.Tensor):
            return imgs if imgs.dim() == 4 else imgs.unsqueeze(0)
        shapes = {tuple(img.shape) for img in imgs}
        if len(shapes) != 1:
            raise ValueError(
                f'FaceDataPreprocessor: {what} in one batch must share a shape, got '
                f'{sorted(shapes)}; add a Resize/ResizeFace transform to the pipeline.')
        return torch.stack(imgs)

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        imgs = data['inputs']
        data_samples: Optional[list] = data.get('data_samples')
        if data_samples is not None and any(BATCH_RESIZE in s.metainfo for s in data_samples):
            imgs = apply_batch_resize(list(imgs), data_samples)
        inputs = self.normalize(self._stack(imgs, 'input images'))
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        if data_samples is not None:
            for sample in data_samples:
                if 'hr_img' in sample:
                    sample.hr_img = self.normalize(sample.hr_img.unsqueeze(0))[0]
        return dict(inputs=inputs, data_samples=data_samples)
