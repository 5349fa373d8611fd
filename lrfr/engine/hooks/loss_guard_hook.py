"""Stop (or skip the step of) a training run whose loss turns non-finite or spikes far above its running median."""
import logging
import math
from collections import deque
from typing import Callable, Deque, Dict, List, Optional, Tuple

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from lrfr.errors import LRFRError
from lrfr.registry import HOOKS
from .runtime_info_hook import flush_scalars, is_log_iteration

ACTIONS = ('stop', 'skip')
# the CheckpointHook methods that delete old checkpoints and save a new one (mmengine 0.10.x): the deferred
# checks run before them, so no good checkpoint is deleted for a bad one
SAVING_METHODS = ('_save_checkpoint_with_step', '_save_best_checkpoint')


class LossDivergedError(LRFRError, RuntimeError):
    """Raised by :class:`LossGuardHook` when a run's loss is non-finite or spikes (one-line message; the tools
    print it as their one ``error:`` line)."""


def device_loss_terms(log_vars: Dict[str, torch.Tensor]) -> Tuple[List[str], Optional[torch.Tensor]]:
    """The names of the scalar loss entries of a model's ``log_vars`` (``loss`` and every key containing
    ``'loss'``) and their values stacked on the device (detached, float32), or ``([], None)``: no host sync."""
    names = [k for k, v in log_vars.items() if 'loss' in k and torch.is_tensor(v) and v.numel() == 1]
    if not names:
        return [], None
    return names, torch.stack([log_vars[k].detach().float().reshape(()) for k in names])


def fetch_mean(values: torch.Tensor) -> List[float]:
    """``values`` averaged over the ranks under distributed training (every rank then takes the same decision:
    a rank skipping its backward or stopping alone would hang DDP), fetched to the host: one sync."""
    if get_world_size() > 1:
        all_reduce(values, op='mean')
    return values.tolist()


def loss_terms(log_vars: Dict[str, torch.Tensor]) -> Dict[str, float]:
    """The scalar loss entries of a model's ``log_vars``, averaged over the ranks, as host floats (one sync)."""
    names, values = device_loss_terms(log_vars)
    return dict(zip(names, fetch_mean(values))) if names else {}


