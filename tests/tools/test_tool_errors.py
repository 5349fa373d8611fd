"""tools/train.py and tools/test.py as a user meets them: one ``error:`` line and status 2 for each mistake a
user can fix (before mmengine's environment dump where the config allows), ``--debug`` for the traceback,
``--resume`` / ``--resume auto``, ``--no-validate``, and configs named ``lrfr::...`` from outside the checkout.

Every run is a child process in a temporary folder outside the checkout, as a user runs them.
"""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TRAIN = osp.join(REPO, 'tools', 'train.py')
TEST = osp.join(REPO, 'tools', 'test.py')
HR_CONFIG = 'lrfr::demo/centreface_1xb32_demo-hr.py'
SHORT = ['train_cfg.max_iters=2', 'train_cfg.val_interval=2', 'default_hooks.checkpoint.interval=2']
ENV_DUMP = 'System environment'


def run(args, cwd, timeout=300):
    env = {**os.environ, 'PYTHONPATH': REPO, 'OMP_NUM_THREADS': '1'}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def error_line(proc) -> str:
    """The last stderr line of a run that must have failed with a user error (status 2)."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr[-3000:])
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith('error: '), proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr
    return last


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    """A user's folder outside the checkout, with the demo data (configs find it at data/demo_tinyface)."""
    root = tmp_path_factory.mktemp('user_ws')
    from lrfr.datasets.converters.demo import ensure_demo
    ensure_demo(str(root / 'data' / 'demo_tinyface'))
    return root


@pytest.fixture(scope='module')
def trained(workspace):
    """A 2-iteration run of a shipped config named ``lrfr::...``, without validation; returns its work dir."""
    proc = run([TRAIN, HR_CONFIG, '--work-dir', 'work_dirs/hr', '--no-validate', '--cfg-options', *SHORT],
               workspace)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'Rank-1 (%)' not in proc.stdout + proc.stderr  # --no-validate: no evaluation table
    return workspace / 'work_dirs' / 'hr'


def test_shipped_config_trains_from_outside_the_checkout(trained):
    assert (trained / 'final.pth').is_file() and (trained / 'iter_2.pth').is_file()
    assert (trained / 'centreface_1xb32_demo-hr.py').is_file()  # the config dump, named after the file


def test_user_config_with_a_package_base(workspace):
    (workspace / 'my_config.py').write_text(
        "_base_ = 'lrfr::demo/centreface_1xb32_demo-hr.py'\nmodel = dict(backbone=dict(embed_dim=32), "
        "head=dict(in_channels=32))\n")
    proc = run([osp.join(REPO, 'tools', 'misc', 'print_config.py'), 'my_config.py'], workspace)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'embed_dim=32' in proc.stdout and "type='CentreFaceNet'" in proc.stdout


def test_cfg_options_without_equals(workspace):
    proc = run([TRAIN, HR_CONFIG, '--cfg-options', 'train_cfg.max_iters'], workspace)
    assert proc.returncode == 2
    assert "--cfg-options 'train_cfg.max_iters': expected KEY=VALUE" in proc.stderr.strip().splitlines()[-1]


def test_config_key_typo_before_the_environment_dump(workspace):
    proc = run([TRAIN, HR_CONFIG, '--cfg-options', *SHORT, 'model.backbone.embed_dimm=64'], workspace)
    line = error_line(proc)
    assert 'centreface_1xb32_demo-hr.py: model:' in line and "'embed_dimm'" in line
    assert ENV_DUMP not in proc.stdout + proc.stderr


def test_debug_shows_the_traceback(workspace):
    proc = run([TRAIN, HR_CONFIG, '--debug', '--cfg-options', 'model.backbone.embed_dimm=64'], workspace)
    assert proc.returncode != 0 and 'Traceback' in proc.stderr and 'embed_dimm' in proc.stderr


def test_missing_data_root_before_the_environment_dump(workspace):
    proc = run([TRAIN, HR_CONFIG, '--cfg-options', *SHORT, 'train_dataloader.dataset.type=TinyFaceDataset',
                'train_dataloader.dataset.data_root=/no/such/tinyface'], workspace)
    line = error_line(proc)
    assert 'train_dataloader.dataset: TinyFace data_root not found: /no/such/tinyface' in line
    assert 'expected layout' in line and ENV_DUMP not in proc.stdout + proc.stderr


def test_missing_config_and_checkpoint(workspace, trained):
    assert error_line(run([TRAIN, 'lrfr::demo/no_such.py'], workspace)).startswith(
        'error: config file not found: lrfr::demo/no_such.py')
    assert error_line(run([TEST, HR_CONFIG, 'no_such.pth'], workspace)) == 'error: checkpoint not found: no_such.pth'


