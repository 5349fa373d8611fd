"""tools/analysis_tools/benchmark_train.py: the synthetic batch follows the config; both paths train and time."""
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


def test_both_paths_train_and_report(tool, tmp_path):
    out = tmp_path / 'figures.json'
    figures = tool.main([str(DEMO_CSRI), '--iters', '2', '--warmup', '1', '--batch', '4', '--device', 'cpu',
                         '--json', str(out)])
    assert figures['layout'] == '2 syn (56x48, HR 56x48) + 2 nat (56x48)'
    for path in ('plain', 'lrfr'):
        assert figures[path]['samples_per_s'] > 0 and len(figures[path]['window_seconds']) == 1
    assert figures['ratio'] == pytest.approx(figures['lrfr']['samples_per_s'] / figures['plain']['samples_per_s'])
    assert out.is_file()


def test_amp_on_cpu_is_refused(tool):
    with pytest.raises(SystemExit, match='AmpOptimWrapper'):
        tool.main([str(DEMO_CSRI), '--amp', 'bf16', '--device', 'cpu'])
