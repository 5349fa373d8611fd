"""Same numbers from the same seed: repeated runs and resumed runs of the shipped demo configs.

* Reproducibility: the demo FR config trained twice with one seed and one thread gives bit-identical weights;
  another seed gives different ones.
* Resume on the loops the configs really use (``IterBasedTrainLoop`` with ``InfiniteSampler`` for FR,
  ``MultiBranchSampler`` for CSRI): run A trains straight through; run B is killed between checkpoints (a hook
  raises after the mid-run checkpoint) and resumed from its work dir, as ``tools/train.py --resume`` does.
  Every tensor of the two final state dicts (weights, CenterLoss centres, optimiser momenta) must be equal.
"""
import copy
import time
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

import lrfr  # noqa: F401  (registers lrfr's modules)
from lrfr.utils.config_utils import fill_sampler_length

REPO = Path(__file__).resolve().parents[1]
FR_CONFIG = REPO / 'configs' / 'demo' / 'centreface_1xb32_demo-hr.py'
CSRI_CONFIG = REPO / 'configs' / 'demo' / 'csri_vdsr-centreface_1xb32_demo-pairs-native.py'


class Killed(RuntimeError):
    """The simulated kill."""


class KillAt(Hook):
    """Raise before iteration ``at`` (0-based), as a killed process would stop there."""

    def __init__(self, at: int) -> None:
        self.at = at

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter == self.at:
            raise Killed(f'killed before iteration {self.at}')


@pytest.fixture(autouse=True)
def one_thread():
    """One thread: BLAS results may depend on the thread count (see docs/get_started.md)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def demo_cfg(path: Path, work_dir: Path, seed: int = 0, max_iters: int = 8, ckpt_interval: int = 8) -> Config:
    """A shipped demo config with only the schedule length, checkpoints, seed and work dir changed."""
    cfg = Config.fromfile(str(path))
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = f'{work_dir.name}_{time.time_ns()}'  # one MessageHub per run
    cfg.randomness = dict(seed=seed, deterministic=False)
    cfg.load_from = None  # the upstream stage's checkpoint is not needed to test the loop
    cfg.train_cfg.max_iters = max_iters
    cfg.train_cfg.val_interval = 10 ** 6
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.test_cfg = cfg.test_dataloader = cfg.test_evaluator = None
    cfg.default_hooks.checkpoint.interval = ckpt_interval
    cfg.default_hooks.checkpoint.max_keep_ckpts = 5
    cfg.default_hooks.logger.interval = 10 ** 6
    for loader in (cfg.train_dataloader,):
        for ds in loader.dataset.get('datasets', [loader.dataset]):
            ds.data_root = str(REPO / 'data' / 'demo_tinyface')
    fill_sampler_length(cfg)
    return cfg


def train(cfg: Config, kill_at: int = None) -> Runner:
    runner = Runner.from_cfg(copy.deepcopy(cfg))
    if kill_at is not None:
        runner.register_hook(KillAt(kill_at))
    runner.train()
    return runner


def checkpoint(work_dir: Path, iteration: int) -> dict:
    ckpt = torch.load(work_dir / f'iter_{iteration}.pth', map_location='cpu', weights_only=False)
    return dict(state=ckpt['state_dict'], optim=ckpt['optimizer']['state'])


def assert_identical(a: dict, b: dict) -> None:
    assert a['state'].keys() == b['state'].keys()
    for key in a['state']:
        assert torch.equal(a['state'][key], b['state'][key]), key
    assert a['optim'].keys() == b['optim'].keys()
    for idx in a['optim']:
        for name, value in a['optim'][idx].items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(b['optim'][idx][name])), (idx, name)


def test_same_seed_same_thread_count_gives_identical_weights(tmp_path):
    for name in ('a', 'b'):
        train(demo_cfg(FR_CONFIG, tmp_path / name, seed=3, max_iters=6, ckpt_interval=6))
    other = demo_cfg(FR_CONFIG, tmp_path / 'other', seed=4, max_iters=6, ckpt_interval=6)
    train(other)
    a, b, c = (checkpoint(tmp_path / n, 6) for n in ('a', 'b', 'other'))
    assert_identical(a, b)
    differ = [k for k in a['state'] if not torch.equal(a['state'][k], c['state'][k])]
    assert 'backbone.fc5.weight' in differ and 'head.heads.1.centers' in differ


@pytest.mark.parametrize('path', [FR_CONFIG, CSRI_CONFIG], ids=['fr', 'csri'])
def test_resume_after_a_kill_between_checkpoints_is_bit_identical(tmp_path, path):
    straight = demo_cfg(path, tmp_path / 'straight', max_iters=8, ckpt_interval=4)
    train(straight)
    killed = demo_cfg(path, tmp_path / 'killed', max_iters=8, ckpt_interval=4)
    with pytest.raises(Killed):
        train(killed, kill_at=6)  # after the iteration-4 checkpoint, two iterations lost
    assert (tmp_path / 'killed' / 'iter_4.pth').is_file() and not (tmp_path / 'killed' / 'iter_8.pth').exists()
    resumed = copy.deepcopy(killed)
    resumed.resume, resumed.load_from = True, None  # what `tools/train.py --resume` sets: the latest checkpoint
    resumed.experiment_name += '_resumed'
    train(resumed)
    assert_identical(checkpoint(tmp_path / 'straight', 8), checkpoint(tmp_path / 'killed', 8))
    # and the second half did train: the weights moved after the checkpoint
    half = checkpoint(tmp_path / 'straight', 4)['state']
    end = checkpoint(tmp_path / 'straight', 8)['state']
    assert not torch.equal(half['backbone.fc5.weight'], end['backbone.fc5.weight'])
