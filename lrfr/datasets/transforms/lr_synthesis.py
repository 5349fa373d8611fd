"""Synthetic low-resolution faces for the auxiliary (synthetic) branch: LR input + HR target."""
from typing import Optional, Sequence

import numpy as np
from mmcv.transforms import BaseTransform

from lrfr.registry import TRANSFORMS
from .degradations import (INTERPOLATIONS, TINYFACE_MEAN_SIZE, DegradationParams, check_size, make_rng,
                           random_degrade, resize)


class _LRSynthesis(BaseTransform):
    """Shared part of the LR synthesis transforms: keep the HR target, then degrade ``img``.

    Args:
        keep_hr (bool): store the HR image in ``results['hr_img']``. Defaults to True.
        hr_size (Sequence[int], optional): resize the kept HR image to this
            ``(H, W)`` (the FR input size the SR head must produce). Defaults to None.
    """

    def __init__(self, keep_hr: bool = True, hr_size: Optional[Sequence[int]] = None) -> None:
        self.keep_hr = keep_hr
        self.hr_size = None if hr_size is None else check_size(hr_size, 'hr_size')

    def degrade(self, img: np.ndarray, results: dict) -> np.ndarray:
        """Return the LR version of ``img`` (subclasses)."""
        raise NotImplementedError

    def transform(self, results: dict) -> dict:
        """Set ``hr_img`` (when ``keep_hr``) and replace ``img`` by its LR version."""
        if 'img' not in results:
            raise KeyError(f'{self.__class__.__name__}: results have no "img" '
                           f'(put LoadFaceImage first); keys: {sorted(results)}')
        hr = results['img']
        if self.keep_hr:
            # The SR target is the clean HR face at the resolution the FR net consumes.
            results['hr_img'] = hr if self.hr_size is None else resize(hr, self.hr_size, 'bicubic')
        lr = self.degrade(hr, results)
        results['img'] = lr
        results['img_shape'] = lr.shape[:2]
        return results


@TRANSFORMS.register_module()
class BicubicDownsample(_LRSynthesis):
    """Bicubic down-sampling to a fixed LR size, keeping the HR target (the paper's synthetic LR).

    Cheng et al. (ACCV 2018) make the auxiliary LR faces (and SynLR-MF2) by
    down-sampling HR faces to TinyFace's mean size, 20x16 (H x W). The filter is
    anti-aliased bicubic (Pillow; MATLAB ``imresize`` behaves the same), see
    :func:`lrfr.datasets.transforms.degradations.resize`.

    **Required keys:** ``img``. **Modified:** ``img`` (LR), ``img_shape``.
    **Added:** ``hr_img`` when ``keep_hr``.

    Args:
        size (Sequence[int]): LR ``(H, W)``. Defaults to (20, 16).
        keep_hr (bool): keep the HR image as ``hr_img``. Defaults to True.
        hr_size (Sequence[int], optional): resize ``hr_img`` to this ``(H, W)``. Defaults to None.
        interpolation (str): down-sampling filter. Defaults to 'bicubic'.
    """

    def __init__(self, size: Sequence[int] = TINYFACE_MEAN_SIZE, keep_hr: bool = True,
                 hr_size: Optional[Sequence[int]] = None, interpolation: str = 'bicubic') -> None:
        super().__init__(keep_hr, hr_size)
        self.size = check_size(size)
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f'BicubicDownsample: interpolation must be one of {INTERPOLATIONS}, '
                             f'got {interpolation!r}')
        self.interpolation = interpolation

    def degrade(self, img: np.ndarray, results: dict) -> np.ndarray:
        return resize(img, self.size, self.interpolation)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(size={self.size}, keep_hr={self.keep_hr}, '
                f'hr_size={self.hr_size}, interpolation={self.interpolation!r})')


@TRANSFORMS.register_module()
class RandomDegradation(_LRSynthesis):
    """Realistic LR synthesis: random resize chain, blur, down-sampling, noise and JPEG.

    See :func:`lrfr.datasets.transforms.degradations.random_degrade` for the chain
    and :class:`~lrfr.datasets.transforms.degradations.DegradationParams` for every
    probability and range (passed as keyword arguments). The LR height is drawn
    like TinyFace's (6-32 px, mean 20), so the output size varies: follow with
    :class:`ResizeFace` to batch.

    Randomness:

    * ``seed=<int>``: the generator is ``default_rng([seed, sample_idx])``; each
      sample gets the same degradation every time it is loaded, in any worker or
      process (a frozen synthetic LR set, e.g. for evaluation or reproducible runs);
    * ``seed=None``: one draw from NumPy's global generator seeds the sample's
      generator, so each visit degrades differently (augmentation). mmengine seeds
      that global generator per worker from ``randomness.seed`` (``worker_init_fn``),
      so a run is repeatable for the same seed and ``num_workers``.

    **Required keys:** ``img`` (and ``sample_idx`` when ``seed`` is set).
    **Modified:** ``img``, ``img_shape``. **Added:** ``hr_img`` (when ``keep_hr``),
    ``degradation`` (dict of the drawn parameters, for inspection).

    Args:
        seed (int, optional): see above. Defaults to None.
        keep_hr (bool): keep the HR image as ``hr_img``. Defaults to True.
        hr_size (Sequence[int], optional): resize ``hr_img`` to this ``(H, W)``. Defaults to None.
        **params: fields of ``DegradationParams`` (``height_range``, ``blur_prob``, ...).
    """

    def __init__(self, seed: Optional[int] = None, keep_hr: bool = True,
                 hr_size: Optional[Sequence[int]] = None, **params) -> None:
        super().__init__(keep_hr, hr_size)
        if seed is not None and (not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f'RandomDegradation: seed must be a non-negative int or None, got {seed!r}')
        self.seed = seed
        # Lists from configs become tuples so the frozen dataclass stays hashable and printable.
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
        try:
            self.params = DegradationParams(**params)
        except TypeError as e:
            raise TypeError(f'RandomDegradation: {e}; valid keys are '
                            f'{sorted(DegradationParams.__dataclass_fields__)}') from e

    def _rng(self, results: dict) -> np.random.Generator:
        if self.seed is None:
            return make_rng(int(np.random.randint(2**31)))
        if 'sample_idx' not in results:
            raise KeyError('RandomDegradation(seed=...) needs results["sample_idx"] (set by '
                           'mmengine BaseDataset) to derive the per-sample generator')
        return make_rng(self.seed, int(results['sample_idx']))

    def degrade(self, img: np.ndarray, results: dict) -> np.ndarray:
        lr, record = random_degrade(img, self._rng(results), self.params)
        results['degradation'] = record
        return lr

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(seed={self.seed}, keep_hr={self.keep_hr}, '
                f'hr_size={self.hr_size}, params={self.params})')

