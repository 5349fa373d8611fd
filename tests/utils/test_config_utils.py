"""Config helpers of the tools: AMP switch, sampler length, work dir, final checkpoint publishing."""
import os

import pytest
import torch
from mmengine.config import Config

from lrfr.utils.checkpoints import FINAL_CHECKPOINT, last_checkpoint, publish_final_checkpoint
from lrfr.utils.config_utils import enable_amp, fill_sampler_length, load_config


def _cfg(**kwargs):
    return Config(dict(optim_wrapper=dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1)), **kwargs))


def test_amp_is_off_on_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    cfg = _cfg()
    enable_amp(cfg)
    assert cfg.optim_wrapper.type == 'OptimWrapper'


@pytest.mark.parametrize('bf16,dtype', [(True, 'bfloat16'), (False, 'float16')])
def test_amp_on_gpu_picks_bf16_where_supported(monkeypatch, bf16, dtype):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'is_bf16_supported', lambda: bf16)
    cfg = _cfg()
    enable_amp(cfg)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper' and cfg.optim_wrapper.dtype == dtype
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


def test_publish_final_checkpoint(tmp_path):
    assert publish_final_checkpoint(str(tmp_path)) is None  # nothing trained yet
    ckpt = tmp_path / 'iter_10.pth'
    ckpt.write_bytes(b'weights')
    (tmp_path / 'last_checkpoint').write_text(str(ckpt))
    assert last_checkpoint(str(tmp_path)) == str(ckpt)
    final = publish_final_checkpoint(str(tmp_path))
    assert final == str(tmp_path / FINAL_CHECKPOINT)
    ckpt.unlink()  # mmengine's max_keep_ckpts may delete it: the published file stays
    assert (tmp_path / FINAL_CHECKPOINT).read_bytes() == b'weights'
