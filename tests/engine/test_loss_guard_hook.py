"""LossGuardHook: spike and non-finite rules by hand, then real Runners that diverge, skip, or train normally."""
import math
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset

import lrfr.engine  # noqa: F401  (registers the hooks)
from lrfr.engine.hooks import LossDivergedError, LossGuardHook
from lrfr.engine.hooks.loss_guard_hook import RunningMedian
from lrfr.registry import HOOKS

REPO = Path(__file__).resolve().parents[2]


# -- the rules by hand -----------------------------------------------------------------------------------------
def test_running_median_of_the_window():
    med = RunningMedian(window=3)
    for v in (5.0, 1.0, 3.0):
        med.push(v)
    assert med.median() == 3.0
    med.push(100.0)  # 5.0 leaves the window: {1, 3, 100}
    assert med.median() == 3.0
    med.push(2.0)  # {3, 100, 2}
    assert med.median() == 3.0
    even = RunningMedian(window=4)
    for v in (1.0, 2.0, 4.0, 8.0):
        even.push(v)
    assert even.median() == 3.0


def test_spike_after_warmup_names_the_growing_term():
    hook = LossGuardHook(ratio=10.0, window=10, warmup=3, patience=1)
    for _ in range(3):
        assert hook.diagnose(dict(loss=1.0, loss_cls=0.9, loss_center=0.1)) is None
    assert hook.diagnose(dict(loss=9.9, loss_cls=9.8, loss_center=0.1)) is None  # 9.9 <= 10 x 1.0
    # the median is now 1.0 still (four 1.0-ish totals and 9.9); 10.5 > 10 x 1.0
    reason = hook.diagnose(dict(loss=10.5, loss_cls=0.9, loss_center=9.6))
    assert reason.startswith('loss_center = 9.6 is 96x its running median 0.1')
    assert 'total loss 10.5 > 10 x median 1' in reason


def test_no_spike_check_during_warmup_and_bad_values_stay_out_of_the_median():
    hook = LossGuardHook(ratio=2.0, window=10, warmup=2, patience=1)
    assert hook.diagnose(dict(loss=1.0)) is None
    assert hook.diagnose(dict(loss=50.0)) is None  # still warming up: accepted
    assert hook.diagnose(dict(loss=1.0)) is None   # median of {1, 50, 1} = 1
    assert hook.diagnose(dict(loss=3.0)) is not None
    assert hook.diagnose(dict(loss=3.0)) is not None  # the rejected 3.0 did not raise the median


def test_a_near_zero_loss_may_jump_by_large_factors():
    hook = LossGuardHook(ratio=10.0, window=10, warmup=2, min_delta=0.1, patience=1)
    for _ in range(3):
        assert hook.diagnose(dict(loss=0.002)) is None
    assert hook.diagnose(dict(loss=0.05)) is None  # 25x the median, but only 0.048 above it
    assert hook.diagnose(dict(loss=0.2)) is not None  # 100x and 0.198 above


def test_stop_needs_a_lasting_spike_one_hard_batch_is_noise():
    """patience=3: single hard batches (even 100x) pass; three spiking totals in a row stop the run."""
    hook = LossGuardHook(ratio=10.0, window=20, warmup=3, patience=3)
    for _ in range(5):
        assert hook.diagnose(dict(loss=0.3, loss_cls=0.3)) is None
    for _ in range(2):
        assert hook.diagnose(dict(loss=30.0, loss_cls=30.0)) is None  # two in a row: not yet
        assert hook.diagnose(dict(loss=0.3, loss_cls=0.3)) is None
    assert hook.diagnose(dict(loss=12.0, loss_cls=12.0)) is None
    assert hook.diagnose(dict(loss=12.0, loss_cls=12.0)) is None
    reason = hook.diagnose(dict(loss=4.0, loss_cls=4.0))  # 12, 12, 4: each > 10 x 0.3
    assert reason == ('loss_cls = 4 is 13.3x its running median 0.3 (total loss 4 > 10 x median 0.3, and 3 '
                      'iterations in a row)')


def test_skip_judges_every_step_alone():
    hook = LossGuardHook(ratio=10.0, window=20, warmup=3, patience=5, action='skip')
    for _ in range(5):
        assert hook.diagnose(dict(loss=0.3)) is None
    assert hook.diagnose(dict(loss=6.6)) is not None


