"""Degradation maths (lrfr/datasets/transforms/degradations.py): known values, ranges, determinism."""
import cv2
import numpy as np
import pytest

from lrfr.datasets.transforms.degradations import (DegradationParams, add_gaussian_noise,
                                                   add_poisson_noise, gaussian_blur, jpeg_compress,
                                                   make_rng, motion_blur, motion_kernel,
                                                   random_degrade, resize, sample_height,
                                                   size_for_height)


def _face(h=112, w=92, seed=0):
    """A smooth synthetic 'face': gradients plus a few blobs, so blur/resize have something to act on."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([x / w * 200, y / h * 200, (x + y) / (h + w) * 255], axis=2)
    rng = np.random.default_rng(seed)
    for _ in range(6):
        cy, cx = rng.integers(0, h), rng.integers(0, w)
        img[(y - cy) ** 2 + (x - cx) ** 2 < 40] = rng.integers(0, 255, 3)
    return img.clip(0, 255).astype(np.uint8)


def test_resize_shape_and_antialias():
    img = np.zeros((100, 80, 3), np.uint8)
    img[:, ::2] = 255  # 1-px stripes: an aliasing filter keeps them, an anti-aliased one averages
    small = resize(img, (20, 16), 'bicubic')
    assert small.shape == (20, 16, 3) and small.dtype == np.uint8
    assert abs(float(small.mean()) - 127.5) < 3 and small.std() < 10
    assert resize(img, (100, 80)) is img
    with pytest.raises(ValueError, match='interpolation'):
        resize(img, (10, 10), 'cubic')
    with pytest.raises(ValueError, match='size'):
        resize(img, (0, 10))


def test_size_for_height_keeps_aspect():
    assert size_for_height((112, 92), 20) == (20, 16)
    assert size_for_height((100, 100, 3), 7) == (7, 7)
    assert size_for_height((200, 10), 6) == (6, 1)  # never a zero width


def test_gaussian_blur_preserves_mean_and_smooths():
    img = _face()
    out = gaussian_blur(img, 2.0)
    assert abs(float(out.mean()) - float(img.mean())) < 1.0
    assert np.abs(np.diff(out.astype(float), axis=1)).mean() < np.abs(np.diff(img.astype(float), axis=1)).mean()
    assert gaussian_blur(img, 0) is img


def test_motion_kernel_is_a_normalised_line():
    k = motion_kernel(5, 0)  # horizontal: the mass lies on the centre row
    assert k.shape == (5, 5)
    assert k.sum() == pytest.approx(1.0, abs=1e-6)
    assert k[2].sum() > 0.9
    kv = motion_kernel(5, 90)
    assert kv[:, 2].sum() > 0.9
    img = _face()
    assert motion_blur(img, 0.5, 0) is img


def test_noise_statistics():
    rng = make_rng(0)
    flat = np.full((200, 200, 3), 128, np.uint8)
    noisy = add_gaussian_noise(flat, 5.0, rng)
    assert abs(noisy.astype(float).std() - 5.0) < 0.3
    gray = add_gaussian_noise(flat, 5.0, rng, gray=True)
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    # Poisson: std at intensity x is sqrt(x * 255 / peak) grey levels.
    pois = add_poisson_noise(flat, 255.0, rng)
    assert abs(pois.astype(float).std() - np.sqrt(128.0)) < 0.6


def test_jpeg_compress_roundtrip_loses_detail_by_quality():
    img = _face()
    hi, lo = jpeg_compress(img, 95), jpeg_compress(img, 10)
    assert hi.shape == img.shape and hi.dtype == np.uint8
    err_hi = np.abs(hi.astype(float) - img).mean()
    err_lo = np.abs(lo.astype(float) - img).mean()
    assert err_hi < err_lo


def test_sample_height_range_and_mean():
    hs = np.array([sample_height(make_rng(3, i)) for i in range(3000)])
    assert hs.min() >= 6 and hs.max() <= 32
    assert abs(hs.mean() - 20) < 0.5
    assert sample_height(make_rng(0), (10, 12), 20, 0) == 12  # std 0: clipped mean


def test_random_degrade_is_deterministic_and_varies():
    img = _face()
    a, rec_a = random_degrade(img, make_rng(7, 3))
    b, rec_b = random_degrade(img, make_rng(7, 3))
    assert rec_a == rec_b and np.array_equal(a, b)
    outs = [random_degrade(img, make_rng(8, i))[0] for i in range(12)]
    assert len({o.shape for o in outs}) > 1  # the height varies per sample
    for o in outs:
        assert o.dtype == np.uint8 and o.ndim == 3 and o.shape[2] == 3
        assert 6 <= o.shape[0] <= 32
        assert abs(o.shape[1] - o.shape[0] * 92 / 112) <= 0.5 + 1e-9  # aspect kept


def test_random_degrade_all_steps_on():
    p = DegradationParams(height_range=(20, 20), resize_chain_prob=1, blur_prob=1, noise_prob=1,
                          jpeg_prob=1)
    lr, rec = random_degrade(_face(), make_rng(1), p)
    assert lr.shape == (20, 16, 3)
    assert {'resize_chain', 'interpolation', 'jpeg_quality'} <= set(rec)
    assert ('gaussian_blur' in rec) != ('motion_blur' in rec)
    assert ('gaussian_noise' in rec) != ('poisson_noise' in rec)


def test_random_degrade_all_steps_off_equals_plain_resize():
    p = DegradationParams(height_range=(20, 20), interpolations=('bicubic',), resize_chain_prob=0,
                          blur_prob=0, noise_prob=0, jpeg_prob=0)
    img = _face()
    lr, _ = random_degrade(img, make_rng(0), p)
    assert np.array_equal(lr, resize(img, (20, 16), 'bicubic'))


@pytest.mark.parametrize('bad, message', [
    (dict(blur_prob=1.5), r'blur_prob must be a probability in \[0, 1\], got 1.5'),
    (dict(height_range=(20, 10)), r'height_range must be a pair \(a, b\) with 1 <= a <= b'),
    (dict(jpeg_quality=(0, 90)), r'jpeg_quality must be a pair \(a, b\) with 1 <= a <= b <= 100, got \(0, 90\)'),
    (dict(interpolations=('cubic',)), r"interpolations must be a non-empty subset of .*got \('cubic',\)"),
    (dict(height_range=(5.5, 10)), r'height_range must hold ints, got \(5.5, 10\)')])
def test_degradation_params_reject_bad_values(bad, message):
    with pytest.raises(ValueError, match=message):
        DegradationParams(**bad)


def test_jpeg_compress_is_real_jpeg():
    # A JPEG round-trip at quality 50 must equal OpenCV's own encode/decode.
    img = _face()
    ok, buf = cv2.imencode('.jpg', img, [cv2.IMWRITE_JPEG_QUALITY, 50])
    assert ok and np.array_equal(jpeg_compress(img, 50), cv2.imdecode(buf, cv2.IMREAD_COLOR))


def test_random_capture_identity_settings_leave_the_image_alone():
    from lrfr.datasets.transforms.degradations import CaptureParams, random_capture
    img = np.random.default_rng(0).integers(0, 256, (40, 32, 3), dtype=np.uint8)
    same = CaptureParams(crop_scale=(1.0, 1.0), contrast=(1.0, 1.0), brightness=(0.0, 0.0), gamma=(1.0, 1.0))
    out, record = random_capture(img, np.random.default_rng(1), same)
    assert record['box'] == (0, 0, 32, 40)
    assert np.abs(out.astype(int) - img.astype(int)).max() <= 1  # only the float round trip


def test_random_capture_known_tone_curve_and_box():
    from lrfr.datasets.transforms.degradations import CaptureParams, random_capture
    img = np.full((20, 20, 3), 128, np.uint8)
    params = CaptureParams(crop_scale=(0.5, 0.5), contrast=(2.0, 2.0), brightness=(64.0, 64.0), gamma=(2.0, 2.0))
    out, record = random_capture(img, np.random.default_rng(0), params)
    # (128 - 128) * 2 + 128 + 64 = 192, then 255 * (192 / 255) ** 2 = 144.56 -> 145
    assert out.shape == img.shape and np.all(out == 145)
    x, y, w, h = record['box']
    assert (w, h) == (10, 10) and 0 <= x <= 10 and 0 <= y <= 10


def test_random_capture_is_deterministic_and_varies():
    from lrfr.datasets.transforms.degradations import random_capture
    img = np.random.default_rng(0).integers(0, 256, (56, 46, 3), dtype=np.uint8)
    a, _ = random_capture(img, np.random.default_rng(5))
    b, _ = random_capture(img, np.random.default_rng(5))
    c, _ = random_capture(img, np.random.default_rng(6))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize('bad, message', [
    (dict(crop_scale=(0.9, 0.5)), r'crop_scale must be a pair \(a, b\) with 0.1 <= a <= b <= 1.0, got \(0.9, 0.5\)'),
    (dict(gamma=(0.0, 1.0)), r'gamma must be a pair \(a, b\) with 0.05 <= a <= b'),
    (dict(contrast=(1.0,)), r'contrast must be a pair \(a, b\) .*got \(1.0,\)')])
def test_capture_params_reject_bad_values(bad, message):
    from lrfr.datasets.transforms.degradations import CaptureParams
    with pytest.raises(ValueError, match=message):
        CaptureParams(**bad)
