"""Low-resolution synthesis maths: resizing, blur, noise, JPEG and a realistic degradation chain.

Plain functions on ``HWC uint8`` BGR arrays with an explicit ``numpy.random.Generator``,
shared by the pipeline transforms (:class:`BicubicDownsample`, :class:`RandomDegradation`),
the embedded demo builder (:mod:`lrfr.datasets.converters.demo`) and the SynLR builder
(:mod:`lrfr.datasets.converters.synlr`), so each idea is written once.

The chain follows the classical degradation model used by blind super-resolution
work (e.g. BSRGAN, Zhang et al. 2021; Real-ESRGAN, Wang et al. 2021)::

    y = JPEG_q( (resize_chain(x) (*) k) down_s + n )

with ``k`` a Gaussian or linear-motion blur kernel, ``down_s`` a down-sampling to a
target height drawn like TinyFace's face heights (6-32 px, mean 20; Fig. 4 of Cheng
et al., "Low-Resolution Face Recognition", ACCV 2018), ``n`` Gaussian or Poisson
noise and ``JPEG_q`` a re-compression. Blur widths are given in **LR pixels** so the
same settings mean the same thing whatever the source resolution.
"""
import dataclasses
import math
from typing import Dict, Optional, Sequence, Tuple

import cv2
import mmcv
import numpy as np

#: Interpolations accepted by :func:`resize`. All go through Pillow, whose filters
#: widen with the shrink factor (anti-aliased, like MATLAB's ``imresize`` that the
#: paper's authors used); OpenCV's INTER_CUBIC samples 4 taps and aliases badly at 5x.
INTERPOLATIONS = ('nearest', 'bilinear', 'bicubic', 'area', 'lanczos')
_PILLOW_NAMES = {'area': 'box'}

#: TinyFace's mean face size (H, W) in pixels (paper, Sec. 4.1 and Table 1).
TINYFACE_MEAN_SIZE = (20, 16)
#: TinyFace's range of face heights in pixels (paper, Fig. 4).
TINYFACE_HEIGHT_RANGE = (6, 32)
#: TinyFace's mean face height (paper, Fig. 4).
TINYFACE_HEIGHT_MEAN = 20.0


def make_rng(seed: int, *keys: int) -> np.random.Generator:
    """Return a generator determined by ``seed`` and ``keys`` (e.g. a sample index).

    ``numpy.random.default_rng([seed, *keys])`` hashes the whole sequence through
    ``SeedSequence``, so neighbouring indices get independent, reproducible streams
    regardless of which worker process draws them.

    Args:
        seed (int): base seed (non-negative).
        *keys (int): further non-negative integers, e.g. the sample index.
    """
    if seed < 0 or any(k < 0 for k in keys):
        raise ValueError(f'make_rng: seed and keys must be non-negative, got {seed}, {keys}')
    return np.random.default_rng([int(seed), *(int(k) for k in keys)])


def check_size(size: Sequence[int], name: str = 'size') -> Tuple[int, int]:
    """Validate an ``(H, W)`` pair of positive ints and return it as a tuple.

    Args:
        size (Sequence[int]): the pair to check.
        name (str): argument name used in the error message. Defaults to 'size'.
    """
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(isinstance(s, (int, np.integer)) and s > 0 for s in size)):
        raise ValueError(f'{name} must be a pair of positive ints (H, W), got {size!r}')
    return int(size[0]), int(size[1])


def resize(img: np.ndarray, size: Sequence[int], interpolation: str = 'bicubic') -> np.ndarray:
    """Resize ``img`` to ``size = (H, W)`` with an anti-aliased Pillow filter.

    Args:
        img (np.ndarray): ``HWC`` uint8 image.
        size (Sequence[int]): output ``(H, W)``.
        interpolation (str): one of :data:`INTERPOLATIONS`. Defaults to 'bicubic'
            (Keys' cubic, a = -0.5, as MATLAB's ``imresize``).
    """
    h, w = check_size(size)
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f'interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}')
    if img.shape[:2] == (h, w):
        return img
    # mmcv takes (W, H); Pillow keeps uint8 and clips internally.
    return mmcv.imresize(img, (w, h), interpolation=_PILLOW_NAMES.get(interpolation, interpolation),
                         backend='pillow')