def test_truncated_checkpoint_names_the_file(workspace, trained):
    data = (trained / 'iter_2.pth').read_bytes()
    (workspace / 'cut.pth').write_bytes(data[:len(data) // 2])
    line = error_line(run([TEST, HR_CONFIG, 'cut.pth', '--no-plots'], workspace))
    assert 'cut.pth is not a readable PyTorch checkpoint' in line and 'truncated' in line
    line = error_line(run([TRAIN, HR_CONFIG, '--resume', 'cut.pth', '--work-dir', 'work_dirs/cut'], workspace))
    assert '--resume checkpoint cut.pth is not a readable PyTorch checkpoint' in line


def test_checkpoint_of_another_model_before_the_environment_dump(workspace, trained):
    proc = run([TEST, 'lrfr::demo/vdsr_1xb32_demo-pairs.py', str(trained / 'final.pth'), '--no-plots'],
               workspace)
    line = error_line(proc)
    assert 'does not match the model' in line and 'final.pth' in line
    assert ENV_DUMP not in proc.stdout + proc.stderr


def test_resume_with_nothing_to_resume(workspace):
    line = error_line(run([TRAIN, HR_CONFIG, '--resume', '--work-dir', 'work_dirs/mistyped'], workspace))
    assert 'nothing to resume in work_dirs/mistyped' in line and '--resume auto' in line


def test_resume_auto_starts_fresh_then_resumes(workspace):
    args = [TRAIN, HR_CONFIG, '--resume', 'auto', '--work-dir', 'work_dirs/auto', '--no-validate']
    first = run([*args, '--cfg-options', *SHORT], workspace)
    assert first.returncode == 0, first.stderr[-3000:]
    assert '--resume auto: no checkpoint in work_dirs/auto; training from scratch' in first.stdout + first.stderr
    second = run([*args, '--cfg-options', 'train_cfg.max_iters=4', 'default_hooks.checkpoint.interval=2'],
                 workspace)
    assert second.returncode == 0, second.stderr[-3000:]
    assert 'resumed epoch: 0, iter: 2' in second.stdout + second.stderr
    meta = torch.load(workspace / 'work_dirs' / 'auto' / 'final.pth', map_location='cpu')['meta']
    assert meta['iter'] == 4


def test_demo_config_on_an_empty_folder_says_it_builds_there(workspace):
    (workspace / 'fresh').mkdir()
    proc = run([TRAIN, HR_CONFIG, '--no-validate', '--work-dir', 'work_dirs/fresh', '--cfg-options', *SHORT,
                'train_dataloader.dataset.data_root=fresh'], workspace)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert 'building the demo benchmark in fresh' in out
    assert out.index('building the demo benchmark in fresh') < out.index(ENV_DUMP)  # before the dump
    assert (workspace / 'fresh' / 'Training_Set').is_dir() or (workspace / 'fresh' / 'HR_Training_Set').is_dir()


def test_unreadable_image_while_training(workspace, tmp_path):
    import shutil
    root = tmp_path / 'broken'
    shutil.copytree(workspace / 'data' / 'demo_tinyface' / 'Training_Set', root / 'Training_Set')
    bad = sorted((root / 'Training_Set').rglob('*.jpg'))[0]
    bad.write_bytes(b'not a jpeg at all')
    line = error_line(run([TRAIN, HR_CONFIG, '--no-validate', '--work-dir', 'work_dirs/broken', '--cfg-options',
                           *SHORT, 'train_dataloader.dataset.type=TinyFaceDataset',
                           f'train_dataloader.dataset.data_root={root}', 'train_dataloader.sampler.shuffle=False'],
                          workspace))
    assert str(bad) in line or bad.name in line


def test_a_diverging_run_ends_with_the_loss_guard_line(workspace):
    """A learning rate far too high: LossGuardHook stops the run, and train.py prints its message as the one
    ``error:`` line (iteration, loss term, last checkpoint), not a traceback, with status 2."""
    proc = run([TRAIN, HR_CONFIG, '--work-dir', 'work_dirs/diverge', '--no-validate', '--cfg-options',
                'train_cfg.max_iters=60', 'optim_wrapper.optimizer.lr=1e4', 'optim_wrapper.clip_grad=None',
                'param_scheduler=[]', 'default_hooks.checkpoint.interval=1000'], workspace)
    line = error_line(proc)
    assert line.startswith('error: LossGuardHook: training diverged at iteration '), line
    assert 'last good checkpoint: none saved yet' in line, line
