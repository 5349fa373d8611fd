"""A CSRI training iteration through the Runner, with the default hooks, forces no host-device synchronisation
outside logging iterations (issue 12 item 1; the CPU proxy for a GPU step that never stalls its queue).

What is counted. The Tensor methods that make the host wait for the device are patched on ``torch.Tensor`` for
the run (and restored): ``item``, ``tolist``, ``numpy``, ``cpu``, ``__bool__``, ``__float__``, ``__int__``,
``__index__`` (``bool(t)``, ``float(t)``, ``f'{t:.3f}'`` and ``math.isfinite(t)`` all reach one of them), plus
the copies that block: ``.to('cpu')`` (a device-to-host copy), ``.to(<device>)`` of a loader tensor without
``non_blocking=True`` (PyTorch's blocking host-to-device copy synchronises the stream) and
``torch.tensor(data, device=...)`` with a ``torch.device`` (the same copy, from Python memory).

The rule, since on a CPU every tensor is a host tensor:

* only calls whose stack passes through mmengine's ``run_iter`` (the model's ``train_step``, the optimiser
  wrapper, and every ``before/after_train_iter`` hook) count, and none that pass through ``torch.utils.data``
  (the DataLoader's sampler and collation work on CPU tensors in the main process here, as a loader worker
  would on a GPU machine);
* *host tensors* are the tensors of the loader's batch (tagged at ``before_train_iter``), those
  ``torch.tensor(data)`` makes without a device or with ``device='cpu'`` (Adam's step counter), and the
  results of ``.cpu()``/``.to('cpu')`` and of dtype changes of host tensors; every other tensor is taken to
  live on the training device (the result of moving a host tensor there included). Reading a host tensor
  (``.tolist()`` of a label, say) is no sync; moving one with ``.to(device)`` is, unless ``non_blocking=True``;
* a ``.to(<torch.device>)`` of a device tensor is taken as a move to the training device (a no-op there);
  ``.to('cpu')`` with the device named by a string, and ``.cpu()``, as a copy to the host. This is the one
  thing a CPU cannot tell apart: code that moves a result to the host with ``.to(torch.device('cpu'))``
  escapes the count.

Syncs inside C++ operators (boolean-mask indexing, ``nonzero``, ``unique``) do not pass through Python and are
not counted; ``torch.cuda.set_sync_debug_mode`` finds those on a GPU. Nor can a CPU tell pinned from pageable
memory: a ``non_blocking=True`` copy is asynchronous only from pinned memory (the loaders' ``pin_memory``).

Logging iterations (LoggerHook's interval, and the last one, which also saves a checkpoint) may synchronise:
that is where the buffered losses and gradient norms, and the loss guard's values, are fetched (one transfer
each: at most 2, besides the checkpoint's copies of the weights to the host). Run
``pytest tests/engine/test_sync_free.py -s`` to print the counts per iteration.
"""
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Tuple
from weakref import WeakValueDictionary

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmengine.structures import BaseDataElement

import lrfr.utils

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / 'configs' / 'demo' / 'csri_vdsr-centreface_1xb32_demo-pairs-native.py'
READS = ('item', 'tolist', 'numpy', '__bool__', '__float__', '__int__', '__index__')
ITERS, LOG_INTERVAL = 8, 4


def _tensors_in(node) -> List[torch.Tensor]:
    """Every tensor inside a loader batch (dicts, lists, data samples)."""
    if isinstance(node, torch.Tensor):
        return [node]
    if isinstance(node, BaseDataElement):
        return [t for _, v in node.all_items() for t in _tensors_in(v)]
    if isinstance(node, dict):
        return [t for v in node.values() for t in _tensors_in(v)]
    if isinstance(node, (list, tuple)):
        return [t for v in node for t in _tensors_in(v)]
    return []


