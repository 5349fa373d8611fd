"""End to end through the command-line tools on the embedded demo: train, test, resume, 2-process DDP, bad input.

Every run is a child process in one shared workspace (the demo data are built there once), as a user runs
them. Schedules are cut to a few iterations: these tests prove the plumbing, not accuracy.
"""
import json
import os
import os.path as osp
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TRAIN = osp.join(REPO, 'tools', 'train.py')
TEST = osp.join(REPO, 'tools', 'test.py')
FR_CONFIG = osp.join(REPO, 'configs', 'demo', 'centreface_1xb32_demo-hr-native.py')
CSRI_CONFIG = osp.join(REPO, 'configs', 'demo', 'csri_vdsr-centreface_1xb32_demo-pairs-native.py')
SHORT = ['train_cfg.max_iters=6', 'train_cfg.val_interval=6', 'default_hooks.checkpoint.interval=6',
         'load_from=None']


def run(args, cwd, check=True, timeout=300):
    env = {**os.environ, 'PYTHONPATH': REPO, 'OMP_NUM_THREADS': '1'}
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f'{args} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}')
    return proc


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    """A folder with the demo data built once (configs find it at data/demo_tinyface)."""
    root = tmp_path_factory.mktemp('tools_ws')
    from lrfr.datasets.converters.demo import ensure_demo
    ensure_demo(str(root / 'data' / 'demo_tinyface'))
    return root


@pytest.fixture(scope='module')
def trained(workspace):
    """A short FR-only training run; returns its work dir."""
    proc = run([TRAIN, FR_CONFIG, '--work-dir', 'work_dirs/fr', '--amp', '--cfg-options', *SHORT], workspace)
    log = proc.stdout + proc.stderr
    assert 'Rank-1 (%)' in log and 'mAP (%)' in log  # the table printed at validation
    if not torch.cuda.is_available():
        assert 'mixed precision is OFF' in log
    return workspace / 'work_dirs' / 'fr'


def test_train_publishes_final_checkpoint(trained):
    assert (trained / 'final.pth').is_file()
    assert (trained / 'iter_6.pth').is_file()


def test_test_tool_writes_table_json_mat_and_plots(workspace, trained, monkeypatch):
    proc = run([TEST, FR_CONFIG, str(trained / 'final.pth'), '--work-dir', 'work_dirs/fr_test',
                '--out', 'results.json', '--export-mat', 'mats'], workspace)
    assert 'Rank-1 (%)' in proc.stdout + proc.stderr
    record = json.loads((workspace / 'results.json').read_text())
    assert set(record) >= {'metrics', 'config', 'checkpoint', 'date', 'seed', 'benchmark', 'per_probe'}
    assert record['benchmark']['name'] == 'CentreFace (FR only)'
    for name in ('cmc.png', 'pr.png'):
        assert (workspace / 'work_dirs' / 'fr_test' / name).is_file()

    # The JSON's metrics are what the official evaluation of the exported features gives.
    from scipy.io import loadmat
    from mmengine.config import Config
    from lrfr.evaluation.functional import evaluate_identification
    from lrfr.registry import DATASETS
    from lrfr.structures import DISTRACTOR_LABEL
    probe = loadmat(str(workspace / 'mats' / 'probe.mat'))['probe_feature_map']
    matches = loadmat(str(workspace / 'mats' / 'gallery.mat'))['gallery_feature_map']
    distractors = loadmat(str(workspace / 'mats' / 'distractor.mat'))['distractor_feature_map']
    assert probe.shape == (80, 128) and distractors.shape == (100, 128)
    monkeypatch.chdir(workspace)  # the config's data_root is relative
    dataset = DATASETS.build(Config.fromfile(FR_CONFIG).test_dataloader.dataset)
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    gallery_labels = [i['gt_label'] for i in infos if i['subset'] == 'gallery']
    num_matches = sum(label != DISTRACTOR_LABEL for label in gallery_labels)
    assert num_matches == matches.shape[0] and set(gallery_labels[num_matches:]) == {DISTRACTOR_LABEL}
    per_probe = record['per_probe']['tinyface']
    assert per_probe['label'] == [i['gt_label'] for i in infos if i['subset'] == 'probe']
    ref = evaluate_identification(probe, per_probe['label'], np.concatenate([matches, distractors]),
                                  gallery_labels)
    metrics = record['metrics']
    for k in (1, 5, 10, 20, 50):
        assert metrics[f'tinyface/rank{k}'] == pytest.approx(100 * ref[f'rank{k}'], abs=1e-9)
    assert metrics['tinyface/mAP'] == pytest.approx(100 * ref['mAP'], abs=1e-9)
    np.testing.assert_allclose(per_probe['ap'], ref['ap'], rtol=0, atol=1e-12)
    assert per_probe['first_match_rank'] == ref['first_match_rank'].tolist()


