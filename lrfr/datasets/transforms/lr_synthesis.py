"""Synthetic low-resolution faces for the auxiliary (synthetic) branch: LR input + HR target."""
from typing import Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from lrfr.registry import TRANSFORMS
from .formatting import BATCH_KEEP_HR, BATCH_RESIZE
from .degradations import (INTERPOLATIONS, TINYFACE_HEIGHT_MEAN, TINYFACE_MEAN_SIZE, DegradationParams,
                           check_size, make_rng, random_degrade, resize, sample_height)


def _check_seed(owner: str, seed: Optional[int]) -> Optional[int]:
    if seed is not None and (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0):
        raise ValueError(f'{owner}: seed must be a non-negative int or None, got {seed!r}')
    return None if seed is None else int(seed)


class _LRSynthesis(BaseTransform):
    """Shared part of the LR synthesis transforms: keep the HR target, degrade ``img``, optionally up-sample it.

    With ``upsample_to`` the LR face is bicubic-up-sampled back to that size after the
    degradation: the "interpolated LR" (ILR) input of VDSR's training recipe (Kim et
    al., CVPR 2016), so that synthetic LR faces reach a pre-upsampling SR head at the
    same size as native LR faces resized to the FR input (one tensor per batch).

    Randomness (for the subclasses that draw): ``seed=<int>`` gives sample ``i`` the
    generator ``make_rng(seed, i)`` (the same draw every time it is loaded, in any
    worker); ``seed=None`` seeds the sample's generator with one draw of NumPy's global
    generator, which mmengine seeds per worker from ``randomness.seed`` (repeatable for
    the same seed and ``num_workers``, different at each visit).

    Args:
        keep_hr (bool): store the HR image in ``results['hr_img']``. Defaults to True.
        hr_size (Sequence[int], optional): resize the kept HR image to this
            ``(H, W)`` (the FR input size the SR head must produce). Defaults to None.
        upsample_to (Sequence[int], optional): bicubic-resize the LR result to this
            ``(H, W)`` (usually the FR input size, ``hr_size``). Defaults to None (keep the LR size).
        seed (int, optional): see above. Defaults to None.
    """

    def __init__(self, keep_hr: bool = True, hr_size: Optional[Sequence[int]] = None,
                 upsample_to: Optional[Sequence[int]] = None, seed: Optional[int] = None) -> None:
        self.keep_hr = keep_hr
        self.hr_size = None if hr_size is None else check_size(hr_size, 'hr_size')
        self.upsample_to = None if upsample_to is None else check_size(upsample_to, 'upsample_to')
        self.seed = _check_seed(self.__class__.__name__, seed)

    def _rng(self, results: dict) -> np.random.Generator:
        """The sample's generator (see the class docstring)."""
        if self.seed is None:
            return make_rng(int(np.random.randint(2**31)))
        if 'sample_idx' not in results:
            raise KeyError(f'{self.__class__.__name__}(seed=...) needs results["sample_idx"] (set by '
                           'mmengine BaseDataset) to derive the per-sample generator')
        return make_rng(self.seed, int(results['sample_idx']))

    def degrade(self, img: np.ndarray, results: dict) -> np.ndarray:
        """Return the LR version of ``img`` (subclasses)."""
        raise NotImplementedError

    def transform(self, results: dict) -> dict:
        """Set ``hr_img`` (when ``keep_hr``) and replace ``img`` by its LR (or ILR) version."""
        if 'img' not in results:
            raise KeyError(f'{self.__class__.__name__}: results have no "img" '
                           f'(put LoadFaceImage first); keys: {sorted(results)}')
        hr = results['img']
        if self.keep_hr:
            # The SR target is the clean HR face at the resolution the FR net consumes.
            results['hr_img'] = hr if self.hr_size is None else resize(hr, self.hr_size, 'bicubic')
        lr = self.degrade(hr, results)
        results['lr_shape'] = lr.shape[:2]
        if self.upsample_to is not None:
            lr = resize(lr, self.upsample_to, 'bicubic')
        results['img'] = lr
        results['img_shape'] = lr.shape[:2]
        return results


