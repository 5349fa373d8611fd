"""PSNR / SSIM cores on known values and against scikit-image, and the SRQualityMetric plugin."""
import math

import numpy as np
import pytest
import torch
from mmpretrain.structures import DataSample
from skimage.metrics import structural_similarity

from lrfr.evaluation.functional import psnr, ssim, to_y_channel
from lrfr.registry import METRICS


def test_psnr_known_values():
    ref = np.full((3, 8, 8), 100.0)
    assert psnr(ref + 5, ref) == pytest.approx(10 * math.log10(255 ** 2 / 25))
    assert psnr(ref, ref) == math.inf
    # crop_border ignores the damaged frame.
    damaged = ref.copy()
    damaged[:, 0, :] = 0
    assert psnr(damaged, ref, crop_border=1) == math.inf
    assert psnr(damaged, ref) < 20


def test_y_channel_bt601():
    img = np.zeros((3, 2, 2))
    img[2] = 255  # BGR: pure red
    assert to_y_channel(img)[0, 0, 0].item() == pytest.approx(16 + 65.481)
    assert to_y_channel(img, channel_order='rgb')[0, 0, 0].item() == pytest.approx(16 + 24.966)
    white = np.full((3, 2, 2), 255.0)
    assert to_y_channel(white)[0, 0, 0].item() == pytest.approx(235.0)
    # A chroma-only change (luma kept): large RGB error, (almost) none on Y.
    a = np.full((3, 4, 4), 100.0)
    b = a.copy()
    b[2] += 24.966  # R up (BGR order) ...
    b[0] -= 65.481  # ... B down by the matching luma amount
    assert psnr(a, b) < 25 and psnr(a, b, y_channel=True) > 100
    with pytest.raises(ValueError, match='3 channels'):
        to_y_channel(np.zeros((1, 4, 4)))


def test_ssim_matches_skimage():
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 256, (3, 24, 20)).astype(np.float64)
    img = np.clip(ref + rng.normal(0, 20, ref.shape), 0, 255).round()
    expected = structural_similarity(img, ref, channel_axis=0, data_range=255,
                                     gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False)
    assert ssim(img, ref) == pytest.approx(expected, abs=1e-10)
    assert ssim(ref, ref) == pytest.approx(1.0)
    expected_y = structural_similarity(to_y_channel(img)[0].numpy(), to_y_channel(ref)[0].numpy(),
                                       data_range=255, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False)
    assert ssim(img, ref, y_channel=True) == pytest.approx(expected_y, abs=1e-10)
    with pytest.raises(ValueError, match='at least 11x11'):
        ssim(np.zeros((3, 8, 8)), np.zeros((3, 8, 8)))
    with pytest.raises(ValueError, match='same shape'):
        ssim(np.zeros((3, 16, 16)), np.zeros((3, 16, 12)))


def test_sr_quality_metric_denormalises():
    rng = np.random.default_rng(1)
    hr = torch.from_numpy(rng.integers(0, 256, (3, 16, 16)).astype(np.uint8))
    sr = (hr.double() + torch.from_numpy(rng.normal(0, 4, (3, 16, 16)))).clamp(0, 255)
    norm = lambda x: (x.float() - 127.5) / 128  # noqa: E731  (the FaceDataPreprocessor default)
    with_pair = DataSample()
    with_pair.pred_img = norm(sr)
    with_pair.hr_img = norm(hr)
    uint8_target = DataSample()
    uint8_target.pred_img = norm(sr)
    uint8_target.hr_img = hr  # not normalised: used as is
    native = DataSample()
    native.pred_img = norm(sr)  # no HR target: skipped
    metric = METRICS.build(dict(type='SRQualityMetric'))
    metric.process(None, [with_pair.to_dict(), uint8_target.to_dict(), native.to_dict()])
    out = metric.evaluate(3)
    expected = psnr(sr.round(), hr.double())
    assert out['sr/PSNR'] == pytest.approx(expected, abs=1e-6)
    assert out['sr/SSIM'] == pytest.approx(ssim(sr.round(), hr.double()), abs=1e-6)
    # Nothing to score is a configuration error, said plainly.
    metric.process(None, [native.to_dict()])
    with pytest.raises(ValueError, match='pred_img'):
        metric.evaluate(1)
    with pytest.raises(ValueError, match='std'):
        METRICS.build(dict(type='SRQualityMetric', std=0))
