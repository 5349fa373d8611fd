"""tools/analysis_tools/benchmark_train.py: the synthetic batch follows the config; both paths take the same
training steps, and both are timed and reported."""
import copy
import importlib.util
from collections import Counter
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from lrfr.registry import MODELS
from lrfr.structures import BRANCH_NAT, BRANCH_SYN
from lrfr.utils import register_all_modules

REPO = Path(__file__).resolve().parents[2]
CSRI = REPO / 'configs' / 'csri' / 'csri_vdsr-centreface_1xb256_celeba-tinyface.py'
DEMO_CSRI = REPO / 'configs' / 'demo' / 'csri_vdsr-centreface_1xb32_demo-pairs-native.py'

register_all_modules()


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location(
        'benchmark_train', REPO / 'tools' / 'analysis_tools' / 'benchmark_train.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def meta_model(model_cfg):
    model_cfg = copy.deepcopy(model_cfg)
    model_cfg['data_preprocessor'] = MODELS.build(model_cfg['data_preprocessor'])
    with torch.device('meta'):
        return MODELS.build(model_cfg)


def test_pipeline_sizes(tool):
    resize = dict(type='ResizeFace', size=(20, 16))
    pairs = [dict(type='LoadFaceImage'), dict(type='mmcv.CenterCrop', crop_size=(96, 112)),
             dict(type='BicubicDownsample', size=(20, 16)), dict(type='PackFaceInputs')]
    assert tool.pipeline_sizes([dict(type='LoadFaceImage'), resize]) == ((20, 16), None, False)
    assert tool.pipeline_sizes(pairs) == ((20, 16), (112, 96), True)  # HR = the crop when no hr_size
    degrade = [dict(type='LoadFaceImage'), dict(type='RandomDegradation', hr_size=(112, 96))]
    assert tool.pipeline_sizes(degrade) == (None, (112, 96), True)
    assert tool.pipeline_sizes(degrade + [resize]) == ((20, 16), (112, 96), True)
    assert tool.pipeline_sizes([dict(type='LoadFaceImage')]) == (None, None, False)
    # interpolated LR: up-sampled back to a fixed size, whatever LR size it was drawn at
    ilr = dict(type='BicubicDownsample', hr_size=(112, 96), upsample_to=(112, 96))
    assert tool.pipeline_sizes([dict(type='LoadFaceImage'), ilr]) == ((112, 96), (112, 96), True)
    drawn = dict(type='BicubicDownsample', height_range=(6, 32), hr_size=(112, 96))
    assert tool.pipeline_sizes([dict(type='LoadFaceImage'), drawn]) == (None, (112, 96), True)
    assert tool.pipeline_sizes([dict(type='LoadFaceImage'), dict(type='BicubicDownsample')])[0] == (20, 16)


def test_full_size_csri_batch_follows_the_config(tool):
    cfg = Config.fromfile(str(CSRI))
    samples, layout = tool.make_samples(cfg, meta_model(cfg.model), 256, None, seed=0)
    assert layout == '128 syn (112x96, HR 112x96) + 128 nat (112x96)'  # both at the SR head's output size
    data_samples = [s['data_samples'] for s in samples]
    assert Counter(s.metainfo['branch'] for s in data_samples) == {BRANCH_SYN: 128, BRANCH_NAT: 128}
    assert {tuple(s['inputs'].shape) for s in samples} == {(3, 112, 96)}
    for s in data_samples:
        if s.metainfo['branch'] == BRANCH_SYN:
            assert tuple(s.hr_img.shape) == (3, 112, 96) and int(s.gt_label) < 10177
        else:
            assert 'hr_img' not in s and int(s.gt_label) < 2570  # labels within the native classifier
    # --lr-size and --batch change the layout (quotas recomputed from the sampler's ratios)
    _, layout = tool.make_samples(cfg, meta_model(cfg.model), 10, (24, 20), seed=0)
    assert layout == '5 syn (24x20, HR 112x96) + 5 nat (24x20)'


def test_unpaired_concat_is_refused(tool):
    cfg = Config.fromfile(str(CSRI))
    cfg.train_dataloader.sampler = dict(type='InfiniteSampler')
    with pytest.raises(ValueError, match='MultiBranchSampler'):
        tool.batch_layout(cfg.train_dataloader, 8)


def test_both_paths_take_the_same_steps(tool):
    """Same initial weights and batch: the Runner path and the plain loop leave the same weights after two steps."""
    cfg = Config.fromfile(str(DEMO_CSRI))
    # plain runs warmup + iters iterations; the Runner one more (its timer closes at the start of the last)
    plain_args = tool.parse_args([str(DEMO_CSRI), '--warmup', '0', '--iters', '2', '--device', 'cpu'])
    lrfr_args = tool.parse_args([str(DEMO_CSRI), '--warmup', '0', '--iters', '1', '--device', 'cpu'])
    torch.manual_seed(0)
    model = tool.build_model(cfg, plain_args, 'cpu')
    model.init_weights()  # the Runner's first act; done before the copy so that it cannot make them differ
    start = {k: v.clone() for k, v in model.state_dict().items()}
    twin = copy.deepcopy(model)
    samples, _ = tool.make_samples(cfg, model, 4, None, seed=0)
    hr_targets = [s['data_samples'].hr_img.clone() for s in samples if 'hr_img' in s['data_samples']]
    assert hr_targets and all(t.dtype == torch.uint8 for t in hr_targets)
    tool.run_plain(cfg, model, samples, plain_args, 'cpu')
    # the same sample list again, as main() does: the first run must not have normalised its HR targets
    assert all(torch.equal(s['data_samples'].hr_img, t)
               for s, t in zip([s for s in samples if 'hr_img' in s['data_samples']], hr_targets))
    tool.run_lrfr(cfg, twin, samples, lrfr_args, 'cpu')
    trained, twin_state = model.state_dict(), twin.state_dict()
    moved = [k for k, v in start.items() if v.is_floating_point() and not torch.equal(trained[k], v)]
    assert any(k.startswith('sr.') for k in moved) and any(k.startswith('backbone.') for k in moved)
    assert any(k.startswith('native_head.') for k in moved)
    for key, value in trained.items():
        assert torch.allclose(twin_state[key], value, rtol=1e-4, atol=1e-6), key


def test_both_paths_report(tool, tmp_path):
    out = tmp_path / 'figures.json'
    figures = tool.main([str(DEMO_CSRI), '--iters', '2', '--warmup', '1', '--batch', '4', '--device', 'cpu',
                         '--json', str(out)])
    assert figures['layout'] == '2 syn (56x48, HR 56x48) + 2 nat (56x48)'
    for path in ('plain', 'lrfr'):
        assert figures[path]['samples_per_s'] > 0 and len(figures[path]['window_seconds']) == 1
    assert figures['ratio'] == pytest.approx(figures['lrfr']['samples_per_s'] / figures['plain']['samples_per_s'])
    assert out.is_file()


def test_amp_on_cpu_is_refused(tool):
    with pytest.raises(SystemExit, match='--amp needs a GPU: lrfr keeps CPU runs in fp32'):
        tool.main([str(DEMO_CSRI), '--amp', 'bf16', '--device', 'cpu'])