@pytest.mark.parametrize('value', [math.nan, math.inf, -math.inf])
def test_non_finite_is_bad_even_in_warmup(value):
    hook = LossGuardHook(warmup=100)
    reason = hook.diagnose(dict(loss=value, loss_cls=value, loss_center=0.1))
    assert reason == f'loss_cls = {value} is non-finite'


@pytest.mark.parametrize('kwargs, match', [
    (dict(ratio=1.0), 'ratio must be > 1'),
    (dict(window=0), 'window must be an int >= 1'),
    (dict(warmup=-1), 'warmup must be an int >= 0'),
    (dict(action='ignore'), "action must be one of .*'ignore'"),
    (dict(max_skips=1.5), 'max_skips must be an int >= 0'),
    (dict(min_delta=-1.0), 'min_delta must be >= 0'),
    (dict(patience=0), 'patience must be an int >= 1'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LossGuardHook(**kwargs)


def test_on_by_default_in_the_runtime():
    cfg = Config.fromfile(str(REPO / 'configs' / '_base_' / 'default_runtime.py'))
    hook = HOOKS.build(cfg.default_hooks.loss_guard)
    assert isinstance(hook, LossGuardHook) and hook.action == 'stop'


# -- real runs ---------------------------------------------------------------------------------------------------
class Regression(Dataset):
    """y = x . w_true, fixed samples."""

    def __init__(self, n: int = 64, dim: int = 4) -> None:
        gen = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, dim, generator=gen)
        self.y = self.x @ torch.arange(1.0, dim + 1)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return dict(inputs=self.x[i], target=self.y[i])


class LinearModel(BaseModel):
    """A linear regressor; ``poison`` maps a 0-based iteration to a factor for its loss (nan: a bad step)."""

    def __init__(self, poison=None) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 1)
        self.poison = poison or {}
        self.calls = 0

    def forward(self, inputs, target, mode='tensor'):
        pred = self.fc(inputs).squeeze(1)
        if mode != 'loss':
            return pred
        loss = (pred - target).pow(2).mean()
        factor = self.poison.get(self.calls, 1.0)
        self.calls += 1
        return dict(loss_mse=loss * factor, loss_reg=1e-3 * self.fc.weight.pow(2).sum())


class RecordWeights(Hook):
    """Snapshots of the parameters before and after each training iteration."""

    priority = 'LOWEST'

    def __init__(self) -> None:
        self.before, self.after = {}, {}

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.before[runner.iter] = [p.detach().clone() for p in runner.model.parameters()]

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.after[runner.iter] = [p.detach().clone() for p in runner.model.parameters()]


def make_runner(tmp_path, model, lr, guard, max_iters=60, ckpt_interval=10, extra_hooks=(), log_interval=1000,
                max_keep_ckpts=-1):
    return Runner(
        model=model, work_dir=str(tmp_path), experiment_name=f'guard_{tmp_path.name}',  # its own message hub
        train_dataloader=dict(dataset=Regression(), batch_size=8, num_workers=0,
                              collate_fn=dict(type='default_collate'),
                              sampler=dict(type='InfiniteSampler', shuffle=True)),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=lr, momentum=0.9)),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=ckpt_interval,
                                           max_keep_ckpts=max_keep_ckpts),
                           logger=dict(type='LoggerHook', interval=log_interval)),
        custom_hooks=[dict(type='LossGuardHook', **guard), *extra_hooks],
        randomness=dict(seed=0), default_scope='lrfr')


def test_a_run_made_to_diverge_stops_with_one_clear_error(tmp_path):
    runner = make_runner(tmp_path, LinearModel(), lr=0.5, guard=dict(warmup=5, window=20))
    with pytest.raises(LossDivergedError) as info:
        runner.train()
    message = str(info.value)
    assert '\n' not in message
    expected = (r'^LossGuardHook: training diverged at iteration (\d+) \(spiking since iteration (\d+)\): '
                r'loss_mse = \S+ is \S+x its running median \S+ \(total loss \S+ > 10 x median \S+, and 5 '
                r'iterations in a row\); last good checkpoint: (.*)$')
    match = pytest.importorskip('re').match(expected, message)
    assert match, message
    iteration, first, ckpt = int(match[1]), int(match[2]), match[3]
    assert 5 < first == iteration - 4 < 60  # patience 5 (the default)
    if first > 10:  # the last checkpoint saved before the first spiking step, not one saved during the spike
        assert ckpt == str(tmp_path / f'iter_{(first - 1) // 10 * 10}.pth') and Path(ckpt).is_file()
    else:
        assert ckpt == 'none saved yet'


