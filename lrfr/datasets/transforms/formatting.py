"""Packing of a face sample into ``dict(inputs=CHW uint8 tensor, data_samples=DataSample)``."""
from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmpretrain.structures import DataSample

from lrfr.registry import TRANSFORMS

#: Metainfo key of a resize left to the batch (``batched=True`` in :class:`BicubicDownsample` /
#: :class:`ResizeFace`): the tuple of ``(H, W)`` sizes ``FaceDataPreprocessor`` bicubic-resizes ``inputs``
#: through, in order, on the whole batch.
BATCH_RESIZE = 'batch_resize'
#: Metainfo flag: the packed ``inputs`` is the HR face; ``FaceDataPreprocessor`` keeps it as ``hr_img``
#: before resizing it through ``batch_resize`` (the LR/HR pairs of a batched ``BicubicDownsample``).
BATCH_KEEP_HR = 'batch_keep_hr'


def image_to_tensor(img: np.ndarray, key: str, source: str) -> torch.Tensor:
    """``HWC uint8`` 3-channel array -> contiguous ``CHW uint8`` tensor; anything else is an error.

    Args:
        img (np.ndarray): the image.
        key (str): its key in the results, for the error.
        source (str): the image path, for the error.
    """
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        desc = (f'{img.dtype} array of shape {img.shape}' if isinstance(img, np.ndarray)
                else type(img).__name__)
        raise TypeError(f'PackFaceInputs: {key} of {source} must be an HxWx3 uint8 array '
                        f'(use LoadFaceImage), got {desc}')
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


@TRANSFORMS.register_module()
class PackFaceInputs(BaseTransform):
    """Pack a face sample into the lrfr pipeline output (see the team interface in ``lrfr.structures``).

    Output: ``dict(inputs=<CHW uint8 tensor>, data_samples=<mmpretrain DataSample>)``.
    The data sample gets ``gt_label`` when the results have one (distractors carry
    ``DISTRACTOR_LABEL``; unlabelled data may have none), the ``meta_keys`` present
    in the results as metainfo, and ``hr_img`` (``CHW uint8`` tensor) when the
    sample is a synthetic LR/HR pair. The keys of a resize left to the batch
    (:data:`BATCH_RESIZE`, :data:`BATCH_KEEP_HR`) are always packed as metainfo,
    whatever ``meta_keys`` says: without them the model would see the un-resized face.

    Args:
        meta_keys (Sequence[str]): metainfo keys copied when present. Defaults to
            ('img_path', 'sample_idx', 'subset', 'branch', 'ori_shape', 'img_shape', 'flip').
    """

    DEFAULT_META_KEYS = ('img_path', 'sample_idx', 'subset', 'branch', 'ori_shape', 'img_shape', 'flip')

    def __init__(self, meta_keys: Sequence[str] = DEFAULT_META_KEYS) -> None:
        if isinstance(meta_keys, str):
            raise TypeError(f'PackFaceInputs: meta_keys must be a sequence of names, got {meta_keys!r}')
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        """Build ``inputs`` and the ``DataSample``."""
        source = str(results.get('img_path', '<in-memory image>'))
        if 'img' not in results:
            raise KeyError(f'PackFaceInputs: results of {source} have no "img"; keys: {sorted(results)}')
        sample = DataSample()
        label = results.get('gt_label')
        if label is not None:
            # mmpretrain's format_label accepts int but not numpy integers (from packed arrays).
            sample.set_gt_label(int(label) if isinstance(label, np.integer) else label)
        if results.get('hr_img') is not None:
            sample.set_field(image_to_tensor(results['hr_img'], 'hr_img', source), 'hr_img')
        for key in self.meta_keys + (BATCH_RESIZE, BATCH_KEEP_HR):
            if key in results:
                sample.set_field(results[key], key, field_type='metainfo')
        return dict(inputs=image_to_tensor(results['img'], 'img', source), data_samples=sample)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'