def _another(source: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out``, or an alias of it when the CPU made the copy a no-op: on a GPU a copy between host and device is
    another tensor, and tagging it must not re-tag its source."""
    return out.view_as(out) if out is source else out


class SyncCounter(Hook):
    """Counts host-synchronising tensor calls per training iteration with the caller's ``file:line`` (see the
    module docstring for what counts). A hook itself: it learns the iteration and tags the loader's tensors."""

    priority = 'HIGHEST'

    def __init__(self) -> None:
        self.iteration: Optional[int] = None
        self.calls: Dict[int, Counter] = defaultdict(Counter)
        self._host: 'WeakValueDictionary[int, torch.Tensor]' = WeakValueDictionary()  # id -> host tensor
        self._saved: List[Tuple[object, str, object]] = []
        self._busy = False

    # -- which calls count -----------------------------------------------------------------------------------
    @staticmethod
    def _where() -> Optional[str]:
        """``file:line`` of the first caller outside torch and this file (prefixed ``checkpoint`` under the
        Runner's ``save_checkpoint``), if the call is inside ``run_iter`` and not inside the DataLoader; else
        None."""
        frame, inside, where, saving = sys._getframe(2), False, None, False
        while frame is not None:
            name = frame.f_code.co_filename
            if 'torch/utils/data' in name:
                return None
            if frame.f_code.co_name == 'run_iter' and name.endswith('mmengine/runner/loops.py'):
                inside = True
            if frame.f_code.co_name == 'save_checkpoint' and name.endswith('mmengine/runner/runner.py'):
                saving = True
            if where is None and '/torch/' not in name and name != __file__:
                where = f'{Path(name).name}:{frame.f_lineno}'
            frame = frame.f_back
        return (f'{where} (checkpoint)' if saving else where) if inside else None

    def _count(self, kind: str) -> None:
        if self.iteration is None or self._busy:
            return
        self._busy = True  # the stack walk itself formats nothing, but be safe against re-entry
        try:
            where = self._where()
            if where is not None:
                self.calls[self.iteration][f'{kind} at {where}'] += 1
        finally:
            self._busy = False

    def _is_host(self, tensor: torch.Tensor) -> bool:
        return self._host.get(id(tensor)) is tensor

    def _mark_host(self, tensor: torch.Tensor) -> None:
        self._host[id(tensor)] = tensor

    # -- the patches -----------------------------------------------------------------------------------------
    def _patch(self, owner: object, name: str, make) -> None:
        original = getattr(owner, name)
        self._saved.append((owner, name, original))
        setattr(owner, name, make(original))

    def __enter__(self) -> 'SyncCounter':
        counter = self

        def reading(name):
            def make(original):
                def wrapper(self, *args, **kwargs):
                    if not counter._is_host(self):
                        counter._count(f'Tensor.{name}')
                    return original(self, *args, **kwargs)
                return wrapper
            return make

        for name in READS:
            self._patch(torch.Tensor, name, reading(name))

        def make_cpu(original):
            def cpu(self, *args, **kwargs):
                if not counter._is_host(self):
                    counter._count('Tensor.cpu')
                out = _another(self, original(self, *args, **kwargs))
                counter._mark_host(out)
                return out
            return cpu

        def make_to(original):
            def to(self, *args, **kwargs):
                device, _, non_blocking, _ = torch._C._nn._parse_to(*args, **kwargs)
                named_cpu = any(isinstance(a, str) and a.startswith('cpu') for a in (*args, kwargs.get('device')))
                host = counter._is_host(self)
                out = original(self, *args, **kwargs)
                if device is None or named_cpu:  # a dtype change stays where it is; 'cpu' is the host
                    if named_cpu and not host:
                        if not non_blocking:
                            counter._count("Tensor.to('cpu')")
                        out = _another(self, out)
                    if host or named_cpu:
                        counter._mark_host(out)
                elif host:  # to the training device
                    if not non_blocking:
                        counter._count('Tensor.to (blocking host-to-device copy)')
                    out = _another(self, out)
                return out
            return to

        def make_tensor(original):
            def tensor(data, *args, **kwargs):
                device = kwargs.get('device')
                on_host = device is None or (isinstance(device, str) and device.startswith('cpu'))
                if not on_host:
                    counter._count('torch.tensor(..., device=...) (blocking host-to-device copy)')
                out = original(data, *args, **kwargs)
                if on_host:
                    counter._mark_host(out)  # made from Python data on the host (e.g. Adam's step counter)
                return out
            return tensor

        self._patch(torch.Tensor, 'cpu', make_cpu)
        self._patch(torch.Tensor, 'to', make_to)
        self._patch(torch, 'tensor', make_tensor)
        return self

    def __exit__(self, *exc) -> None:
        while self._saved:
            owner, name, original = self._saved.pop()
            setattr(owner, name, original)

    # -- the hook --------------------------------------------------------------------------------------------
    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self.iteration = runner.iter
        for tensor in _tensors_in(data_batch):
            self._mark_host(tensor)

    def after_train(self, runner) -> None:
        self.iteration = None