def test_a_checkpoint_saved_during_the_spike_is_not_called_good(tmp_path):
    """Spiking from iteration 9 with patience 5: the run stops at 13, and iter_10.pth (saved at 10) is not good."""
    poison = {i: 1e3 for i in range(8, 60)}  # 0-based calls 8.. are iterations 9..
    runner = make_runner(tmp_path, LinearModel(poison=poison), lr=0.01, guard=dict(warmup=3, window=20))
    with pytest.raises(LossDivergedError, match=r'^LossGuardHook: training diverged at iteration 13 \(spiking since '
                                                r'iteration 9\): .* last good checkpoint: none saved yet$'):
        runner.train()
    assert (tmp_path / 'iter_10.pth').is_file()


def test_non_finite_loss_stops_before_any_checkpoint(tmp_path):
    runner = make_runner(tmp_path, LinearModel(poison={3: math.nan}), lr=0.01, guard=dict())
    with pytest.raises(LossDivergedError, match=r'^LossGuardHook: training diverged at iteration 4: loss_mse = nan '
                                                r'is non-finite; last good checkpoint: none saved yet$'):
        runner.train()


def test_skip_leaves_the_weights_unchanged_on_the_bad_steps(tmp_path):
    record = RecordWeights()
    model = LinearModel(poison={12: math.nan, 20: 1e6})
    runner = make_runner(tmp_path, model, lr=0.01, guard=dict(action='skip', max_skips=2, warmup=5),
                         max_iters=30, extra_hooks=[record])
    runner.train()
    hook = next(h for h in runner.hooks if isinstance(h, LossGuardHook))
    assert hook.skipped == 2
    for it in range(30):
        same = all(torch.equal(a, b) for a, b in zip(record.before[it], record.after[it]))
        assert same == (it in (12, 20)), it
    assert all(torch.isfinite(p).all() for p in model.parameters())
    # the wrappers are gone after training: the class methods are back
    assert 'parse_losses' not in vars(model) and 'update_params' not in vars(runner.optim_wrapper)


def test_skip_stops_after_max_skips(tmp_path):
    model = LinearModel(poison={3: math.nan, 4: math.inf, 5: math.nan})
    runner = make_runner(tmp_path, model, lr=0.01, guard=dict(action='skip', max_skips=2))
    with pytest.raises(LossDivergedError, match=r'at iteration 6: loss_mse = nan is non-finite; last good '
                                                r'checkpoint: none saved yet; 3 bad steps, more than max_skips=2$'):
        runner.train()


def test_no_false_alarm_on_a_normal_run(tmp_path):
    runner = make_runner(tmp_path, LinearModel(), lr=0.02, guard=dict(warmup=5, window=20, ratio=10.0),
                         max_iters=150)
    runner.train()  # the loss falls by orders of magnitude: a falling loss is never a spike
    hook = next(h for h in runner.hooks if isinstance(h, LossGuardHook))
    assert hook.skipped == 0 and hook._accepted == 150


def test_demo_config_with_a_huge_learning_rate_is_stopped(tmp_path):
    """The shipped demo FR recipe, made to diverge (lr x 400): the default guard stops it and names the term."""
    cfg = Config.fromfile(str(REPO / 'configs' / 'demo' / 'centreface_1xb32_demo-hr.py'))
    cfg.work_dir = str(tmp_path)
    cfg.optim_wrapper.optimizer.lr = 5.0
    cfg.optim_wrapper.clip_grad = None
    cfg.param_scheduler = None
    cfg.train_cfg.max_iters = 100
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.train_dataloader.dataset.data_root = str(REPO / 'data' / 'demo_tinyface')
    cfg.default_hooks.checkpoint.interval = 5
    runner = Runner.from_cfg(cfg)
    with pytest.raises(LossDivergedError, match=r'^LossGuardHook: training diverged at iteration \d+: '
                                                r'loss_(cls|center) = .*; last good checkpoint: (none saved yet|'
                                                + str(tmp_path) + r'/iter_\d+\.pth)$'):
        runner.train()


