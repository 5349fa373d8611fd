"""Geometric face transforms: resize to the model input size, horizontal flip of LR and HR together."""
from typing import Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from lrfr.registry import TRANSFORMS
from .formatting import BATCH_RESIZE
from .degradations import INTERPOLATIONS, check_size, resize


@TRANSFORMS.register_module()
class ResizeFace(BaseTransform):
    """Resize ``img`` (and optionally other image keys) to a fixed ``(H, W)``.

    Used to bring LR faces of varying size to the model input (e.g. 20x16 for an SR
    head with a fixed LR size, or 112x96 for an FR net on bicubic-upsampled LR).
    The aspect ratio is not kept: faces are already cropped to a face box.
    Filters are the anti-aliased ones of
    :func:`lrfr.datasets.transforms.degradations.resize`.

    ``batched=True`` leaves the resize of ``img`` to the batch: the size is appended to
    the sample's ``batch_resize`` and ``FaceDataPreprocessor`` bicubic-resizes every such
    face on the training device, grouped by shape (torch's anti-aliased bicubic, within a
    grey level on average of Pillow's: docs/benchmark.md, "Feeding a GPU"). Only for
    ``keys=('img',)`` and the bicubic filter.

    **Required keys:** ``keys``. **Modified:** ``keys``, ``img_shape`` (when ``img`` is resized).
    **Added:** ``batch_resize`` (``batched`` only).

    Args:
        size (Sequence[int]): output ``(H, W)``.
        interpolation (str): one of ``nearest``, ``bilinear``, ``bicubic``,
            ``area``, ``lanczos``. Defaults to 'bicubic'.
        keys (Sequence[str]): image keys to resize. Defaults to ('img',).
        batched (bool): leave the resize to ``FaceDataPreprocessor`` (see above).
            Defaults to False.
    """

    def __init__(self, size: Sequence[int], interpolation: str = 'bicubic',
                 keys: Sequence[str] = ('img',), batched: bool = False) -> None:
        self.size = check_size(size)
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f'ResizeFace: interpolation must be one of {INTERPOLATIONS}, '
                             f'got {interpolation!r}')
        if isinstance(keys, str) or not keys:
            raise ValueError(f'ResizeFace: keys must be a non-empty sequence of names, got {keys!r}')
        self.interpolation = interpolation
        self.keys = tuple(keys)
        if batched and (self.keys != ('img',) or interpolation != 'bicubic'):
            raise ValueError(f"ResizeFace(batched=True) needs keys=('img',) and interpolation='bicubic' "
                             f'(the batch is resized on the device), got keys={self.keys}, '
                             f'interpolation={interpolation!r}')
        self.batched = bool(batched)

    def transform(self, results: dict) -> dict:
        """Resize every key in ``keys``; a missing key is an error (a mis-ordered pipeline)."""
        if self.batched:
            if 'img' not in results:
                raise KeyError(f'ResizeFace: results have no \'img\'; keys: {sorted(results)}')
            results[BATCH_RESIZE] = tuple(results.get(BATCH_RESIZE, ())) + (self.size,)
            results['img_shape'] = self.size
            return results
        for key in self.keys:
            if key not in results:
                raise KeyError(f'ResizeFace: results have no {key!r}; keys: {sorted(results)}')
            results[key] = resize(results[key], self.size, self.interpolation)
        if 'img' in self.keys:
            results['img_shape'] = self.size
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(size={self.size}, '
                f'interpolation={self.interpolation!r}, keys={self.keys}, batched={self.batched})')


@TRANSFORMS.register_module()
class RandomHFlip(BaseTransform):
    """Mirror the face left-right with probability ``prob``, the LR ``img`` and HR ``hr_img`` together.

    An LR/HR pair must stay aligned for the SR loss, so both are flipped by the
    same draw. The draw uses NumPy's global generator, which mmengine seeds per
    DataLoader worker from ``randomness.seed``.

    **Modified:** ``img`` and ``hr_img`` (when present). **Added:** ``flip`` (bool),
    ``flip_direction`` ('horizontal' or None).

    Args:
        prob (float): flip probability. Defaults to 0.5.
    """

    def __init__(self, prob: float = 0.5) -> None:
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'RandomHFlip: prob must be in [0, 1], got {prob!r}')
        self.prob = prob

    def transform(self, results: dict) -> dict:
        """Flip ``img`` / ``hr_img`` along the width axis, or leave them."""
        flip = bool(np.random.rand() < self.prob)
        if flip:
            for key in ('img', 'hr_img'):
                if key in results:
                    results[key] = np.ascontiguousarray(results[key][:, ::-1])
        results['flip'] = flip
        results['flip_direction'] = 'horizontal' if flip else None
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(prob={self.prob})'