def shrunk_csri_config(work_dir: Path) -> Config:
    """The demo CSRI config as shipped, only shorter: ITERS iterations of 4 + 4 faces, logging every
    LOG_INTERVAL, main-process loading, no validation, no stage-1 checkpoint, one checkpoint at the end."""
    cfg = Config.fromfile(str(CONFIG))
    cfg.work_dir = str(work_dir)
    cfg.load_from = None
    cfg.train_cfg.max_iters = ITERS
    cfg.train_cfg.val_interval = ITERS + 1
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    loader = cfg.train_dataloader
    loader.batch_size = loader.sampler.batch_size = 8
    loader.num_workers = 0
    loader.persistent_workers = False
    for dataset in loader.dataset.datasets:
        dataset.data_root = str(REPO / 'data' / 'demo_tinyface')
    cfg.default_hooks.logger.interval = LOG_INTERVAL
    cfg.default_hooks.checkpoint.interval = ITERS
    cfg.log_level = 'WARNING'
    return cfg


def count_syncs(tmp_path: Path) -> Dict[int, Counter]:
    """Train the shrunk CSRI config under a :class:`SyncCounter`; the counts per 0-based iteration."""
    lrfr.utils.register_all_modules()
    cfg = shrunk_csri_config(tmp_path)
    lrfr.utils.config_utils.fill_sampler_length(cfg)
    counter = SyncCounter()
    runner = Runner.from_cfg(cfg)
    runner.register_hook(counter)
    with counter:
        runner.train()
    return counter.calls


def test_the_counter_sees_each_kind_of_sync_and_ignores_the_rest(monkeypatch):
    """The counter itself: every kind counts inside run_iter, nothing counts outside it or on host tensors."""
    counter = SyncCounter()
    device_t, host_t = torch.ones(2), torch.zeros(1)
    counter._mark_host(host_t)
    counter.iteration = 0

    def run_iter():  # named as mmengine's, but in this file: check that the file matters too
        return device_t.sum().item()

    def body():
        x = device_t.sum()
        x.item(), x.tolist(), x.numpy(), bool(x), float(x), int(x), x.cpu(), device_t.to('cpu')
        [0, 1][device_t[0].long()]  # __index__
        host_t.to(torch.device('cpu'))  # blocking host-to-device
        host_t.to(torch.device('cpu'), non_blocking=True)  # not counted
        device_t.to(torch.device('cpu'))  # the training device: a no-op
        host_t.tolist(), float(host_t)  # host tensors: not counted
        torch.tensor([1, 2], device=torch.device('cpu'))  # a torch.device: the training device
        made = torch.tensor([3.0])  # a host tensor: reading it is free, moving it without non_blocking is not
        float(made), made.to(torch.double).item()
        moved = made.to(torch.device('cpu'))
        moved.item()  # on the device now
        step = torch.tensor(0.0, device='cpu')  # a named host tensor, as Adam keeps its step counter
        step.item(), device_t.cpu().tolist(), device_t.to('cpu').tolist()  # on the host after the copy: free

    with counter:
        monkeypatch.setattr(SyncCounter, '_where', staticmethod(lambda: 'here:1'))
        body()
        monkeypatch.undo()
        run_iter()  # outside mmengine's loop: not counted
    kinds = Counter()
    for key, n in counter.calls[0].items():
        kinds[key.split(' at ')[0]] += n
    assert kinds == Counter({'Tensor.item': 2, 'Tensor.tolist': 1, 'Tensor.numpy': 1, 'Tensor.__bool__': 1,
                             'Tensor.__float__': 1, 'Tensor.__int__': 1, 'Tensor.cpu': 2, "Tensor.to('cpu')": 2,
                             'Tensor.__index__': 1, 'Tensor.to (blocking host-to-device copy)': 2,
                             'torch.tensor(..., device=...) (blocking host-to-device copy)': 1})
    assert 'wrapper' not in repr(torch.Tensor.item) and torch.tensor.__name__ == 'tensor'


def test_no_sync_outside_logging_iterations(tmp_path, capsys):
    calls = count_syncs(tmp_path)
    logging = {i for i in range(ITERS) if (i + 1) % LOG_INTERVAL == 0}
    with capsys.disabled():
        print()
        for i in range(ITERS):
            tag = 'logging' if i in logging else 'plain'
            print(f'iteration {i + 1} ({tag}): {sum(calls[i].values())} syncs  {dict(calls[i])}')
    offenders = {i + 1: dict(calls[i]) for i in range(ITERS) if i not in logging and calls[i]}
    assert not offenders, f'host syncs on non-logging iterations (1-based): {offenders}'
    fetches = {i + 1: sum(n for k, n in calls[i].items() if not k.endswith('(checkpoint)')) for i in logging}
    assert all(n <= 2 for n in fetches.values()), {i + 1: dict(calls[i]) for i in logging}