# -- the deferred decision of action='stop' ----------------------------------------------------------------------
class CountIters(Hook):
    """The iterations that ran to their end."""

    def __init__(self) -> None:
        self.done = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.done.append(runner.iter)


def test_stop_is_decided_at_the_logging_iteration_and_names_the_first_bad_one(tmp_path):
    """The guard fetches its values at the LoggerHook's interval: a nan at iteration 6 (1-based) and another at 7
    are found after iteration 8, the next logging one; the error names iteration 6."""
    done = CountIters()
    runner = make_runner(tmp_path, LinearModel(poison={5: math.nan, 6: math.nan}), lr=0.01, guard=dict(),
                         max_iters=30, ckpt_interval=100, log_interval=4)
    runner.register_hook(done, priority='LOWEST')
    with pytest.raises(LossDivergedError, match=r'^LossGuardHook: training diverged at iteration 6: loss_mse = nan '
                                                r'is non-finite; last good checkpoint: none saved yet$'):
        runner.train()
    assert done.done == list(range(7))  # iterations 1..7 ran to their end; the 8th stopped in its hooks


def test_no_checkpoint_after_the_bad_iteration_and_the_good_one_is_kept(tmp_path):
    """With one checkpoint kept, the save at iteration 20 would first delete iter_10.pth: the deferred check runs
    before it, so iter_10.pth survives and is the one named, and no iter_20.pth is written."""
    runner = make_runner(tmp_path, LinearModel(poison={14: math.inf}), lr=0.01, guard=dict(), max_iters=30,
                         ckpt_interval=10, max_keep_ckpts=1)
    with pytest.raises(LossDivergedError, match=r'at iteration 15: loss_mse = inf is non-finite; last good '
                                                r'checkpoint: ' + str(tmp_path / 'iter_10.pth') + '$'):
        runner.train()
    assert (tmp_path / 'iter_10.pth').is_file() and not (tmp_path / 'iter_20.pth').exists()
    assert 'parse_losses' not in vars(runner.model)  # the hook restored what it wrapped despite the error
    # and the message hub got the losses the stop kept the logger from fetching: all 20 iterations
    assert len(runner.message_hub.get_scalar('train/loss').data[0]) == 20
    hook = next(h for h in runner.hooks if isinstance(h, LossGuardHook))
    assert not hook._pending


def test_a_bad_iteration_in_the_last_window_is_found_at_the_end(tmp_path):
    runner = make_runner(tmp_path, LinearModel(poison={27: math.nan}), lr=0.01, guard=dict(), max_iters=29,
                         ckpt_interval=100, log_interval=10)
    checkpoint = next(h for h in runner.hooks if type(h).__name__ == 'CheckpointHook')
    checkpoint.save_last = False  # nothing between iteration 28 and the end of training but the guard
    with pytest.raises(LossDivergedError, match=r'at iteration 28: loss_mse = nan is non-finite'):
        runner.train()
    assert 'update_params' not in vars(runner.optim_wrapper)
    assert '_save_checkpoint_with_step' not in vars(checkpoint)


def test_a_lasting_spike_across_a_flush_and_a_save_names_the_checkpoint_before_it(tmp_path):
    """Spikes from iteration 18 (1-based): the flush at 20 sees 3 of the 5 needed, so iter_20.pth is saved during
    the spike; the flush at 24 completes the streak at 22 and names iter_10.pth, the last one before it began."""
    torch.manual_seed(0)  # the model's initial weights, whatever ran before
    poison = {i: 100.0 for i in range(17, 30)}
    runner = make_runner(tmp_path, LinearModel(poison=poison), lr=1e-4, guard=dict(warmup=5, patience=5),
                         max_iters=30, ckpt_interval=10, log_interval=4)
    with pytest.raises(LossDivergedError, match=r'at iteration 22 \(spiking since iteration 18\): loss_mse = .*5 '
                                                r'iterations in a row\); last good checkpoint: '
                                                + str(tmp_path / 'iter_10.pth') + '$'):
        runner.train()
    assert (tmp_path / 'iter_20.pth').is_file() and not (tmp_path / 'iter_30.pth').exists()
