"""Resizes left to the batch (batched=True) match the per-sample Pillow path; the preprocessor does them."""
import copy
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.dataset import pseudo_collate

from lrfr.datasets.transforms.degradations import resize
from lrfr.models.data_preprocessors import face_collate
from lrfr.models.data_preprocessors.batch_resize import bicubic_chain
from lrfr.registry import MODELS, TRANSFORMS
from lrfr.utils import register_all_modules
from lrfr.utils.config_utils import load_config

register_all_modules()
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FR = (112, 96)


def _face(seed: int, shape=(112, 96)) -> np.ndarray:
    """A smooth random face-sized image (blurred noise: face-like spectrum, no hard edges)."""
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 256, (*shape, 3), dtype=np.uint8), (0, 0), 1.5)


def _chw(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


@pytest.mark.parametrize('sizes', [((20, 16), FR), ((6, 5), FR), ((32, 26), FR), ((12, 10),)])
def test_bicubic_chain_matches_the_pillow_path(sizes):
    imgs = [_face(i) for i in range(8)]
    expected = []
    for img in imgs:
        for size in sizes:
            img = resize(img, size, 'bicubic')
        expected.append(img.astype(int))
    out = bicubic_chain(torch.stack([_chw(i) for i in imgs]), sizes)
    assert out.dtype == torch.uint8 and tuple(out.shape) == (8, 3, *sizes[-1])
    diff = np.abs(out.permute(0, 2, 3, 1).numpy().astype(int) - np.stack(expected))
    # torch keeps float between its two 1-D passes where Pillow rounds to uint8: a grey level or two apart
    assert diff.mean() < 0.5 and diff.max() <= 3, (diff.mean(), diff.max())


def test_bicubic_chain_is_not_plain_bicubic():
    # The anti-aliased filter matters: plain bicubic (a = -0.75, 4 taps) at a 5.6x shrink aliases.
    img = _face(0)
    x = _chw(img)[None]
    plain = torch.nn.functional.interpolate(x.float(), size=(20, 16), mode='bicubic', align_corners=False)
    ref = resize(img, (20, 16), 'bicubic').astype(float)
    err_plain = np.abs(plain[0].permute(1, 2, 0).clamp(0, 255).round().numpy() - ref).mean()
    err_chain = np.abs(bicubic_chain(x, [(20, 16)])[0].permute(1, 2, 0).numpy() - ref).mean()
    assert err_chain < 0.5 < err_plain


def _csri_batch(batched: bool, hr_faces, native_faces, height_range=None):
    """A CSRI-like batch: synthetic pairs (BicubicDownsample) then native faces (ResizeFace), packed."""
    lr = dict(size=(20, 16)) if height_range is None else dict(height_range=height_range, seed=3)
    syn = Compose([TRANSFORMS.build(dict(type='BicubicDownsample', hr_size=FR, upsample_to=FR, batched=batched,
                                         **lr)),
                   TRANSFORMS.build(dict(type='PackFaceInputs'))])
    nat = Compose([TRANSFORMS.build(dict(type='ResizeFace', size=FR, batched=batched)),
                   TRANSFORMS.build(dict(type='PackFaceInputs'))])
    packed = [syn(dict(img=f, sample_idx=i)) for i, f in enumerate(hr_faces)]
    packed += [nat(dict(img=f, sample_idx=i)) for i, f in enumerate(native_faces)]
    return dict(inputs=[p['inputs'] for p in packed], data_samples=[p['data_samples'] for p in packed])


@pytest.mark.parametrize('height_range', [None, (6, 32)])
def test_preprocessor_batched_path_matches_the_per_sample_path(height_range):
    hr_faces = [_face(i) for i in range(5)]
    native_faces = [_face(10 + i, (h, max(1, round(0.8 * h)))) for i, h in enumerate((6, 13, 20, 20, 32))]
    pre = MODELS.build(dict(type='FaceDataPreprocessor'))
    ref = pre(_csri_batch(False, hr_faces, native_faces, height_range))
    batch = _csri_batch(True, hr_faces, native_faces, height_range)
    # batched: the pipeline leaves the HR face (synthetic) or the native-size face (native) as input
    assert [tuple(t.shape[-2:]) for t in batch['inputs']][5:] == [(6, 5), (13, 10), (20, 16), (20, 16), (32, 26)]
    assert all('hr_img' not in s for s in batch['data_samples'])
    out = pre(batch)
    assert out['inputs'].shape == ref['inputs'].shape == (10, 3, *FR)
    diff = (out['inputs'] - ref['inputs']).abs() * 128  # back to grey levels
    assert diff.mean() < 0.5 and diff.max() <= 3, (diff.mean(), diff.max())
    for got, want in zip(out['data_samples'], ref['data_samples']):
        assert ('hr_img' in got) == ('hr_img' in want)
        if 'hr_img' in want:  # the HR target is the same clean face either way
            assert torch.equal(got.hr_img, want.hr_img)
    # drawn LR sizes are drawn per sample (seeded): the same sizes in both paths
    shapes = [s.metainfo['batch_resize'][0] for s in batch['data_samples'][:5]]
    assert (len(set(shapes)) > 1) == (height_range is not None)


def test_batched_transforms_and_preprocessor_errors():
    with pytest.raises(ValueError, match=r'BicubicDownsample\(batched=True\) needs upsample_to'):
        TRANSFORMS.build(dict(type='BicubicDownsample', batched=True))
    with pytest.raises(ValueError, match="interpolation='bicubic'"):
        TRANSFORMS.build(dict(type='BicubicDownsample', upsample_to=FR, interpolation='area', batched=True))
    with pytest.raises(ValueError, match=r"ResizeFace\(batched=True\) needs keys=\('img',\)"):
        TRANSFORMS.build(dict(type='ResizeFace', size=FR, keys=('img', 'hr_img'), batched=True))
    pre = MODELS.build(dict(type='FaceDataPreprocessor'))
    batch = _csri_batch(True, [_face(0)], [])
    batch['data_samples'][0].hr_img = batch['inputs'][0]
    with pytest.raises(ValueError, match='has both an hr_img and batch_keep_hr'):
        pre(batch)
    # a face left at its native size by a non-batched pipeline still fails the shape check
    mixed = _csri_batch(True, [_face(0)], [])
    mixed['inputs'].append(_chw(_face(1, (20, 16))))
    mixed['data_samples'].append(type(mixed['data_samples'][0])())
    with pytest.raises(ValueError, match='must share a shape'):
        pre(mixed)


def test_csri_losses_through_the_batched_path_match_the_per_sample_path():
    # The demo CSRI config's own pipelines and model, once as shipped and once with batched=True: the model
    # must get the same kind of batch (ILR inputs, HR targets on the synthetic samples) and nearly equal losses.
    cfg = load_config(osp.join(REPO, 'configs', 'demo', 'csri_vdsr-centreface_1xb32_demo-pairs-native.py'))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.train()
    images = {'syn': [_face(i, (70, 60)) for i in range(4)],
              'nat': [_face(20 + i, (h, round(0.8 * h))) for i, h in enumerate((8, 14, 20, 31))]}

    def batch(batched: bool, collate):
        samples = []
        for part in cfg.train_dataloader.dataset.datasets:
            steps = copy.deepcopy([t for t in part.pipeline if t['type'] != 'RandomHFlip'])  # no random draws
            for step in steps:
                if step['type'] in ('BicubicDownsample', 'ResizeFace'):
                    step['batched'] = batched
            pipeline = Compose([TRANSFORMS.build(t) for t in steps])
            for i, img in enumerate(images[part.branch]):
                samples.append(pipeline(dict(img=img.copy(), sample_idx=i, gt_label=i, branch=part.branch)))
        return collate(samples)

    def losses(data):
        fresh = copy.deepcopy(model)  # the centre loss moves its centres in a training forward
        return fresh(**fresh.data_preprocessor(data, True), mode='loss')

    ref = losses(batch(False, pseudo_collate))
    out = losses(batch(True, face_collate))
    assert set(out) == set(ref) and {'loss_sr', 'syn_loss_cls', 'nat_loss_cls'} <= set(out), sorted(out)
    for key in ref:
        assert torch.isfinite(out[key]).all(), key
        assert torch.allclose(out[key], ref[key], rtol=0.01, atol=1e-6), (key, out[key], ref[key])