class RunningMedian:
    """Median of the last ``window`` accepted values (a plain sorted copy: windows are small)."""

    def __init__(self, window: int) -> None:
        self.values: Deque[float] = deque(maxlen=window)

    def __len__(self) -> int:
        return len(self.values)

    def push(self, value: float) -> None:
        self.values.append(value)

    def median(self) -> float:
        ordered = sorted(self.values)
        n = len(ordered)
        return ordered[n // 2] if n % 2 else 0.5 * (ordered[n // 2 - 1] + ordered[n // 2])


@HOOKS.register_module()
class LossGuardHook(Hook):
    """Detect a diverging run before its update lands, and stop it (or skip the update) with one clear error.

    At every training iteration the loss entries of the model's ``log_vars`` (the total ``loss`` and each key
    holding ``'loss'``, e.g. ``loss_cls``, ``loss_center``, ``loss_sr``) are checked *before* the optimiser
    step:

    * any non-finite entry (``nan``/``inf``) is bad at once;
    * after ``warmup`` accepted iterations, the total loss spikes when it exceeds ``ratio`` times the median
      of the last ``window`` accepted totals, and that median by more than ``min_delta`` as well (a loss
      near zero, e.g. a classifier that fits its batch, legitimately jumps by large factors). With
      ``action='stop'`` the spike must last: the run stops when each of the last ``patience`` totals
      spikes, so one hard batch among easy ones (small batches on a nearly fitted set:
      docs/csri.md, "Training stability") does not end a healthy run, while a divergence, whose loss keeps
      growing, stops ``patience - 1`` iterations after its first spike at most. The error names the term
      that grew most above its own median (the one responsible for the spike), its value and that median.

    ``action='stop'`` raises :class:`LossDivergedError` naming the bad iteration (1-based, as the log prints
    it; for a lasting spike, the iteration that completed ``patience`` and the one where it began), the term,
    its value vs its running median, and the last checkpoint the run saved before it (or "none saved yet").
    It takes no host-device synchronisation per step: each iteration's loss terms wait on the device and are
    fetched together (one transfer, one all-reduce under distributed training) on the LoggerHook's logging
    iterations, before a checkpoint is written, before validation and at the end of training. The run
    therefore stops up to one logging interval after the bad iteration (its updates have landed), but never
    saves a checkpoint after it: a checkpoint that exists is a good one.
    ``action='skip'`` needs the decision before the step, so it fetches the terms every iteration (one sync
    per step): it leaves the parameters and optimiser state untouched for that iteration (no backward, no
    step), logs a warning, and raises once more than ``max_skips`` steps were skipped. Buffers updated in the
    forward pass (CenterLoss centres) are not rolled back.

    The hook runs after the step in mmengine's loop, so it checks from inside ``train_step``: for the length
    of training it wraps the model's ``parse_losses`` (which sees every loss term), the optimiser
    wrapper's ``update_params`` (which it can veto) and the CheckpointHooks' saving methods (which first
    delete the oldest checkpoint: the deferred checks run before) on those instances, and restores them after
    training.
    This needs no special optimiser-wrapper type, so it works with ``OptimWrapper`` and ``AmpOptimWrapper``.
    The spike rule follows common divergence guards (e.g. the loss-spike skipping of large-model training
    recipes); the running median is robust to the noisy single batches that a mean would follow.

    Args:
        ratio (float): a total loss above ``ratio * running median`` is a spike. Defaults to 10.
        window (int): number of recent accepted iterations the median covers. Defaults to 100.
        warmup (int): accepted iterations before spikes are checked (non-finite values always are).
            Defaults to 50.
        min_delta (float): a spike must also exceed the median by this much. Defaults to 0.1.
        patience (int): with ``'stop'``, the number of consecutive iterations whose totals must all spike
            (1: any single spike stops the run). Defaults to 5.
        action (str): ``'stop'`` or ``'skip'``. Defaults to ``'stop'``.
        max_skips (int): with ``'skip'``, the run stops at the ``max_skips + 1``-th bad step. Defaults to 10.
    """

    priority = 'VERY_HIGH'

    def __init__(self, ratio: float = 10.0, window: int = 100, warmup: int = 50, action: str = 'stop',
                 max_skips: int = 10, min_delta: float = 0.1, patience: int = 5) -> None:
        if not ratio > 1.0:
            raise ValueError(f'LossGuardHook: ratio must be > 1, got {ratio}')
        for name, value, minimum in (('window', window, 1), ('warmup', warmup, 0), ('max_skips', max_skips, 0),
                                     ('patience', patience, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ValueError(f'LossGuardHook: {name} must be an int >= {minimum}, got {value!r}')
        if not min_delta >= 0.0:
            raise ValueError(f'LossGuardHook: min_delta must be >= 0, got {min_delta}')
        if action not in ACTIONS:
            raise ValueError(f'LossGuardHook: action must be one of {ACTIONS}, got {action!r}')
        self.ratio = float(ratio)
        self.window = window
        self.warmup = warmup
        self.action = action
        self.max_skips = max_skips
        self.min_delta = float(min_delta)
        self.patience = patience if action == 'stop' else 1  # 'skip' judges every step on its own
        self.streak = 0  # consecutive spiking totals so far
        self._streak_start: Optional[Tuple[str, Optional[str]]] = None  # (where, checkpoint) before the streak
        self.skipped = 0
        self._medians: Dict[str, RunningMedian] = {}
        self._accepted = 0
        self._veto: Optional[str] = None
        self._active = False
        self._runner = None
        self._ckpt_at_start: Optional[str] = None
        self._resumed_from: Optional[str] = None
        self._patched: List[Tuple[object, str]] = []
        self._pending: List[Tuple[int, List[str], torch.Tensor]] = []  # (0-based iteration, names, values)
        self._iteration: Optional[int] = None  # the deferred iteration being checked, else the runner's

    # -- the checks -------------------------------------------------------------------------------------------
    def _median(self, name: str) -> RunningMedian:
        if name not in self._medians:
            self._medians[name] = RunningMedian(self.window)
        return self._medians[name]

    def diagnose(self, terms: Dict[str, float]) -> Optional[str]:
        """Why these loss terms are bad (a phrase naming the term, its value and its median), or None.

        Accepted terms enter the running medians; bad and spiking ones do not.
        """
        bad = [name for name, value in terms.items() if not math.isfinite(value)]
        if bad:
            name = next((n for n in bad if n != 'loss'), bad[0])
            return f'{name} = {terms[name]} is non-finite'
        total = terms.get('loss')
        spikes = False
        if total is not None and self._accepted >= self.warmup:
            median = self._median('loss').median()
            spikes = median > 0 and total > self.ratio * median and total - median > self.min_delta
        self.streak = self.streak + 1 if spikes else 0
        if self.streak == 1:
            self._streak_start = (self._where(), self._last_checkpoint())
        if self.streak >= self.patience:
            # the term that grew most above its own median carries the spike
            growth = {n: v - self._median(n).median() for n, v in terms.items()
                      if n != 'loss' and len(self._median(n))}
            name = max(growth, key=growth.get) if growth else 'loss'
            value, term_median = terms[name], self._median(name).median()
            lasting = f', and {self.streak} iterations in a row' if self.patience > 1 else ''
            return (f'{name} = {value:.4g} is {value / max(term_median, 1e-12):.3g}x its running median '
                    f'{term_median:.4g} (total loss {total:.4g} > {self.ratio:g} x median {median:.4g}'
                    f'{lasting})')
        if spikes:  # a spike shorter than `patience` is let through but kept out of the medians
            return None
        for name, value in terms.items():
            self._median(name).push(value)
        self._accepted += 1
        return None

    def _where(self) -> str:
        iteration = self._iteration if self._iteration is not None else (
            self._runner.iter if self._runner is not None else None)
        return f'iteration {iteration + 1}' if iteration is not None else 'this iteration'

    def _last_checkpoint(self) -> Optional[str]:
        runner = self._runner
        ckpt = runner.message_hub.get_info('last_ckpt') if runner is not None else None
        if ckpt == self._ckpt_at_start:  # nothing saved by this run: only a resumed-from checkpoint counts
            ckpt = self._resumed_from
        return ckpt

    def _message(self, reason: str) -> str:
        where, ckpt = self._where(), self._last_checkpoint()
        if self.streak > 1 and self._streak_start is not None:  # a checkpoint saved during the spike is not good
            where = f'{where} (spiking since {self._streak_start[0]})'
            ckpt = self._streak_start[1]
        return (f'LossGuardHook: training diverged at {where}: {reason}; last good checkpoint: '
                f'{ckpt or "none saved yet"}')

    def defer(self, iteration: int, log_vars: Dict[str, torch.Tensor]) -> None:
        """Keep one iteration's loss terms on the device for the next :meth:`flush` (``action='stop'``)."""
        names, values = device_loss_terms(log_vars)
        if names:
            self._pending.append((iteration, names, values))

    def flush(self) -> None:
        """Fetch the deferred loss terms (one transfer) and check them in order: raise at the first bad one."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        values = fetch_mean(torch.cat([v for _, _, v in pending]))
        start = 0
        try:
            for iteration, names, _ in pending:
                terms = dict(zip(names, values[start:start + len(names)]))
                start += len(names)
                self._iteration = iteration  # the errors and the streak's start name it, not the current one
                reason = self.diagnose(terms)
                if reason is not None:
                    self._restore()  # the run ends here: leave the model, wrapper and hooks as they were
                    raise LossDivergedError(self._message(reason))
        finally:
            self._iteration = None

    def check(self, log_vars: Dict[str, torch.Tensor]) -> None:
        """Check one iteration's ``log_vars`` now (one sync): raise (stop), or mark the coming update to be
        skipped."""
        reason = self.diagnose(loss_terms(log_vars))
        if reason is None:
            return
        message = self._message(reason)
        if self.action == 'stop':
            self._restore()
            raise LossDivergedError(message)
        self.skipped += 1
        if self.skipped > self.max_skips:
            self._restore()
            raise LossDivergedError(f'{message}; {self.skipped} bad steps, more than max_skips={self.max_skips}')
        print_log(f'{message}; optimiser step skipped ({self.skipped}/{self.max_skips} allowed)',
                  logger='current', level=logging.WARNING)
        self._veto = reason

    # -- the wrappers -----------------------------------------------------------------------------------------
    def _wrap_parse_losses(self, original: Callable) -> Callable:
        def parse_losses(losses):
            loss, log_vars = original(losses)
            if self._active:
                if self.action == 'skip':
                    self.check(log_vars)
                else:
                    self.defer(self._runner.iter, log_vars)
            return loss, log_vars
        return parse_losses

    def _wrap_update_params(self, original: Callable) -> Callable:
        def update_params(loss, *args, **kwargs):
            if self._veto is not None:
                self._veto = None
                return None  # no backward, no step: parameters and momentum stay as they were
            return original(loss, *args, **kwargs)
        return update_params

    def _wrap_save(self, original: Callable) -> Callable:
        def save(*args, **kwargs):
            self.flush()
            return original(*args, **kwargs)
        return save

    def _patch(self, obj: object, name: str, wrapper: Callable) -> None:
        setattr(obj, name, wrapper(getattr(obj, name)))
        self._patched.append((obj, name))

    def before_train(self, runner) -> None:
        self._runner = runner
        # mmengine shares one MessageHub between runners of the same name and second, and restores
        # 'last_ckpt' on resume: a checkpoint counts if this run saved it, or if the run resumed from it
        self._ckpt_at_start = runner.message_hub.get_info('last_ckpt')
        resumed = getattr(runner, '_resume', False)
        self._resumed_from = (getattr(runner, '_load_from', None) or self._ckpt_at_start) if resumed else None
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        self._patch(model, 'parse_losses', self._wrap_parse_losses)
        self._patch(runner.optim_wrapper, 'update_params', self._wrap_update_params)
        for hook in runner.hooks:
            if isinstance(hook, CheckpointHook):
                for name in SAVING_METHODS:
                    if hasattr(hook, name):
                        self._patch(hook, name, self._wrap_save)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._active, self._veto = True, None

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._active, self._veto = False, None
        if self.action == 'skip':
            runner.message_hub.update_scalar('train/skipped_steps', self.skipped)
        elif is_log_iteration(runner, batch_idx):
            self.flush()

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        self.flush()  # a save outside CheckpointHook: raising here keeps it off the disk

    def before_val(self, runner) -> None:
        self.flush()

    def after_train(self, runner) -> None:
        try:
            self.flush()
        finally:
            self._restore()

    def _restore(self) -> None:
        """End of training, or a stop: unwrap what was wrapped, and let the message hub have every iteration's
        deferred scalars (a stop skips the hooks that would fetch them)."""
        if self._runner is not None:
            flush_scalars(self._runner.message_hub)
        while self._patched:
            obj, name = self._patched.pop()
            delattr(obj, name)  # the instance attribute hid the class method: back to it
