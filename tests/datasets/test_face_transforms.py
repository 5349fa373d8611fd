"""Face pipeline transforms (lrfr/datasets/transforms): loading, LR synthesis, resize, flip, packing."""
import cv2
import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmpretrain.structures import DataSample

import lrfr.datasets  # noqa: F401  (registers the transforms)
from lrfr.datasets.transforms import FaceImageError, load_face_image
from lrfr.datasets.transforms.degradations import resize
from lrfr.registry import TRANSFORMS
from lrfr.structures import BRANCH_NAT, BRANCH_SYN, DISTRACTOR_LABEL, SUBSET_TRAIN


def _img(h=40, w=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _write(path, img, ext_params=()):
    assert cv2.imwrite(str(path), img, list(ext_params))
    return str(path)


# ---------------------------------------------------------------- LoadFaceImage
def test_load_color_gray_rgba(tmp_path):
    color = _img()
    load = TRANSFORMS.build(dict(type='LoadFaceImage'))
    out = load(dict(img_path=_write(tmp_path / 'c.png', color)))
    assert np.array_equal(out['img'], color)
    assert out['ori_shape'] == (40, 32) and out['img_shape'] == (40, 32)

    gray = color[..., 0]
    out = load(dict(img_path=_write(tmp_path / 'g.png', gray)))
    assert out['img'].shape == (40, 32, 3)
    assert all(np.array_equal(out['img'][..., c], gray) for c in range(3))

    rgba = np.dstack([color, np.full((40, 32), 7, np.uint8)])
    out = load(dict(img_path=_write(tmp_path / 'a.png', rgba)))
    assert np.array_equal(out['img'], color)  # alpha dropped, colour untouched


def test_load_passes_packed_array_through():
    gray = _img()[..., 0]
    out = TRANSFORMS.build(dict(type='LoadFaceImage'))(dict(img=gray, img_path='packed:3'))
    assert out['img'].shape == (40, 32, 3) and out['img_shape'] == (40, 32)


def test_load_errors_name_the_file(tmp_path):
    load = TRANSFORMS.build(dict(type='LoadFaceImage'))
    with pytest.raises(FaceImageError, match='missing.jpg.*not found'):
        load(dict(img_path=str(tmp_path / 'missing.jpg')))
    (tmp_path / 'empty.jpg').write_bytes(b'')
    with pytest.raises(FaceImageError, match='empty.jpg: empty'):
        load(dict(img_path=str(tmp_path / 'empty.jpg')))
    (tmp_path / 'junk.jpg').write_bytes(b'this is not an image at all')
    with pytest.raises(FaceImageError, match='junk.jpg: OpenCV cannot decode'):
        load(dict(img_path=str(tmp_path / 'junk.jpg')))
    deep = (np.arange(40 * 32, dtype=np.uint16).reshape(40, 32) * 50)
    with pytest.raises(FaceImageError, match='deep.png.*8-bit.*uint16'):
        load(dict(img_path=_write(tmp_path / 'deep.png', deep)))


def test_truncated_jpeg_is_detected(tmp_path):
    path = _write(tmp_path / 'face.jpg', _img(64, 64), [cv2.IMWRITE_JPEG_QUALITY, 90])
    data = open(path, 'rb').read()
    assert load_face_image(path).shape == (64, 64, 3)
    # Trailing bytes after the end-of-image marker are legal and accepted.
    (tmp_path / 'tail.jpg').write_bytes(data + b'\x00' * 16)
    assert load_face_image(str(tmp_path / 'tail.jpg')).shape == (64, 64, 3)
    cut = tmp_path / 'cut.jpg'
    cut.write_bytes(data[:len(data) * 2 // 3])
    # OpenCV alone decodes the cut file without complaint (the silent failure we guard against).
    assert cv2.imread(str(cut)) is not None
    with pytest.raises(FaceImageError, match='cut.jpg: truncated or corrupt JPEG'):
        load_face_image(str(cut))


def test_ignore_errors_counts_and_returns_none(tmp_path):
    (tmp_path / 'bad.jpg').write_bytes(b'\xff\xd8 broken')
    load = TRANSFORMS.build(dict(type='LoadFaceImage', ignore_errors=True))
    assert load(dict(img_path=str(tmp_path / 'bad.jpg'))) is None
    assert load(dict(img_path=str(tmp_path / 'nope.jpg'))) is None
    assert load.num_skipped == 2


# ------------------------------------------------------------------ LR synthesis
def test_bicubic_downsample_keeps_hr():
    img = _img(112, 96)
    t = TRANSFORMS.build(dict(type='BicubicDownsample', hr_size=(56, 48)))
    out = t(dict(img=img.copy(), img_shape=(112, 96)))
    assert out['img'].shape == (20, 16, 3) and out['img_shape'] == (20, 16)
    assert np.array_equal(out['img'], resize(img, (20, 16), 'bicubic'))
    assert np.array_equal(out['hr_img'], resize(img, (56, 48), 'bicubic'))
    out = TRANSFORMS.build(dict(type='BicubicDownsample', size=(10, 8), keep_hr=False))(dict(img=img))
    assert 'hr_img' not in out and out['img'].shape == (10, 8, 3)
    with pytest.raises(ValueError, match=r'size must be a pair of positive ints \(H, W\), got \(20,\)'):
        TRANSFORMS.build(dict(type='BicubicDownsample', size=(20,)))
    with pytest.raises(ValueError, match="BicubicDownsample: interpolation must be one of .*got 'cubic'"):
        TRANSFORMS.build(dict(type='BicubicDownsample', interpolation='cubic'))


def test_bicubic_downsample_upsample_to_gives_the_interpolated_lr():
    img = _img(112, 96)
    t = TRANSFORMS.build(dict(type='BicubicDownsample', hr_size=(56, 48), upsample_to=(56, 48)))
    out = t(dict(img=img.copy()))
    expected = resize(resize(img, (20, 16), 'bicubic'), (56, 48), 'bicubic')
    assert out['img'].shape == (56, 48, 3) and out['img_shape'] == (56, 48) and out['lr_shape'] == (20, 16)
    # ILR = bicubic up(bicubic down(HR)); Pillow's uint8 rounding may differ by a grey level
    assert np.abs(out['img'].astype(int) - expected.astype(int)).max() <= 1
    # it is not the HR face: the 20x16 detour lost detail (the SR head's job is to restore it)
    assert np.abs(out['img'].astype(int) - out['hr_img'].astype(int)).mean() > 5
    assert out['hr_img'].shape == out['img'].shape  # both branches of a CSRI batch meet at one size
    with pytest.raises(ValueError, match='upsample_to must be a pair'):
        TRANSFORMS.build(dict(type='BicubicDownsample', upsample_to=(56,)))


def test_bicubic_downsample_tinyface_heights_drawn_seeded():
    img = _img(112, 96)
    t = TRANSFORMS.build(dict(type='BicubicDownsample', height_range=(6, 32), seed=3, upsample_to=(56, 48)))
    shapes = [t(dict(img=img.copy(), sample_idx=i))['lr_shape'] for i in range(300)]
    heights = np.array([h for h, _ in shapes])
    assert heights.min() >= 6 and heights.max() <= 32 and len(set(heights.tolist())) > 15
    assert 18.5 <= heights.mean() <= 21.5  # TinyFace's mean 20 (paper Fig. 4)
    assert all(w == round(0.8 * h) for h, w in shapes)
    again = [t(dict(img=img.copy(), sample_idx=i))['lr_shape'] for i in range(300)]
    assert again == shapes  # seeded per sample: the same draw at every visit
    other = TRANSFORMS.build(dict(type='BicubicDownsample', height_range=(6, 32), seed=4))
    assert [other(dict(img=img.copy(), sample_idx=i))['lr_shape'] for i in range(300)] != shapes
    # values: each output is the bicubic down-sampling to the drawn size, then up
    out = t(dict(img=img.copy(), sample_idx=7))
    h, w = out['lr_shape']
    expected = resize(resize(img, (h, w), 'bicubic'), (56, 48), 'bicubic')
    assert np.abs(out['img'].astype(int) - expected.astype(int)).max() <= 1
    no_up = TRANSFORMS.build(dict(type='BicubicDownsample', height_range=(10, 10), seed=0))
    assert no_up(dict(img=img.copy(), sample_idx=0))['img'].shape == (10, 8, 3)
    with pytest.raises(ValueError, match='not both'):
        TRANSFORMS.build(dict(type='BicubicDownsample', size=(20, 16), height_range=(6, 32)))
    with pytest.raises(ValueError, match='height_range must be ints'):
        TRANSFORMS.build(dict(type='BicubicDownsample', height_range=(32, 6)))
    with pytest.raises(KeyError, match=r'BicubicDownsample\(seed=...\) needs results\["sample_idx"\]'):
        t(dict(img=img.copy()))


def test_bicubic_downsample_unseeded_heights_follow_numpy_global_seed():
    img = _img(112, 96)
    t = TRANSFORMS.build(dict(type='BicubicDownsample', height_range=(6, 32)))
    np.random.seed(5)
    first = [t(dict(img=img))['lr_shape'] for _ in range(20)]
    np.random.seed(5)
    assert [t(dict(img=img))['lr_shape'] for _ in range(20)] == first
    assert len(set(first)) > 3


def test_random_degradation_seeded_per_sample():
    img = _img(112, 92)

    def run(seed, idx):
        t = TRANSFORMS.build(dict(type='RandomDegradation', seed=seed, jpeg_prob=1.0))
        return t(dict(img=img.copy(), sample_idx=idx))

    a, b = run(5, 3), run(5, 3)
    assert np.array_equal(a['img'], b['img']) and a['degradation'] == b['degradation']
    assert np.array_equal(a['hr_img'], img)
    c = run(6, 3)  # another seed, same sample: another degradation
    assert c['degradation'] != a['degradation']
    assert c['img'].shape != a['img'].shape or not np.array_equal(c['img'], a['img'])
    # Different samples under one seed get different degradations.
    assert len({run(5, i)['degradation']['size'] for i in range(10)}) > 1
    with pytest.raises(KeyError, match='sample_idx'):
        TRANSFORMS.build(dict(type='RandomDegradation', seed=1))(dict(img=img))


def test_random_degradation_unseeded_follows_numpy_global_seed():
    img = _img(112, 92)
    t = TRANSFORMS.build(dict(type='RandomDegradation'))
    np.random.seed(11)
    first = [t(dict(img=img))['img'] for _ in range(3)]
    np.random.seed(11)
    again = [t(dict(img=img))['img'] for _ in range(3)]
    assert all(np.array_equal(x, y) for x, y in zip(first, again))
    assert not all(np.array_equal(first[0], x) for x in first[1:])  # varies per visit


def test_random_degradation_bad_args():
    with pytest.raises(TypeError, match='valid keys'):
        TRANSFORMS.build(dict(type='RandomDegradation', blur_probability=0.5))
    with pytest.raises(ValueError, match=r'blur_prob must be a probability in \[0, 1\], got 2'):
        TRANSFORMS.build(dict(type='RandomDegradation', blur_prob=2))
    with pytest.raises(ValueError, match='RandomDegradation: seed must be a non-negative int'):
        TRANSFORMS.build(dict(type='RandomDegradation', seed=-1))
    # Lists from a config are accepted for ranges.
    t = TRANSFORMS.build(dict(type='RandomDegradation', height_range=[10, 12]))
    assert t.params.height_range == (10, 12)


# ----------------------------------------------------------------- resize / flip
def test_resize_face():
    out = TRANSFORMS.build(dict(type='ResizeFace', size=(112, 96)))(dict(img=_img(20, 16)))
    assert out['img'].shape == (112, 96, 3) and out['img_shape'] == (112, 96)
    both = TRANSFORMS.build(dict(type='ResizeFace', size=(8, 8), keys=('img', 'hr_img')))
    out = both(dict(img=_img(20, 16), hr_img=_img(40, 32)))
    assert out['hr_img'].shape == (8, 8, 3)
    with pytest.raises(KeyError, match='hr_img'):
        both(dict(img=_img()))
    with pytest.raises(ValueError, match="ResizeFace: interpolation must be one of .*got 'cubic'"):
        TRANSFORMS.build(dict(type='ResizeFace', size=(8, 8), interpolation='cubic'))


def test_random_hflip_flips_pair_together():
    lr, hr = _img(20, 16, 1), _img(40, 32, 2)
    out = TRANSFORMS.build(dict(type='RandomHFlip', prob=1.0))(dict(img=lr.copy(), hr_img=hr.copy()))
    assert out['flip'] and np.array_equal(out['img'], lr[:, ::-1]) and np.array_equal(out['hr_img'], hr[:, ::-1])
    out = TRANSFORMS.build(dict(type='RandomHFlip', prob=0.0))(dict(img=lr.copy()))
    assert not out['flip'] and np.array_equal(out['img'], lr)
    flips = TRANSFORMS.build(dict(type='RandomHFlip', prob=0.5))
    np.random.seed(0)
    assert 30 < sum(flips(dict(img=lr))['flip'] for _ in range(100)) < 70
    with pytest.raises(ValueError, match=r'RandomHFlip: prob must be in \[0, 1\], got 1.5'):
        TRANSFORMS.build(dict(type='RandomHFlip', prob=1.5))


# ------------------------------------------------------------------------ packing
def test_pack_face_inputs_full_pipeline(tmp_path):
    hr = _img(112, 96)
    path = _write(tmp_path / '3_1.png', hr)
    pipeline = Compose([TRANSFORMS.build(c) for c in [
        dict(type='LoadFaceImage'),
        dict(type='BicubicDownsample', size=(20, 16), hr_size=(112, 96)),
        dict(type='PackFaceInputs'),
    ]])
    out = pipeline(dict(img_path=path, gt_label=4, sample_idx=9, subset=SUBSET_TRAIN, branch=BRANCH_SYN))
    inputs, sample = out['inputs'], out['data_samples']
    assert isinstance(sample, DataSample)
    assert inputs.dtype == torch.uint8 and inputs.shape == (3, 20, 16) and inputs.is_contiguous()
    assert torch.equal(inputs, torch.from_numpy(resize(hr, (20, 16))).permute(2, 0, 1))
    assert torch.equal(sample.hr_img, torch.from_numpy(hr).permute(2, 0, 1))
    assert sample.gt_label.tolist() == [4]
    assert sample.img_path == path and sample.sample_idx == 9
    assert sample.subset == SUBSET_TRAIN and sample.branch == BRANCH_SYN
    assert sample.ori_shape == (112, 96) and sample.img_shape == (20, 16)


def test_pack_face_inputs_labels_and_errors():
    pack = TRANSFORMS.build(dict(type='PackFaceInputs'))
    out = pack(dict(img=_img(), gt_label=DISTRACTOR_LABEL, branch=BRANCH_NAT))
    assert out['data_samples'].gt_label.tolist() == [DISTRACTOR_LABEL]
    assert 'hr_img' not in out['data_samples']
    assert pack(dict(img=_img(), gt_label=np.int64(3)))['data_samples'].gt_label.tolist() == [3]
    assert 'gt_label' not in pack(dict(img=_img()))['data_samples']  # unlabelled data is allowed
    with pytest.raises(TypeError, match='x.jpg.*HxWx3 uint8'):
        pack(dict(img=_img()[..., 0], img_path='x.jpg'))
    with pytest.raises(TypeError, match='hr_img'):
        pack(dict(img=_img(), hr_img=_img().astype(np.float32)))
    with pytest.raises(KeyError, match='img'):
        pack(dict(img_path='y.jpg'))
