"""Fixes for known traps of this stack (torch >= 2.6, setuptools >= 82, CPU-only DDP), applied on import.

Each fix is small, idempotent and has a test in ``tests/test_compat.py``:

1. **Checkpoints under torch's ``weights_only`` loading.** torch >= 2.6 unpickles with an allow-list, and
   mmengine 0.10.7's own checkpoints hold objects outside it (``HistoryBuffer`` in the message hub, numpy arrays,
   scalars and dtypes, and ``getattr(HistoryBuffer, 'mean')`` for its statistics methods), so ``resume`` and
   ``load_from`` fail. We allow exactly those globals; ``getattr`` is replaced by a function that only resolves
   ``HistoryBuffer`` statistics methods, because a general ``getattr`` would let a file reach arbitrary code.
   Loading stays ``weights_only``: arbitrary pickles are refused. For a file you trust, opt in explicitly with
   :func:`trust_checkpoints` (``--trust-checkpoint`` in the tools), which sets torch's documented
   ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` switch.
2. **No ``pkg_resources`` (setuptools >= 82).** mmengine finds installed packages with it for
   ``_base_ = 'mmpretrain::...'`` config bases and ``mmengine.hub``. We rebind those helpers to
   ``importlib.metadata`` equivalents, which need no setuptools at all.
3. **Distributed training without CUDA.** mmengine's ``init_dist`` calls ``torch.cuda.set_device`` and defaults to
   NCCL; its DDP wrapper passes ``device_ids=[LOCAL_RANK]``. Without a GPU we switch to the gloo backend, skip
   ``set_device`` and give DDP ``device_ids=None`` (what torch requires for CPU modules). With a GPU nothing changes.
4. **Known noise.** mmcv-lite warns at import that its compiled ``MultiScaleDeformableAttention`` is missing (lrfr
   never uses it), and mmengine's own hooks log ``FileClient`` / ``HardDiskBackend`` deprecation lines at every run
   although no user code asks for them. These messages are filtered by their exact text (a ``warnings`` filter and
   a ``logging.Filter`` on mmengine's loggers), so real warnings still show.
"""
import contextlib
import functools
import importlib.metadata
import importlib.util
import logging
import os
import os.path as osp
import pickle
import warnings
from typing import Any, Callable, Iterator

import numpy as np
import torch

_APPLIED = False

# -- 4. import-time noise -------------------------------------------------------------------------------------
#: Exact messages we silence; anything else keeps its default warning behaviour.
NOISE_WARNINGS = (
    r'Fail to import ``MultiScaleDeformableAttention`` from ``mmcv\.ops\.multi_scale_deform_attn``',
)


#: Exact beginnings of the log lines mmengine's hooks emit for their own internal FileClient use.
NOISE_LOG_LINES = (
    '"FileClient" will be deprecated in future.',
    '"HardDiskBackend" is the alias of "LocalBackend"',
)


class KnownNoiseFilter(logging.Filter):
    """Drop the log records listed in ``NOISE_LOG_LINES``; pass everything else."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(message.startswith(line) for line in NOISE_LOG_LINES)


def _with_noise_filter(logger_init: Callable) -> Callable:
    @functools.wraps(logger_init)
    def init(self, *args: Any, **kwargs: Any) -> None:
        logger_init(self, *args, **kwargs)
        self.addFilter(KnownNoiseFilter())

    init.__lrfr_patched__ = True  # type: ignore[attr-defined]
    return init


def silence_known_noise() -> None:
    """Filter the known, harmless warnings and log lines (see ``NOISE_WARNINGS``, ``NOISE_LOG_LINES``)."""
    for message in NOISE_WARNINGS:
        warnings.filterwarnings('ignore', message=message, category=UserWarning)
    from mmengine.logging import MMLogger
    if not getattr(MMLogger.__init__, '__lrfr_patched__', False):
        MMLogger.__init__ = _with_noise_filter(MMLogger.__init__)
    for name, instance in MMLogger._instance_dict.items():  # loggers created before lrfr was imported
        if not any(isinstance(f, KnownNoiseFilter) for f in instance.filters):
            instance.addFilter(KnownNoiseFilter())


# -- 1. checkpoints -------------------------------------------------------------------------------------------
def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """Restricted ``getattr`` for unpickling: only ``HistoryBuffer``'s registered statistics methods."""
    from mmengine.logging import HistoryBuffer
    if not HistoryBuffer._statistics_methods:
        HistoryBuffer()  # the class registers its default statistics (min/max/mean/current) on first use
    if obj is HistoryBuffer and name in HistoryBuffer._statistics_methods:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'refusing getattr({obj!r}, {name!r}) while loading a checkpoint: only HistoryBuffer statistics methods '
        'are allowed. If you trust this file, load it with --trust-checkpoint (lrfr.compat.trust_checkpoints()).')


def checkpoint_safe_globals() -> list:
    """The globals that mmengine checkpoints need beyond torch's default ``weights_only`` allow-list."""
    from mmengine.logging import HistoryBuffer
    multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    safe: list = [HistoryBuffer, multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype]
    # numpy >= 1.25 pickles dtypes through their classes, e.g. numpy.dtypes.Float64DType.
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        safe += [cls for name, cls in vars(dtypes).items() if name.endswith('DType') and isinstance(cls, type)]
    # mmengine pickles HistoryBuffer._statistics_methods as getattr(HistoryBuffer, name).
    safe += [(_history_buffer_getattr, 'builtins.getattr'), (_history_buffer_getattr, '__builtin__.getattr')]
    # Old numpy module path, so checkpoints written under numpy 1.x load under numpy 2 and back.
    safe += [(multiarray._reconstruct, 'numpy.core.multiarray._reconstruct'),
             (multiarray.scalar, 'numpy.core.multiarray.scalar')]
    return safe