def test_test_tool_random_init_is_seeded(workspace):
    """--random-init (the untrained reference row): same seed, same numbers; another seed, other numbers."""
    def metrics(seed, out):
        run([TEST, FR_CONFIG, '--random-init', '--work-dir', 'work_dirs/untrained', '--out', out, '--no-plots',
             '--cfg-options', f'randomness.seed={seed}'], workspace)
        record = json.loads((workspace / out).read_text())
        assert record['checkpoint'] == 'random-init' and record['seed'] == seed
        return record['per_probe']['tinyface']['ap']

    first = metrics(0, 'r0.json')
    assert metrics(0, 'r0b.json') == first
    assert metrics(1, 'r1.json') != first
    err = _error(run([TEST, FR_CONFIG], workspace, check=False))
    assert 'give a CHECKPOINT or --random-init' in err


def _state(path):
    return torch.load(path, map_location='cpu')['state_dict']


def test_resume_matches_uninterrupted_training(workspace):
    """Resume from the epoch-1 checkpoint to 2 epochs: the weights equal 2 epochs straight (random flips on)."""
    cfg = workspace / 'epoch_cfg.py'
    cfg.write_text(textwrap.dedent(f'''
        _base_ = [{FR_CONFIG!r}]
        load_from = None
        train_cfg = dict(_delete_=True, type='EpochBasedTrainLoop', max_epochs=2, val_interval=100)
        train_dataloader = dict(sampler=dict(_delete_=True, type='DefaultSampler', shuffle=True))
        param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[1], gamma=0.5)]
        default_hooks = dict(checkpoint=dict(by_epoch=True, interval=1, max_keep_ckpts=3))
        log_processor = dict(by_epoch=True)
    '''))
    run([TRAIN, str(cfg), '--work-dir', 'work_dirs/straight'], workspace)
    # An interrupted run: only its epoch-1 checkpoint survives; resume it to the end.
    run([TRAIN, str(cfg), '--work-dir', 'work_dirs/resumed', '--resume',
         str(workspace / 'work_dirs' / 'straight' / 'epoch_1.pth')], workspace)
    straight = _state(workspace / 'work_dirs' / 'straight' / 'epoch_2.pth')
    resumed = _state(workspace / 'work_dirs' / 'resumed' / 'epoch_2.pth')
    one_epoch = _state(workspace / 'work_dirs' / 'straight' / 'epoch_1.pth')
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key
    assert any(not torch.allclose(straight[k], one_epoch[k]) for k in straight)  # epoch 2 did train


def test_two_process_gloo_ddp_training(workspace):
    proc = run(['-m', 'torch.distributed.run', '--nproc_per_node=2', '--master_port=29561', TRAIN, CSRI_CONFIG,
                '--launcher', 'pytorch', '--work-dir', 'work_dirs/ddp', '--cfg-options', *SHORT,
                'train_dataloader.batch_size=8', 'train_dataloader.sampler.batch_size=8'], workspace,
               timeout=400)
    log = proc.stdout + proc.stderr
    assert 'Distributed launcher: pytorch' in log and 'Distributed training: True' in log
    assert 'syn_loss_cls' in log and 'nat_loss_cls' in log and 'loss_sr' in log
    assert (workspace / 'work_dirs' / 'ddp' / 'final.pth').is_file()


def _error(proc):
    assert proc.returncode != 0
    return proc.stderr


