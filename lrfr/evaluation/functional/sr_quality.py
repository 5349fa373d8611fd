"""Super-resolution image quality: PSNR and SSIM on the 0..255 scale, optionally on the Y channel.

PSNR = 10 log10(L^2 / MSE) with L = ``data_range``. SSIM follows Wang, Bovik, Sheikh &
Simoncelli, "Image Quality Assessment: From Error Visibility to Structural Similarity",
TIP 2004: an 11x11 Gaussian window (sigma 1.5), ``C1 = (0.01 L)^2``,
``C2 = (0.03 L)^2``, the SSIM map over the 'valid' window positions, its mean, then
the mean over channels (the convention of the authors' MATLAB code, BasicSR and
``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False)``). The Y channel is ITU-R BT.601 luma as in MATLAB's
``rgb2ycbcr``: ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` for 0..255 inputs.
"""
import math
from typing import Any

import torch
import torch.nn.functional as F

from ._tensor import as_tensor

CHANNEL_ORDERS = ('bgr', 'rgb')
_Y_WEIGHTS_RGB = (65.481, 128.553, 24.966)


def _as_image(x: Any, name: str) -> torch.Tensor:
    """A ``(C, H, W)`` float64 image (``(H, W)`` is taken as one channel)."""
    t = as_tensor(x, name).double()
    if t.dim() == 2:
        t = t.unsqueeze(0)
    if t.dim() != 3:
        raise ValueError(f'{name}: expected a (C, H, W) or (H, W) image, got shape {tuple(t.shape)}')
    return t


def to_y_channel(img: Any, channel_order: str = 'bgr') -> torch.Tensor:
    """BT.601 luma (16..235) of a 3-channel 0..255 image, as a ``(1, H, W)`` float64 tensor.

    Args:
        img (np.ndarray | torch.Tensor): ``(3, H, W)`` image on the 0..255 scale.
        channel_order (str): ``'bgr'`` (OpenCV, lrfr's default) or ``'rgb'``.
            Defaults to ``'bgr'``.
    """
    if channel_order not in CHANNEL_ORDERS:
        raise ValueError(f'channel_order: expected one of {CHANNEL_ORDERS}, got {channel_order!r}')
    t = _as_image(img, 'img')
    if t.shape[0] != 3:
        raise ValueError(f'img: the Y channel needs 3 channels, got {t.shape[0]}')
    w = t.new_tensor(_Y_WEIGHTS_RGB if channel_order == 'rgb' else _Y_WEIGHTS_RGB[::-1])
    return (16.0 + torch.einsum('c,chw->hw', w, t) / 255.0).unsqueeze(0)


def _prepare(img: Any, ref: Any, crop_border: int, y_channel: bool,
             channel_order: str) -> tuple:
    a, b = _as_image(img, 'img'), _as_image(ref, 'ref')
    if a.shape != b.shape:
        raise ValueError(f'img and ref must have the same shape, got {tuple(a.shape)} and '
                         f'{tuple(b.shape)}')
    if not isinstance(crop_border, int) or crop_border < 0:
        raise ValueError(f'crop_border: expected a non-negative int, got {crop_border!r}')
    if crop_border:
        a = a[:, crop_border:-crop_border, crop_border:-crop_border]
        b = b[:, crop_border:-crop_border, crop_border:-crop_border]
        if a.numel() == 0:
            raise ValueError(f'crop_border={crop_border} leaves nothing of a {tuple(img.shape)} image')
    if y_channel:
        a, b = to_y_channel(a, channel_order), to_y_channel(b, channel_order)
    return a, b


def psnr(img: Any, ref: Any, data_range: float = 255.0, crop_border: int = 0,
         y_channel: bool = False, channel_order: str = 'bgr') -> float:
    """Peak signal-to-noise ratio in dB (``inf`` for identical images).

    Args:
        img (np.ndarray | torch.Tensor): ``(C, H, W)`` or ``(H, W)`` image, 0..255 scale.
        ref (np.ndarray | torch.Tensor): reference image, same shape.
        data_range (float): peak value L. Defaults to 255.
        crop_border (int): pixels removed at each border first. Defaults to 0.
        y_channel (bool): compare BT.601 luma only. Defaults to False.
        channel_order (str): ``'bgr'`` or ``'rgb'`` (for ``y_channel``). Defaults to ``'bgr'``.

    Returns:
        float: PSNR in dB.
    """
    a, b = _prepare(img, ref, crop_border, y_channel, channel_order)
    mse = float(((a - b) ** 2).mean())
    return math.inf if mse == 0 else 10.0 * math.log10(data_range ** 2 / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-x ** 2 / (2 * sigma ** 2))
    g /= g.sum()
    return torch.outer(g, g)


def ssim(img: Any, ref: Any, data_range: float = 255.0, crop_border: int = 0,
         y_channel: bool = False, channel_order: str = 'bgr') -> float:
    """Structural similarity (Wang et al. 2004), mean over the valid map and the channels.

    Args:
        img (np.ndarray | torch.Tensor): ``(C, H, W)`` or ``(H, W)`` image, 0..255 scale;
            at least 11x11 after cropping.
        ref (np.ndarray | torch.Tensor): reference image, same shape.
        data_range (float): peak value L. Defaults to 255.
        crop_border (int): pixels removed at each border first. Defaults to 0.
        y_channel (bool): compare BT.601 luma only. Defaults to False.
        channel_order (str): ``'bgr'`` or ``'rgb'`` (for ``y_channel``). Defaults to ``'bgr'``.

    Returns:
        float: SSIM in [-1, 1].
    """
    a, b = _prepare(img, ref, crop_border, y_channel, channel_order)
    window = _gaussian_window().to(a.device)
    k = window.shape[0]
    if min(a.shape[1:]) < k:
        raise ValueError(f'ssim: images must be at least {k}x{k} pixels, got {tuple(a.shape[1:])}')
    c = a.shape[0]
    weight = window.expand(c, 1, k, k)
    a, b = a.unsqueeze(0), b.unsqueeze(0)

    def filt(x: torch.Tensor) -> torch.Tensor:  # per-channel Gaussian mean, 'valid' positions
        return F.conv2d(x, weight, groups=c)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = filt(a), filt(b)
    var_a = filt(a * a) - mu_a ** 2
    var_b = filt(b * b) - mu_b ** 2
    cov = filt(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return float(ssim_map.mean())