@TRANSFORMS.register_module()
class BicubicDownsample(_LRSynthesis):
    """Bicubic down-sampling to TinyFace's LR size, keeping the HR target (the paper's synthetic LR).

    Cheng et al. (ACCV 2018) make the auxiliary LR faces (and SynLR-MF2) by
    down-sampling HR faces to TinyFace's mean size, 20x16 (H x W). The filter is
    anti-aliased bicubic (Pillow; MATLAB ``imresize`` behaves the same), see
    :func:`lrfr.datasets.transforms.degradations.resize`.

    Two options beyond the paper:

    * ``height_range``: draw each LR height like TinyFace's face heights (Fig. 4: 6-32
      px, mean 20) with :func:`~lrfr.datasets.transforms.degradations.sample_height`,
      the width being ``round(width_ratio * height)`` (TinyFace's mean 16/20 = 0.8),
      instead of the fixed ``size``;
    * ``upsample_to``: bicubic-up-sample the LR face back to the FR input size (VDSR's
      interpolated-LR input), so synthetic and native faces share one size in a batch.

    ``batched=True`` leaves the down- and up-sampling to the batch: the sample keeps
    the HR face as ``img`` (at ``hr_size`` when given) and records the LR size and
    ``upsample_to`` in ``batch_resize`` (with ``batch_keep_hr``); ``FaceDataPreprocessor``
    then keeps the HR face as ``hr_img`` and makes the ILR input for the whole batch at
    once on the training device (torch's anti-aliased bicubic, within 1-2 grey levels of
    the per-sample Pillow path: docs/benchmark.md, "Feeding a GPU"). It needs
    ``upsample_to``, ``keep_hr`` and the bicubic filter, and no transform after it that
    reads ``hr_img``. The LR size is still drawn here, per sample.

    **Required keys:** ``img`` (and ``sample_idx`` when ``height_range`` and ``seed``
    are set). **Modified:** ``img`` (LR or ILR), ``img_shape``. **Added:** ``lr_shape``
    (the size the face was down-sampled to), ``hr_img`` when ``keep_hr``.

    Args:
        size (Sequence[int], optional): fixed LR ``(H, W)``. Defaults to None, meaning
            (20, 16) unless ``height_range`` is given (they exclude each other).
        keep_hr (bool): keep the HR image as ``hr_img``. Defaults to True.
        hr_size (Sequence[int], optional): resize ``hr_img`` to this ``(H, W)``. Defaults to None.
        interpolation (str): down-sampling filter. Defaults to 'bicubic'.
        upsample_to (Sequence[int], optional): see above. Defaults to None.
        height_range (Sequence[int], optional): inclusive ``(low, high)`` of the drawn LR
            heights, e.g. (6, 32) for TinyFace. Defaults to None (fixed ``size``).
        height_mean (float): mean of the drawn heights. Defaults to 20 (TinyFace).
        height_std (float): spread of the truncated normal (assumed, see
            ``sample_height``). Defaults to 5.
        width_ratio (float): LR width / height for drawn heights. Defaults to 0.8.
        seed (int, optional): seed of the drawn heights (see :class:`_LRSynthesis`).
            Defaults to None.
        batched (bool): leave the resizing to ``FaceDataPreprocessor`` (see above).
            Defaults to False.
    """

    def __init__(self, size: Optional[Sequence[int]] = None, keep_hr: bool = True,
                 hr_size: Optional[Sequence[int]] = None, interpolation: str = 'bicubic',
                 upsample_to: Optional[Sequence[int]] = None,
                 height_range: Optional[Sequence[int]] = None,
                 height_mean: float = TINYFACE_HEIGHT_MEAN, height_std: float = 5.0,
                 width_ratio: float = TINYFACE_MEAN_SIZE[1] / TINYFACE_MEAN_SIZE[0],
                 seed: Optional[int] = None, batched: bool = False) -> None:
        super().__init__(keep_hr, hr_size, upsample_to, seed)
        if batched and (upsample_to is None or not keep_hr or interpolation != 'bicubic'):
            raise ValueError(f'BicubicDownsample(batched=True) needs upsample_to, keep_hr=True and '
                             f"interpolation='bicubic' (the batch is resized on the device), got "
                             f'upsample_to={upsample_to!r}, keep_hr={keep_hr!r}, interpolation={interpolation!r}')
        self.batched = bool(batched)
        if size is not None and height_range is not None:
            raise ValueError(f'BicubicDownsample: give a fixed size or a height_range, not both '
                             f'(got size={size!r}, height_range={height_range!r})')
        self.size = None if height_range is not None else check_size(
            TINYFACE_MEAN_SIZE if size is None else size)
        if height_range is not None:
            if (not isinstance(height_range, (tuple, list)) or len(height_range) != 2
                    or not all(isinstance(v, (int, np.integer)) for v in height_range)
                    or not 1 <= height_range[0] <= height_range[1]):
                raise ValueError(f'BicubicDownsample: height_range must be ints (low, high) with '
                                 f'1 <= low <= high, got {height_range!r}')
            height_range = (int(height_range[0]), int(height_range[1]))
            if height_std < 0 or width_ratio <= 0:
                raise ValueError(f'BicubicDownsample: height_std must be >= 0 and width_ratio > 0, '
                                 f'got {height_std!r}, {width_ratio!r}')
        self.height_range = height_range
        self.height_mean, self.height_std, self.width_ratio = float(height_mean), float(height_std), \
            float(width_ratio)
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f'BicubicDownsample: interpolation must be one of {INTERPOLATIONS}, '
                             f'got {interpolation!r}')
        self.interpolation = interpolation

    def lr_size(self, results: dict) -> Tuple[int, int]:
        """The ``(H, W)`` this sample is down-sampled to: the fixed size or a drawn TinyFace-like one."""
        if self.height_range is None:
            return self.size
        h = sample_height(self._rng(results), self.height_range, self.height_mean, self.height_std)
        return h, max(1, int(round(self.width_ratio * h)))

    def degrade(self, img: np.ndarray, results: dict) -> np.ndarray:
        return resize(img, self.lr_size(results), self.interpolation)

    def transform(self, results: dict) -> dict:
        """Per sample as :class:`_LRSynthesis`; with ``batched``, record the resizes for the batch instead."""
        if not self.batched:
            return super().transform(results)
        if 'img' not in results:
            raise KeyError(f'BicubicDownsample: results have no "img" (put LoadFaceImage first); '
                           f'keys: {sorted(results)}')
        hr = results['img'] if self.hr_size is None else resize(results['img'], self.hr_size, 'bicubic')
        lr_size = self.lr_size(results)
        results['img'] = hr
        results['lr_shape'] = lr_size
        results['img_shape'] = self.upsample_to
        results[BATCH_RESIZE] = (lr_size, self.upsample_to)
        results[BATCH_KEEP_HR] = True
        return results

    def __repr__(self) -> str:
        size = (f'size={self.size}' if self.height_range is None else
                f'height_range={self.height_range}, height_mean={self.height_mean}, '
                f'height_std={self.height_std}, width_ratio={self.width_ratio}, seed={self.seed}')
        return (f'{self.__class__.__name__}({size}, keep_hr={self.keep_hr}, hr_size={self.hr_size}, '
                f'upsample_to={self.upsample_to}, interpolation={self.interpolation!r}, batched={self.batched})')


