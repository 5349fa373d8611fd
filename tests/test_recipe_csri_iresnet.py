"""The CPU-sized CSRI-on-IResNet recipe trains through tools/train.py: the demo's HR faces written as a RecordIO
set by folder2rec.py feed the synthetic branch, the demo's native LR faces the native branch, and the backbone
starts from a converted-style checkpoint (``backbone.`` weights only), as the full recipe does."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from lrfr.registry import MODELS
from lrfr.utils import register_all_modules

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(REPO, 'configs', 'iresnet', 'csri_vdsr-iresnet-adaface_1xb32_cpu-rec-demo.py')


def run(args, cwd, timeout=400):
    env = {**os.environ, 'PYTHONPATH': REPO, 'OMP_NUM_THREADS': '1'}
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f'{args} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}')
    return proc.stdout + proc.stderr


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    """The demo tree, its HR faces as data/demo_rec (the config's documented command), a converted checkpoint."""
    from mmengine.config import Config
    root = tmp_path_factory.mktemp('recipe_ws')
    from lrfr.datasets.converters.demo import ensure_demo
    ensure_demo(str(root / 'data' / 'demo_tinyface'))
    run([osp.join(REPO, 'tools', 'dataset_converters', 'folder2rec.py'), 'data/demo_tinyface/HR_Training_Set',
         'data/demo_rec', '--size', '112', '92'], root)
    register_all_modules()
    torch.manual_seed(3)
    backbone = MODELS.build(Config.fromfile(CONFIG).model.backbone)
    os.makedirs(root / 'checkpoints')
    torch.save(dict(state_dict={f'backbone.{k}': v for k, v in backbone.state_dict().items()},
                    meta=dict(source='test: a converter-style backbone-only checkpoint')),
               root / 'checkpoints' / 'tiny_iresnet.pth')
    return root


def test_cpu_recipe_trains_from_a_converted_backbone(workspace):
    log = run([osp.join(REPO, 'tools', 'train.py'), CONFIG, '--work-dir', 'work_dirs/cpu', '--cfg-options',
               'train_cfg.max_iters=4', 'train_cfg.val_interval=4', 'default_hooks.checkpoint.interval=4',
               'default_hooks.logger.interval=1', 'load_from=checkpoints/tiny_iresnet.pth',
               # the backbone holds still, so the loaded weights can be found in the result; SR and heads train
               'optim_wrapper.paramwise_cfg.custom_keys.backbone.lr_mult=0',
               'optim_wrapper.paramwise_cfg.custom_keys.backbone.decay_mult=0'], workspace)
    assert 'syn_loss_cls' in log and 'nat_loss_cls' in log and 'loss_sr' in log
    assert 'Rank-1 (%)' in log  # tested on the demo's TinyFace-layout test set at the end
    assert 'nan' not in log.split('Iter(train) [4/4]')[1].split('\n')[0]
    final = torch.load(workspace / 'work_dirs' / 'cpu' / 'final.pth', map_location='cpu')['state_dict']
    start = torch.load(workspace / 'checkpoints' / 'tiny_iresnet.pth')['state_dict']
    for key in ('backbone.conv1.weight', 'backbone.layer3.0.conv2.weight', 'backbone.fc.weight'):
        torch.testing.assert_close(final[key], start[key], rtol=0, atol=0)
    assert final['head.fc.weight'].shape == (14, 64) and final['native_head.fc.weight'].shape == (24, 64)