def size_for_height(shape: Sequence[int], height: int) -> Tuple[int, int]:
    """``(height, width)`` with the aspect ratio of an image of ``shape = (H, W, ...)`` kept.

    Args:
        shape (Sequence[int]): source shape, ``(H, W)`` first.
        height (int): target height in pixels.
    """
    h, w = shape[:2]
    return int(height), max(1, int(round(height * w / h)))


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Isotropic Gaussian blur with standard deviation ``sigma`` (pixels of ``img``).

    The kernel spans ``+-3 sigma`` (OpenCV's choice when ``ksize=(0, 0)``); borders
    are reflected. ``sigma <= 0`` returns the image unchanged.

    Args:
        img (np.ndarray): ``HWC`` uint8 image.
        sigma (float): standard deviation in pixels.
    """
    if sigma <= 0:
        return img
    return cv2.GaussianBlur(img, (0, 0), sigmaX=float(sigma), borderType=cv2.BORDER_REFLECT_101)


def motion_kernel(length: float, angle: float) -> np.ndarray:
    """Normalised linear motion-blur kernel: a segment of ``length`` px at ``angle`` degrees.

    The segment is sampled densely and each sample splatted bilinearly onto the
    pixel grid, so sub-pixel lengths and any angle give a smooth, centred kernel.

    Args:
        length (float): blur path length in pixels (>= 1).
        angle (float): direction in degrees, counter-clockwise from the x axis.
    """
    size = int(math.ceil(length)) | 1  # odd, so the segment is centred on a pixel
    kernel = np.zeros((size + 1, size + 1), np.float64)  # one spare row/col for the splat
    c = (size - 1) / 2.0
    t = np.linspace(-(length - 1) / 2.0, (length - 1) / 2.0, max(2, int(math.ceil(length * 16))))
    xs = c + t * math.cos(math.radians(angle))
    ys = c - t * math.sin(math.radians(angle))
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            np.add.at(kernel, (y0 + dy, x0 + dx), wy * wx)
    kernel = kernel[:size, :size]
    return (kernel / kernel.sum()).astype(np.float32)


def motion_blur(img: np.ndarray, length: float, angle: float) -> np.ndarray:
    """Linear motion blur (camera shake / subject motion) along ``angle`` over ``length`` px.

    Args:
        img (np.ndarray): ``HWC`` uint8 image.
        length (float): path length in pixels of ``img``; below 1 the image is returned.
        angle (float): direction in degrees.
    """
    if length < 1:
        return img
    return cv2.filter2D(img, -1, motion_kernel(length, angle), borderType=cv2.BORDER_REFLECT_101)


def _noise_shape(img: np.ndarray, gray: bool) -> Tuple[int, ...]:
    # Gray noise (one field for all channels) models luminance-only sensor noise.
    return img.shape[:2] + (1,) if gray else img.shape


def add_gaussian_noise(img: np.ndarray, sigma: float, rng: np.random.Generator,
                       gray: bool = False) -> np.ndarray:
    """Add zero-mean Gaussian noise of standard deviation ``sigma`` (0-255 levels), then clip.

    Args:
        img (np.ndarray): ``HWC`` uint8 image.
        sigma (float): noise standard deviation in grey levels.
        rng (np.random.Generator): random source.
        gray (bool): same noise on every channel. Defaults to False.
    """
    noise = rng.standard_normal(_noise_shape(img, gray), dtype=np.float32) * np.float32(sigma)
    return np.clip(img.astype(np.float32) + noise, 0, 255).round().astype(np.uint8)


def add_poisson_noise(img: np.ndarray, peak: float, rng: np.random.Generator,
                      gray: bool = False) -> np.ndarray:
    """Signal-dependent shot noise: ``y = Poisson(x / 255 * peak) / peak * 255``.

    ``peak`` is the expected photon count at full white: the smaller, the noisier
    (std at intensity x is ``sqrt(x * 255 / peak)`` grey levels).

    Args:
        img (np.ndarray): ``HWC`` uint8 image.
        peak (float): photons at intensity 255 (> 0).
        rng (np.random.Generator): random source.
        gray (bool): draw the noise on the luminance and add it to every channel.
            Defaults to False.
    """
    x = img.astype(np.float64)
    if gray:
        lum = x.mean(axis=2, keepdims=True)
        noisy = rng.poisson(lum / 255.0 * peak) / peak * 255.0
        out = x + (noisy - lum)
    else:
        out = rng.poisson(x / 255.0 * peak) / peak * 255.0
    return np.clip(out, 0, 255).round().astype(np.uint8)


def jpeg_compress(img: np.ndarray, quality: int) -> np.ndarray:
    """Encode to JPEG at ``quality`` (1-100, libjpeg scale, 4:2:0 chroma) and decode back.

    Args:
        img (np.ndarray): ``HWC`` uint8 BGR image.
        quality (int): JPEG quality.
    """
    ok, buf = cv2.imencode('.jpg', img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError(f'jpeg_compress: OpenCV could not encode an image of shape {img.shape}')
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def sample_height(rng: np.random.Generator,
                  height_range: Sequence[int] = TINYFACE_HEIGHT_RANGE,
                  mean: float = TINYFACE_HEIGHT_MEAN,
                  std: float = 5.0) -> int:
    """Draw a face height like TinyFace's: a normal(mean, std) truncated to ``height_range``.

    The paper gives the range (6-32 px) and mean (20 px) of Fig. 4 but not its
    spread; ``std=5`` is our assumption (about 95% of faces within 10-30 px).
    Rejection sampling keeps the number of draws a function of the generator only.

    Args:
        rng (np.random.Generator): random source.
        height_range (Sequence[int]): inclusive ``(low, high)``. Defaults to (6, 32).
        mean (float): mode of the normal. Defaults to 20.
        std (float): spread; ``0`` always returns ``round(mean)`` clipped. Defaults to 5.
    """
    low, high = int(height_range[0]), int(height_range[1])
    if std <= 0:
        return int(min(max(round(mean), low), high))
    while True:
        h = int(round(rng.normal(mean, std)))
        if low <= h <= high:
            return h


def _check_range(name: str, value: Sequence[float], low: float, high: float) -> None:
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or not low <= value[0] <= value[1] <= high):
        raise ValueError(f'{name} must be a pair (a, b) with {low} <= a <= b <= {high}, got {value!r}')


def _check_prob(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f'{name} must be a probability in [0, 1], got {value!r}')


@dataclasses.dataclass(frozen=True)
class DegradationParams:
    """Probabilities and ranges of :func:`random_degrade` (all checked on construction).

    Args:
        height_range (Tuple[int, int]): inclusive range of the LR face height in
            pixels. Defaults to (6, 32), TinyFace's range.
        height_mean (float): mean LR height. Defaults to 20 (TinyFace).
        height_std (float): spread of the truncated normal (assumed). Defaults to 5.
        interpolations (Tuple[str, ...]): final down-sampling filters, one drawn
            uniformly per image. Defaults to ('area', 'bilinear', 'bicubic').
        resize_chain_prob (float): probability of a down-up resize at HR first
            (repeated re-scaling by web platforms). Defaults to 0.3.
        blur_prob (float): probability of a blur. Defaults to 0.6.
        motion_blur_prob (float): share of blurs that are linear motion. Defaults to 0.25.
        blur_sigma (Tuple[float, float]): Gaussian sigma range in LR pixels. Defaults to (0.3, 1.2).
        motion_length (Tuple[float, float]): motion path length in LR pixels. Defaults to (1.0, 3.0).
        noise_prob (float): probability of noise. Defaults to 0.5.
        poisson_prob (float): share of noise that is Poisson. Defaults to 0.3.
        gray_noise_prob (float): share of noise that is the same on all channels. Defaults to 0.4.
        noise_sigma (Tuple[float, float]): Gaussian noise std in grey levels. Defaults to (1.0, 10.0).
        poisson_peak (Tuple[float, float]): Poisson photons at white (log-uniform). Defaults to (100, 1000).
        jpeg_prob (float): probability of JPEG re-compression. Defaults to 0.7.
        jpeg_quality (Tuple[int, int]): inclusive JPEG quality range. Defaults to (30, 95).
    """

    height_range: Tuple[int, int] = TINYFACE_HEIGHT_RANGE
    height_mean: float = TINYFACE_HEIGHT_MEAN
    height_std: float = 5.0
    interpolations: Tuple[str, ...] = ('area', 'bilinear', 'bicubic')
    resize_chain_prob: float = 0.3
    blur_prob: float = 0.6
    motion_blur_prob: float = 0.25
    blur_sigma: Tuple[float, float] = (0.3, 1.2)
    motion_length: Tuple[float, float] = (1.0, 3.0)
    noise_prob: float = 0.5
    poisson_prob: float = 0.3
    gray_noise_prob: float = 0.4
    noise_sigma: Tuple[float, float] = (1.0, 10.0)
    poisson_peak: Tuple[float, float] = (100.0, 1000.0)
    jpeg_prob: float = 0.7
    jpeg_quality: Tuple[int, int] = (30, 95)

    def __post_init__(self) -> None:
        _check_range('height_range', self.height_range, 1, 10**6)
        if not all(isinstance(v, (int, np.integer)) for v in self.height_range):
            raise ValueError(f'height_range must hold ints, got {self.height_range!r}')
        if self.height_std < 0:
            raise ValueError(f'height_std must be >= 0, got {self.height_std}')
        if not self.interpolations or any(i not in INTERPOLATIONS for i in self.interpolations):
            raise ValueError(
                f'interpolations must be a non-empty subset of {INTERPOLATIONS}, got {self.interpolations!r}')
        for name in ('resize_chain_prob', 'blur_prob', 'motion_blur_prob', 'noise_prob',
                     'poisson_prob', 'gray_noise_prob', 'jpeg_prob'):
            _check_prob(name, getattr(self, name))
        _check_range('blur_sigma', self.blur_sigma, 0.0, 100.0)
        _check_range('motion_length', self.motion_length, 0.0, 100.0)
        _check_range('noise_sigma', self.noise_sigma, 0.0, 255.0)
        _check_range('poisson_peak', self.poisson_peak, 1e-6, 1e9)
        _check_range('jpeg_quality', self.jpeg_quality, 1, 100)


def random_degrade(img: np.ndarray, rng: np.random.Generator,
                   params: Optional[DegradationParams] = None) -> Tuple[np.ndarray, Dict]:
    """Turn an HR face into a realistic native-looking LR face; return it and what was applied.

    Steps, each drawn from ``rng`` with the probabilities of ``params``:

    1. target height ``h`` ~ :func:`sample_height`, width keeping the aspect ratio;
    2. optional down-up resize chain at HR (to a log-uniform intermediate height);
    3. optional Gaussian or motion blur, widths in LR pixels times the shrink factor;
    4. down-sampling to ``(h, w)`` with a randomly chosen filter;
    5. optional Gaussian (std in grey levels) or Poisson noise, colour or gray;
    6. optional JPEG re-compression.

    Args:
        img (np.ndarray): ``HWC`` uint8 HR image.
        rng (np.random.Generator): random source; same generator state, same output.
        params (DegradationParams, optional): settings; ``None`` uses the defaults.

    Returns:
        Tuple[np.ndarray, dict]: the LR image and a record of the drawn parameters.
    """
    p = params or DegradationParams()
    src_h, src_w = img.shape[:2]
    height = sample_height(rng, p.height_range, p.height_mean, p.height_std)
    out_size = size_for_height(img.shape, height)
    shrink = max(src_h / height, 1.0)  # HR pixels per LR pixel
    record: Dict = dict(size=out_size)

    if rng.random() < p.resize_chain_prob and src_h > height:
        mid_h = int(round(math.exp(rng.uniform(math.log(height), math.log(src_h)))))
        interp = p.interpolations[rng.integers(len(p.interpolations))]
        if mid_h < src_h:
            img = resize(resize(img, size_for_height(img.shape, mid_h), interp), (src_h, src_w), 'bilinear')
            record['resize_chain'] = (mid_h, interp)

    if rng.random() < p.blur_prob:
        if rng.random() < p.motion_blur_prob:
            length, angle = rng.uniform(*p.motion_length), rng.uniform(0.0, 180.0)
            img = motion_blur(img, length * shrink, angle)
            record['motion_blur'] = (float(length), float(angle))
        else:
            sigma = rng.uniform(*p.blur_sigma)
            img = gaussian_blur(img, sigma * shrink)
            record['gaussian_blur'] = float(sigma)

    interp = p.interpolations[rng.integers(len(p.interpolations))]
    img = resize(img, out_size, interp)
    record['interpolation'] = interp

    if rng.random() < p.noise_prob:
        gray = bool(rng.random() < p.gray_noise_prob)
        if rng.random() < p.poisson_prob:
            lo, hi = np.log(p.poisson_peak)
            peak = float(np.exp(rng.uniform(lo, hi)))
            img = add_poisson_noise(img, peak, rng, gray)
            record['poisson_noise'] = (peak, gray)
        else:
            sigma = float(rng.uniform(*p.noise_sigma))
            img = add_gaussian_noise(img, sigma, rng, gray)
            record['gaussian_noise'] = (sigma, gray)

    if rng.random() < p.jpeg_prob:
        quality = int(rng.integers(p.jpeg_quality[0], p.jpeg_quality[1] + 1))
        img = jpeg_compress(img, quality)
        record['jpeg_quality'] = quality
    return img, record


@dataclasses.dataclass(frozen=True)
class CaptureParams:
    """Ranges of :func:`random_capture`: how an unposed snapshot differs from a posed, aligned portrait.

    Args:
        crop_scale (Tuple[float, float]): side of the face box relative to the aligned image, so the
            detector's box is smaller and shifted (misalignment). Defaults to (0.8, 0.95).
        contrast (Tuple[float, float]): contrast factor around mid-grey. Defaults to (0.6, 1.4).
        brightness (Tuple[float, float]): offset in grey levels. Defaults to (-40, 40).
        gamma (Tuple[float, float]): gamma of the tone curve. Defaults to (0.6, 1.6).
    """

    crop_scale: Tuple[float, float] = (0.8, 0.95)
    contrast: Tuple[float, float] = (0.6, 1.4)
    brightness: Tuple[float, float] = (-40.0, 40.0)
    gamma: Tuple[float, float] = (0.6, 1.6)

    def __post_init__(self) -> None:
        _check_range('crop_scale', self.crop_scale, 0.1, 1.0)
        _check_range('contrast', self.contrast, 0.0, 10.0)
        _check_range('brightness', self.brightness, -255.0, 255.0)
        _check_range('gamma', self.gamma, 0.05, 20.0)


def random_capture(img: np.ndarray, rng: np.random.Generator,
                   params: Optional[CaptureParams] = None) -> Tuple[np.ndarray, Dict]:
    """Unconstrained-capture variation of an aligned HR face; return it and what was drawn.

    Native low-res faces (TinyFace) come from automatic detections in unposed photos: the box is
    loose and off-centre and the lighting varies, while posed sets (ORL, aligned CelebA) are centred and
    evenly lit. Applied before :func:`random_degrade`, this turns a posed face into a plausible
    detection: a random box (``crop_scale`` of each side, anywhere inside the image) resized back to the
    input size, then contrast, brightness and gamma on the 0..255 scale.

    Args:
        img (np.ndarray): ``HWC`` uint8 image.
        rng (np.random.Generator): random source; same generator state, same output.
        params (CaptureParams, optional): ranges; ``None`` uses the defaults.

    Returns:
        Tuple[np.ndarray, dict]: the image (same size) and the drawn parameters.
    """
    p = params or CaptureParams()
    h, w = img.shape[:2]
    scale = float(rng.uniform(*p.crop_scale))
    ch, cw = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    out = resize(img[y:y + ch, x:x + cw], (h, w), 'bilinear').astype(np.float32)
    contrast, brightness = float(rng.uniform(*p.contrast)), float(rng.uniform(*p.brightness))
    gamma = float(rng.uniform(*p.gamma))
    out = np.clip((out - 128.0) * contrast + 128.0 + brightness, 0.0, 255.0)
    out = 255.0 * (out / 255.0) ** gamma
    record = dict(box=(x, y, cw, ch), contrast=contrast, brightness=brightness, gamma=gamma)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), record