def test_missing_data_root_names_the_path(workspace):
    err = _error(run([TRAIN, FR_CONFIG, '--work-dir', 'work_dirs/bad1', '--cfg-options', *SHORT,
                      'train_dataloader.dataset.type=TinyFaceDataset',
                      'train_dataloader.dataset.data_root=/no/such/tinyface'], workspace, check=False))
    assert '/no/such/tinyface' in err


def test_tree_not_in_tinyface_layout(workspace, tmp_path):
    (tmp_path / 'not_tinyface' / 'images').mkdir(parents=True)
    err = _error(run([TRAIN, FR_CONFIG, '--work-dir', 'work_dirs/bad2', '--cfg-options', *SHORT,
                      'train_dataloader.dataset.type=TinyFaceDataset',
                      f'train_dataloader.dataset.data_root={tmp_path / "not_tinyface"}'], workspace, check=False))
    assert 'Training_Set' in err


def test_unreadable_image_names_the_file(workspace, tmp_path):
    import shutil
    root = tmp_path / 'broken'
    shutil.copytree(workspace / 'data' / 'demo_tinyface' / 'Training_Set', root / 'Training_Set')
    bad = sorted((root / 'Training_Set').rglob('*.jpg'))[0]
    bad.write_bytes(b'not a jpeg at all')
    err = _error(run([TRAIN, FR_CONFIG, '--work-dir', 'work_dirs/bad3', '--cfg-options', *SHORT,
                      'train_dataloader.dataset.type=TinyFaceDataset', f'train_dataloader.dataset.data_root={root}',
                      'train_dataloader.sampler.shuffle=False'], workspace, check=False))
    assert bad.name in err


def test_config_key_typo_names_the_key(workspace):
    err = _error(run([TRAIN, FR_CONFIG, '--work-dir', 'work_dirs/bad4', '--cfg-options', *SHORT,
                      'model.backbone.embed_dimm=64'], workspace, check=False))
    assert 'embed_dimm' in err


def test_checkpoint_from_another_model_is_refused(workspace, trained):
    err = _error(run([TEST, CSRI_CONFIG, str(trained / 'final.pth'), '--work-dir', 'work_dirs/bad5'],
                     workspace, check=False))
    assert 'does not match the model' in err and 'final.pth' in err


def test_missing_checkpoint_and_config(workspace):
    err = _error(run([TEST, FR_CONFIG, 'no_such.pth'], workspace, check=False))
    assert 'checkpoint not found: no_such.pth' in err
    err = _error(run([TRAIN, 'no_such_config.py'], workspace, check=False))
    assert 'config file not found: no_such_config.py' in err


def test_demo_comparison_driver_on_a_reduced_schedule(workspace):
    """The README's main command, cut to 4 iterations per run and one seed: every stage trains, the rows are
    tested, the table compares each row with the FR-only one and with the untrained reference."""
    import glob
    configs = sorted(glob.glob(osp.join(REPO, 'configs', 'demo', '*.py')))
    proc = run([osp.join(REPO, 'tools', 'analysis_tools', 'run_benchmark.py'), *configs, '--seeds', '1',
                '--out', 'table.md', '--cfg-options', 'train_cfg.max_iters=4', 'train_cfg.val_interval=4',
                'default_hooks.checkpoint.interval=4'], workspace, timeout=900)
    table = (workspace / 'table.md').read_text().splitlines()
    rows = [line for line in table[2:] if line.startswith('| ')]
    names = [line.split('|')[1].strip() for line in rows]
    assert names == ['CentreFace untrained (reference)', 'CentreFace (FR only) (FR-only baseline)',
                     'VDSR then CentreFace (independent)', 'SR-FR joint (VDSR + CentreFace)',
                     'CSRI (VDSR + CentreFace)']
    assert all(line.split('|')[2].strip() == '1' for line in rows)  # one seed each
    text = '\n'.join(table)
    for name in names[2:]:
        assert f'- {name} vs CentreFace (FR only): mAP ' in text
    assert text.count('the untrained reference (CentreFace untrained (reference))') == 4
    assert 'Rank-1 (%)' in proc.stdout and 'total time:' in proc.stdout
    csri = workspace / 'work_dirs' / 'csri_vdsr-centreface_1xb32_demo-pairs-native' / 'seed0'
    assert (csri / 'results.json').is_file() and (csri / 'train.log').is_file()
