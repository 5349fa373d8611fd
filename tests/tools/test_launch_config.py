"""The config side of launching: ``--auto-scale-lr`` (every training config states its base batch), the worker
options of the loaders (stated in the full-size configs, refused by name where they cannot apply), and the
tools' one-line errors for both."""
import os.path as osp
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mmengine.config import Config

from lrfr.errors import ConfigError, ConfigKeyError
from lrfr.utils import register_all_modules
from lrfr.utils.config_utils import check_dataloader_options, enable_auto_scale_lr, load_config, scaled_lr

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted(p for p in (REPO / 'configs').rglob('*.py') if '_base_' not in p.relative_to(REPO).parts)
FULL_CSRI = REPO / 'configs' / 'csri' / 'csri_vdsr-centreface_1xb256_celeba-tinyface.py'
DEMO_FR = REPO / 'configs' / 'demo' / 'centreface_1xb32_demo-hr.py'
#: ``..._{N}xb{B}_...``: N processes x B per process, the total batch the lr is set for.
BATCH_RE = re.compile(r'_(\d+)xb(\d+)_')

register_all_modules()


def test_every_training_config_states_its_base_batch_and_its_loader_options():
    trained = 0
    for path in CONFIGS:
        cfg = Config.fromfile(str(path))
        loader = cfg.get('train_dataloader')
        if loader is None:  # test-only (configs/pretrained)
            continue
        trained += 1
        procs, per_proc = (int(g) for g in BATCH_RE.search(path.stem).groups())
        assert loader.batch_size == per_proc, path.name
        assert cfg.auto_scale_lr == dict(base_batch_size=procs * per_proc), path.name
        check_dataloader_options(cfg)
        if loader.num_workers > 0:  # full size: fed for a GPU, deliberately
            assert (loader.pin_memory, loader.persistent_workers, loader.prefetch_factor) == (True, True, 4), \
                path.name
            val = cfg.val_dataloader
            assert (val.pin_memory, val.persistent_workers, val.prefetch_factor) == (True, True, 2), path.name
    assert trained >= 30


def test_enable_auto_scale_lr_and_the_scaled_rate():
    cfg = load_config(str(FULL_CSRI))
    assert enable_auto_scale_lr(cfg) == 256
    assert cfg.auto_scale_lr == dict(base_batch_size=256, enable=True)
    lr = cfg.optim_wrapper.optimizer.lr
    assert scaled_lr(cfg, world_size=8) == dict(world_batch=2048, base_batch=256, ratio=8.0, base_lr=lr,
                                                lr=pytest.approx(8 * lr))
    cfg.train_dataloader.batch_size = 64
    assert scaled_lr(cfg, world_size=2)['ratio'] == 0.5
    # several optimisers (an OptimWrapperDict): no single lr to print, the same ratio for each
    cfg.optim_wrapper = dict(sr=dict(optimizer=dict(type='Adam', lr=1e-4)), fr=dict(optimizer=dict(lr=0.1)))
    assert scaled_lr(cfg, world_size=2) == dict(world_batch=128, base_batch=256, ratio=0.5, base_lr=None, lr=None)


def test_auto_scale_lr_without_a_base_batch_is_one_line_naming_the_config(tmp_path):
    (tmp_path / 'my_cfg.py').write_text('optim_wrapper = dict(optimizer=dict(lr=0.1))\n')
    cfg = Config.fromfile(str(tmp_path / 'my_cfg.py'))
    with pytest.raises(ConfigKeyError, match=r'^my_cfg\.py: --auto-scale-lr needs auto_scale_lr = '
                                             r'dict\(base_batch_size=<the total batch its lr was set for>\)'):
        enable_auto_scale_lr(cfg)
    cfg.auto_scale_lr = dict(base_batch_size='256')
    with pytest.raises(ConfigError, match=r"my_cfg\.py: auto_scale_lr.base_batch_size must be a positive int, "
                                          r"got '256'"):
        enable_auto_scale_lr(cfg)


def test_worker_options_without_workers_are_refused_by_key():
    cfg = load_config(str(FULL_CSRI), {'train_dataloader.num_workers': 0})
    with pytest.raises(ConfigError, match=re.escape(
            'csri_vdsr-centreface_1xb256_celeba-tinyface.py: train_dataloader.num_workers=0 (loading in the main '
            'process) cannot take persistent_workers=True, prefetch_factor=4; add --cfg-options '
            'train_dataloader.persistent_workers=False train_dataloader.prefetch_factor=None, or set '
            'train_dataloader.num_workers > 0')):
        check_dataloader_options(cfg)
    # the overrides the message gives do fit, and the other loaders are checked too
    fixed = load_config(str(FULL_CSRI), {'train_dataloader.num_workers': 0,
                                         'train_dataloader.persistent_workers': False,
                                         'train_dataloader.prefetch_factor': None})
    check_dataloader_options(fixed)
    fixed.val_dataloader.num_workers = 0
    with pytest.raises(ConfigError, match=r'val_dataloader.num_workers=0'):
        check_dataloader_options(fixed)
    check_dataloader_options(fixed, ('train_dataloader',))
    fixed.train_dataloader.update(num_workers=2, prefetch_factor=0)
    with pytest.raises(ConfigError, match=r'train_dataloader.prefetch_factor must be a positive int .* got 0'):
        check_dataloader_options(fixed, ('train_dataloader',))


def test_train_tool_reports_auto_scale_lr_without_base_batch(tmp_path):
    config = tmp_path / 'no_base.py'
    config.write_text(textwrap.dedent(f'''
        _base_ = [{str(DEMO_FR)!r}]
        auto_scale_lr = None
    '''))
    proc = subprocess.run([sys.executable, osp.join(REPO, 'tools', 'train.py'), str(config), '--auto-scale-lr'],
                          cwd=tmp_path, env={'PYTHONPATH': str(REPO), 'PATH': '/usr/bin:/bin'},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        'error: no_base.py: --auto-scale-lr needs auto_scale_lr = dict(base_batch_size=<the total batch its lr '
        'was set for>) in the config, and it has none']