@TRANSFORMS.register_module()
class RandomDegradation(_LRSynthesis):
    """Realistic LR synthesis: random resize chain, blur, down-sampling, noise and JPEG.

    See :func:`lrfr.datasets.transforms.degradations.random_degrade` for the chain
    and :class:`~lrfr.datasets.transforms.degradations.DegradationParams` for every
    probability and range (passed as keyword arguments). The LR height is drawn
    like TinyFace's (6-32 px, mean 20), so the output size varies: set ``upsample_to``
    (or follow with :class:`ResizeFace`) to batch.

    Randomness: ``seed=<int>`` gives each sample the same degradation every time it
    is loaded, in any worker or process (a frozen synthetic LR set, e.g. for evaluation
    or reproducible runs); ``seed=None`` degrades differently at each visit
    (augmentation), repeatably for the run's ``randomness.seed`` (see :class:`_LRSynthesis`).

    **Required keys:** ``img`` (and ``sample_idx`` when ``seed`` is set).
    **Modified:** ``img``, ``img_shape``. **Added:** ``lr_shape``, ``hr_img`` (when
    ``keep_hr``), ``degradation`` (dict of the drawn parameters, for inspection).

    Args:
        seed (int, optional): see above. Defaults to None.
        keep_hr (bool): keep the HR image as ``hr_img``. Defaults to True.
        hr_size (Sequence[int], optional): resize ``hr_img`` to this ``(H, W)``. Defaults to None.
        upsample_to (Sequence[int], optional): bicubic-resize the LR face to this ``(H, W)``
            (interpolated-LR input). Defaults to None.
        **params: fields of ``DegradationParams`` (``height_range``, ``blur_prob``, ...).
    """

    def __init__(self, seed: Optional[int] = None, keep_hr: bool = True,
                 hr_size: Optional[Sequence[int]] = None, upsample_to: Optional[Sequence[int]] = None,
                 **params) -> None:
        super().__init__(keep_hr, hr_size, upsample_to, seed)
        # Lists from configs become tuples so the frozen dataclass stays hashable and printable.
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
        try:
            self.params = DegradationParams(**params)
        except TypeError as e:
            raise TypeError(f'RandomDegradation: {e}; valid keys are '
                            f'{sorted(DegradationParams.__dataclass_fields__)}') from e

    def degrade(self, img: np.ndarray, results: dict) -> np.ndarray:
        lr, record = random_degrade(img, self._rng(results), self.params)
        results['degradation'] = record
        return lr

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(seed={self.seed}, keep_hr={self.keep_hr}, '
                f'hr_size={self.hr_size}, upsample_to={self.upsample_to}, params={self.params})')

