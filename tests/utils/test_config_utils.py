"""Config helpers of the tools: AMP switch, sampler length, work dir, a dataset node out of a config."""
import os

import pytest
import torch
from mmengine.config import Config

from lrfr.utils.config_utils import dataset_config_from, enable_amp, fill_sampler_length, load_config


def _cfg(**kwargs):
    return Config(dict(optim_wrapper=dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1)), **kwargs))


def test_amp_is_off_on_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    cfg = _cfg()
    enable_amp(cfg)
    assert cfg.optim_wrapper.type == 'OptimWrapper'


@pytest.mark.parametrize('bf16,dtype,kind', [(True, 'bfloat16', 'PartClipOptimWrapper'),
                                              (False, 'float16', 'AmpPartClipOptimWrapper')])
def test_amp_on_gpu_picks_bf16_where_supported(monkeypatch, bf16, dtype, kind):
    """bf16: autocast without a GradScaler (lrfr's wrapper); fp16: with one (dynamic loss scale)."""
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'is_bf16_supported', lambda: bf16)
    cfg = _cfg()
    enable_amp(cfg)
    assert cfg.optim_wrapper.type == kind and cfg.optim_wrapper.dtype == dtype
    assert cfg.optim_wrapper.get('loss_scale') == (None if bf16 else 'dynamic')


def test_multi_branch_sampler_gets_the_runs_iterations():
    cfg = Config(dict(train_cfg=dict(type='IterBasedTrainLoop', max_iters=123),
                      train_dataloader=dict(sampler=dict(type='MultiBranchSampler', batch_size=4))))
    fill_sampler_length(cfg)
    assert cfg.train_dataloader.sampler.num_iters == 123
    cfg.train_dataloader.sampler.num_iters = 7  # an explicit value is kept
    fill_sampler_length(cfg)
    assert cfg.train_dataloader.sampler.num_iters == 7


def test_load_config_work_dir_and_missing_file(tmp_path):
    path = tmp_path / 'my_cfg.py'
    path.write_text('x = 1\n')
    assert load_config(str(path)).work_dir == os.path.join('./work_dirs', 'my_cfg')
    assert load_config(str(path), work_dir='elsewhere').work_dir == 'elsewhere'
    assert load_config(str(path), cfg_options={'x': 2}).x == 2
    with pytest.raises(FileNotFoundError, match='no_such.py'):
        load_config(str(tmp_path / 'no_such.py'))


def test_dataset_config_from_a_config_node_or_a_type(tmp_path):
    path = tmp_path / 'data_cfg.py'
    path.write_text("train_dataloader = dict(dataset=dict(type='ConcatDataset', datasets=["
                    "dict(type='A', data_root='a'), dict(type='B', data_root='b')]))\n")
    node = dataset_config_from(str(path), 'train_dataloader.dataset.datasets.1', {'data_root': 'c'})
    assert node == {'type': 'B', 'data_root': 'c'}
    assert dataset_config_from('FaceFolderDataset', ds_args={'data_root': 'x'}) == \
        {'type': 'FaceFolderDataset', 'data_root': 'x'}
    with pytest.raises(KeyError, match=r"data_cfg.py: no dataset at 'train_dataloader.dataset.datasets.5' "
                                       r"\(failed at '5'\)"):
        dataset_config_from(str(path), 'train_dataloader.dataset.datasets.5')