def allow_mmengine_checkpoints() -> None:
    """Allow-list what mmengine checkpoints contain, keeping ``weights_only`` loading on."""
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is not None:  # torch < 2.4 loads everything anyway
        add_safe_globals(checkpoint_safe_globals())


def trust_checkpoints() -> None:
    """Opt in to full (unsafe) unpickling of checkpoints, for files from a source you trust.

    Sets torch's ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` for this process (and children). Only needed for
    checkpoints holding objects beyond mmengine's own (e.g. written by other toolboxes).
    """
    warnings.warn('lrfr: loading checkpoints with weights_only=False: only do this for files you trust.')
    os.environ['TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'] = '1'


# -- 2. package lookup without pkg_resources ------------------------------------------------------------------
def _distribution(package: str):
    try:
        return importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def package2module(package: str) -> str:
    """Top-level module of an installed distribution (``mmcv-lite`` -> ``mmcv``)."""
    dist = _distribution(package)
    if dist is None:
        raise ValueError(f'can not infer the module name of {package}: it is not installed')
    top_level = dist.read_text('top_level.txt')
    if top_level:
        return top_level.split()[0]
    # Wheels without top_level.txt: the first top-level package among the recorded files.
    for file in dist.files or ():
        if len(file.parts) > 1 and file.parts[-1] == '__init__.py' and '.dist-info' not in file.parts[0]:
            return file.parts[0]
    return package.replace('-', '_')


def is_installed(package: str) -> bool:
    """Whether a distribution or an importable module of that name exists (mmengine's contract)."""
    if _distribution(package) is not None:
        return True
    spec = importlib.util.find_spec(package)
    return spec is not None and spec.origin is not None


def get_installed_path(package: str) -> str:
    """Directory of an installed package (mmengine's contract, without ``pkg_resources``)."""
    dist = _distribution(package)
    if dist is None:
        spec = importlib.util.find_spec(package)
        if spec is None:
            raise importlib.metadata.PackageNotFoundError(package)
        if spec.origin is None:
            raise RuntimeError(f'{package} is a namespace package, which is invalid for `get_install_path`')
        return osp.dirname(spec.origin)
    module = package2module(package)
    spec = importlib.util.find_spec(module)
    if spec is not None and spec.origin is not None:  # editable installs live outside site-packages
        return osp.dirname(spec.origin)
    return str(dist.locate_file(module))


def patch_package_utils() -> None:
    """Rebind mmengine's ``pkg_resources``-based helpers wherever they were imported by name."""
    import mmengine.config.config as config_module
    import mmengine.hub.hub as hub_module
    import mmengine.utils as utils_module
    import mmengine.utils.package_utils as package_utils
    replacements = dict(is_installed=is_installed, get_installed_path=get_installed_path,
                        package2module=package2module)
    for module in (package_utils, utils_module, config_module, hub_module):
        for name, func in replacements.items():
            if hasattr(module, name):
                setattr(module, name, func)


# -- 3. distributed without CUDA ------------------------------------------------------------------------------
@contextlib.contextmanager
def _no_cuda_set_device() -> Iterator[None]:
    original = torch.cuda.set_device
    torch.cuda.set_device = lambda device: None
    try:
        yield
    finally:
        torch.cuda.set_device = original


def _cpu_capable_init(init_fn: Callable) -> Callable:
    """Wrap an mmengine ``_init_dist_*`` so that it uses gloo and skips ``set_device`` when there is no GPU."""

    @functools.wraps(init_fn)
    def init(backend: str = 'nccl', *args: Any, **kwargs: Any) -> None:
        if torch.cuda.is_available():
            return init_fn(backend, *args, **kwargs)
        if backend != 'gloo':
            warnings.warn(f'lrfr: no CUDA device, distributed backend {backend!r} replaced by "gloo"')
        with _no_cuda_set_device():
            return init_fn('gloo', *args, **kwargs)

    init.__lrfr_patched__ = True  # type: ignore[attr-defined]
    return init


def _cpu_capable_ddp_init(ddp_init: Callable) -> Callable:
    """Drop ``device_ids`` for modules on the CPU, which torch's DDP requires (mmengine always passes them)."""

    @functools.wraps(ddp_init)
    def init(self, module: torch.nn.Module, *args: Any, **kwargs: Any) -> None:
        on_cpu = all(p.device.type == 'cpu' for p in module.parameters())
        if on_cpu and kwargs.get('device_ids') is not None:
            kwargs['device_ids'] = None
            kwargs.pop('output_device', None)
        ddp_init(self, module, *args, **kwargs)

    init.__lrfr_patched__ = True  # type: ignore[attr-defined]
    return init


def patch_distributed() -> None:
    """Make mmengine's ``init_dist`` and ``MMDistributedDataParallel`` work on CPU-only machines."""
    import mmengine.dist.utils as dist_utils
    from mmengine.model.wrappers.distributed import MMDistributedDataParallel
    for name in ('_init_dist_pytorch', '_init_dist_slurm'):
        fn = getattr(dist_utils, name)
        if not getattr(fn, '__lrfr_patched__', False):
            setattr(dist_utils, name, _cpu_capable_init(fn))
    if not getattr(MMDistributedDataParallel.__init__, '__lrfr_patched__', False):
        MMDistributedDataParallel.__init__ = _cpu_capable_ddp_init(MMDistributedDataParallel.__init__)


def apply() -> None:
    """Apply every fix once (called when ``lrfr`` is imported)."""
    global _APPLIED
    if _APPLIED:
        return
    silence_known_noise()
    allow_mmengine_checkpoints()
    patch_package_utils()
    patch_distributed()
    _APPLIED = True


apply()
