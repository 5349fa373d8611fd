"""Training scalars kept on the device between logging iterations, fetched in one transfer (issue 12 item 1).

mmengine's ``RuntimeInfoHook`` puts every logged loss into the message hub each iteration, and the message hub
stores it with ``.item()``: one host-device synchronisation per loss per step, which on a GPU stalls the queue.
Here the per-iteration tensors wait on the device in a :class:`DeferredScalars` buffer (one per message hub,
shared with the optimiser wrapper's gradient norms) and are fetched with one ``.tolist()`` when something reads
them: on the LoggerHook's logging iterations, before validation, before a checkpoint is written (the message
hub is saved in it) and at the end of training. Every iteration's value then enters the message hub in order,
so its histories (and the logged windows and means) are exactly mmengine's.
"""
from typing import Any, Dict, List, Optional, Tuple
from weakref import WeakKeyDictionary

import torch
from mmengine.hooks import LoggerHook, RuntimeInfoHook
from mmengine.logging import MessageHub
from mmengine.utils import apply_to

from lrfr.registry import HOOKS

# a run that never flushes (no logging, no checkpoint) still fetches its scalars this often, to bound memory
MAX_PENDING = 10_000


class DeferredScalars:
    """Scalars for one message hub, in the order they were logged; tensors stay where they are until
    :meth:`flush` fetches them all with one transfer per (device, dtype kind).

    Non-tensor values go straight to the message hub unless earlier values of the same key still wait (the
    key's history keeps its order either way). Values are deferred only while ``deferred`` is set, i.e. while
    a :class:`DeferredRuntimeInfoHook` trains (it flushes them); otherwise ``put`` is mmengine's
    ``update_scalar``, so a run with another runtime-info hook still logs every value at once.
    """

    def __init__(self, message_hub: MessageHub, deferred: bool = False) -> None:
        self.message_hub = message_hub
        self.deferred = deferred
        self.pending: List[Tuple[str, Any, int]] = []
        self._keys: Dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.pending)

    def reset(self, deferred: bool) -> None:
        """Drop every pending value and set ``deferred``."""
        self.pending, self._keys, self.deferred = [], {}, deferred

    def put(self, key: str, value: Any, count: int = 1) -> None:
        """Log ``value`` under ``key`` (as ``MessageHub.update_scalar`` would), deferring tensors."""
        if not self.deferred and not self.pending:
            self.message_hub.update_scalar(key, value, count)
            return
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                raise ValueError(f'DeferredScalars: {key!r} must hold one element, got shape {tuple(value.shape)}')
            value = value.detach()  # the autograd graph of a loss must not live until the flush
        elif key not in self._keys:
            self.message_hub.update_scalar(key, value, count)
            return
        self.pending.append((key, value, count))
        self._keys[key] = self._keys.get(key, 0) + 1
        if len(self.pending) > MAX_PENDING:
            self.flush()

    def flush(self) -> None:
        """Fetch every pending tensor (one ``.tolist()`` per device and dtype kind, usually one in all) and
        push all pending values into the message hub in order."""
        pending, self.pending, self._keys = self.pending, [], {}
        groups: Dict[Tuple[torch.device, torch.dtype], List[int]] = {}
        for i, (_, value, _) in enumerate(pending):
            if isinstance(value, torch.Tensor):
                # fp16/bf16 -> fp32 and fp32 -> fp64 are exact, so the floats equal what .item() returns
                dtype = value.dtype if not value.is_floating_point() else (
                    torch.float64 if value.dtype == torch.float64 else torch.float32)
                groups.setdefault((value.device, dtype), []).append(i)
        fetched: Dict[int, Any] = {}
        for (_, dtype), indices in groups.items():
            stacked = torch.cat([pending[i][1].reshape(1).to(dtype) for i in indices])
            fetched.update(zip(indices, stacked.tolist()))
        for i, (key, value, count) in enumerate(pending):
            self.message_hub.update_scalar(key, fetched.get(i, value), count)


_BUFFERS: 'WeakKeyDictionary[MessageHub, DeferredScalars]' = WeakKeyDictionary()


def deferred_scalars(message_hub: MessageHub) -> DeferredScalars:
    """The :class:`DeferredScalars` of a message hub (created on first use)."""
    if message_hub not in _BUFFERS:
        _BUFFERS[message_hub] = DeferredScalars(message_hub)
    return _BUFFERS[message_hub]


def flush_scalars(message_hub: MessageHub) -> None:
    """Push a message hub's pending scalars into it (nothing to do when there are none)."""
    buffer = _BUFFERS.get(message_hub)
    if buffer is not None and len(buffer):
        buffer.flush()


def is_log_iteration(runner, batch_idx: int) -> bool:
    """Whether the runner's LoggerHook logs after this training iteration (mmengine 0.10.7's rule in
    ``LoggerHook.after_train_iter``); False without a LoggerHook."""
    logger = next((h for h in runner.hooks if isinstance(h, LoggerHook)), None)
    if logger is None:
        return False
    if logger.every_n_inner_iters(batch_idx, logger.interval):
        return True
    return (logger.end_of_epoch(runner.train_dataloader, batch_idx)
            and (not logger.ignore_last or len(runner.train_dataloader) <= logger.interval))


@HOOKS.register_module()
class DeferredRuntimeInfoHook(RuntimeInfoHook):
    """mmengine's ``RuntimeInfoHook`` without a host synchronisation per iteration: each iteration's
    ``log_vars`` wait on the device (detached) and reach the message hub, every iteration's value in order,
    on the LoggerHook's logging iterations, before validation, before a checkpoint is saved, and at the end of
    training (see the module docstring). Set in ``default_hooks.runtime_info`` of the default runtime.
    """

    def before_train(self, runner) -> None:
        super().before_train(runner)
        # mmengine shares a message hub between runners of one name and second: start without the values a
        # stopped run may have left
        deferred_scalars(runner.message_hub).reset(deferred=True)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs: Optional[dict] = None) -> None:
        if outputs is not None:
            buffer = deferred_scalars(runner.message_hub)
            for key, value in outputs.items():
                buffer.put(f'train/{key}', value)
        if is_log_iteration(runner, batch_idx):
            flush_scalars(runner.message_hub)

    def before_val(self, runner) -> None:
        flush_scalars(runner.message_hub)
        super().before_val(runner)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        # the Runner took the message hub's state before calling this hook: take it again, complete
        if len(deferred_scalars(runner.message_hub)):
            flush_scalars(runner.message_hub)
            checkpoint['message_hub'] = apply_to(runner.message_hub.state_dict(),
                                                 lambda x: hasattr(x, 'cpu'), lambda x: x.cpu())

    def after_train(self, runner) -> None:
        flush_scalars(runner.message_hub)
        deferred_scalars(runner.message_hub).deferred = False
        super().after_train(runner)
