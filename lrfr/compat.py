"""Fixes for known traps of this stack (torch >= 2.6, setuptools >= 82, CPU-only DDP), applied on request.

Contract:

- ``import lrfr`` (or any lrfr sub-package) applies **nothing**: a program that imports lrfr keeps mmengine, torch
  and the ``warnings`` / ``logging`` set-up exactly as they were.
- :func:`apply` (called by :func:`lrfr.utils.register_all_modules`, which the tools and
  :func:`lrfr.apis.init_model` call) applies each fix in :data:`PATCHES` whose version guard holds on the
  installed stack, once per process; calling it again changes nothing.
- Each fix names the upstream issue or source line it works around (``Patch.upstream``); docs/compat.md lists
  them, and ``tests/test_compat.py`` tests each fix and each guard.

The fixes:

1. ``checkpoint_allow_list`` (torch >= 2.6): torch unpickles with an allow-list by default, and mmengine's own
   checkpoints hold objects outside it (``HistoryBuffer`` in the message hub, numpy arrays, scalars and dtypes, and
   ``getattr(HistoryBuffer, 'mean')`` for its statistics methods), so ``resume`` and ``load_from`` fail. We allow
   exactly those globals; ``getattr`` is replaced by a function that only resolves ``HistoryBuffer`` statistics
   methods, because a general ``getattr`` would let a file reach arbitrary code. Loading stays ``weights_only``.
   For a file you trust, opt in explicitly with :func:`trust_checkpoints` (``--trust-checkpoint`` in the tools).
2. ``package_helpers`` (no ``pkg_resources``, mmengine <= 0.10.7): mmengine finds installed packages with
   ``pkg_resources`` for ``_base_ = 'mmpretrain::...'`` config bases and ``mmengine.hub``; setuptools >= 82 no
   longer ships it. We rebind those helpers to ``importlib.metadata`` equivalents.
3. ``cpu_distributed`` (mmengine 0.10.x): ``init_dist`` calls ``torch.cuda.set_device`` and defaults to NCCL; the
   Runner gives DDP ``device_ids=[LOCAL_RANK]``. Without a GPU we switch to gloo, skip ``set_device`` and give DDP
   ``device_ids=None`` (what torch requires for CPU modules). With a GPU the wrapped functions behave as before.
4. ``log_noise`` (mmengine 0.10.x): mmengine's own hooks log ``FileClient`` / ``HardDiskBackend`` deprecation
   lines at every run although no user code asks for them; a ``logging.Filter`` on mmengine's loggers drops
   exactly those lines.
5. ``mmcv_ops_warning`` (mmcv without compiled ops, e.g. mmcv-lite): mmcv warns at import that its compiled
   ``MultiScaleDeformableAttention`` is missing (lrfr never uses it); a ``warnings`` filter on that exact text.
"""
import contextlib
import dataclasses
import functools
import glob
import importlib.metadata
import importlib.util
import logging
import os
import os.path as osp
import pickle
import re
import warnings
from typing import Any, Callable, Dict, Iterator, List, Tuple

import numpy as np
import torch

#: Names of the fixes applied in this process (by :func:`apply`), in application order.
_applied: List[str] = []


# -- version guards -------------------------------------------------------------------------------------------
def release(version: str) -> Tuple[int, ...]:
    """The numeric release part of a version string: ``'2.14.1+cu130'`` -> ``(2, 14, 1)``, ``'2.6.0a0'`` ->
    ``(2, 6, 0)``. Pre-release and local tags are ignored: a guard asks which release line is installed."""
    match = re.match(r'\d+(\.\d+)*', str(version))
    if match is None:
        raise ValueError(f'lrfr.compat: cannot read a release number from version {version!r}')
    return tuple(int(part) for part in match.group(0).split('.'))


def _mmengine_release() -> Tuple[int, ...]:
    import mmengine
    return release(mmengine.__version__)


def torch_loads_weights_only() -> bool:
    """torch >= 2.6: ``torch.load`` defaults to ``weights_only=True`` (mmengine 0.10.7 passes no value)."""
    return release(torch.__version__) >= (2, 6)


def mmengine_needs_pkg_resources() -> bool:
    """``pkg_resources`` is not importable and mmengine still looks packages up with it (<= 0.10.7)."""
    return importlib.util.find_spec('pkg_resources') is None and _mmengine_release() <= (0, 10, 7)


def mmengine_0_10() -> bool:
    """mmengine 0.10.x: the release line whose distributed set-up and hooks these fixes were written against."""
    return _mmengine_release()[:2] == (0, 10)


def mmcv_without_compiled_ops() -> bool:
    """mmcv is installed without its compiled extension (``mmcv/_ext*``), as mmcv-lite always is.

    Looks at the files only: importing mmcv here would emit the very warning this guard is about.
    """
    spec = importlib.util.find_spec('mmcv')
    if spec is None or not spec.submodule_search_locations:
        return False
    return not any(glob.glob(osp.join(path, '_ext*')) for path in spec.submodule_search_locations)


# -- 4./5. known noise ----------------------------------------------------------------------------------------
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


def silence_log_noise() -> None:
    """Filter mmengine's ``FileClient`` / ``HardDiskBackend`` lines on every MMLogger, existing and future."""
    from mmengine.logging import MMLogger
    if not getattr(MMLogger.__init__, '__lrfr_patched__', False):
        MMLogger.__init__ = _with_noise_filter(MMLogger.__init__)
    for instance in MMLogger._instance_dict.values():  # loggers created before apply()
        if not any(isinstance(f, KnownNoiseFilter) for f in instance.filters):
            instance.addFilter(KnownNoiseFilter())


def silence_mmcv_ops_warning() -> None:
    """Ignore mmcv's missing-``MultiScaleDeformableAttention`` warning.

    A filter already in place is left where it is: adding it again would move it to the front of
    ``warnings.filters``, reordering the caller's filters.
    """
    for message in NOISE_WARNINGS:
        present = any(action == 'ignore' and regex is not None and regex.pattern == message
                      and category is UserWarning for action, regex, category, *_ in warnings.filters)
        if not present:
            warnings.filterwarnings('ignore', message=message, category=UserWarning)


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
    """Allow-list what mmengine checkpoints contain, keeping ``weights_only`` loading on (torch keeps a set)."""
    torch.serialization.add_safe_globals(checkpoint_safe_globals())


def trust_checkpoints() -> None:
    """Opt in to full (unsafe) unpickling of checkpoints, for files from a source you trust.

    Sets torch's documented ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` for this process (and children). Only needed
    for checkpoints holding objects beyond mmengine's own (e.g. written by other toolboxes).
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


#: mmengine modules that import the package helpers by name, so each keeps its own reference to rebind.
PACKAGE_HELPER_MODULES = ('mmengine.utils.package_utils', 'mmengine.utils', 'mmengine.config.config',
                          'mmengine.hub.hub')


def patch_package_utils() -> None:
    """Rebind mmengine's ``pkg_resources``-based helpers wherever they were imported by name."""
    replacements = dict(is_installed=is_installed, get_installed_path=get_installed_path,
                        package2module=package2module)
    for module_name in PACKAGE_HELPER_MODULES:
        module = importlib.import_module(module_name)
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


# -- the list and its entry point -----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Patch:
    """One fix: applied by :func:`apply` only where ``needed()`` holds; ``fix()`` is idempotent on its own."""

    name: str
    needed: Callable[[], bool]
    fix: Callable[[], None]
    upstream: str


#: Every fix, in the order :func:`apply` tries them (docs/compat.md has the same table).
PATCHES: Tuple[Patch, ...] = (
    Patch('checkpoint_allow_list', torch_loads_weights_only, allow_mmengine_checkpoints,
          'open-mmlab/mmengine#1655 (torch >= 2.6 weights_only; the fix in #1650 is not merged); '
          'mmengine/runner/checkpoint.py load_from_local calls torch.load without weights_only'),
    Patch('package_helpers', mmengine_needs_pkg_resources, patch_package_utils,
          'mmengine/utils/package_utils.py imports pkg_resources; replaced upstream by '
          'open-mmlab/mmengine#1676 after 0.10.7'),
    Patch('cpu_distributed', mmengine_0_10, patch_distributed,
          'mmengine/dist/utils.py _init_dist_pytorch/_init_dist_slurm call torch.cuda.set_device; '
          'mmengine/runner/runner.py wrap_model passes device_ids=[LOCAL_RANK] to DDP'),
    Patch('log_noise', mmengine_0_10, silence_log_noise,
          'mmengine/fileio/file_client.py deprecation lines, reached from mmengine/hooks/checkpoint_hook.py'),
    Patch('mmcv_ops_warning', mmcv_without_compiled_ops, silence_mmcv_ops_warning,
          'mmcv/cnn/bricks/transformer.py warns when mmcv.ops has no compiled MultiScaleDeformableAttention'),
)


def apply() -> Tuple[str, ...]:
    """Apply, once per process, each fix of :data:`PATCHES` whose guard holds; return the names applied so far.

    A fix whose guard does not hold is skipped (and asked again by a later call, which is cheap).
    """
    for patch in PATCHES:
        if patch.name not in _applied and patch.needed():
            patch.fix()
            _applied.append(patch.name)
    return tuple(_applied)


def applied() -> Tuple[str, ...]:
    """Names of the fixes :func:`apply` has applied in this process."""
    return tuple(_applied)


def guards() -> Dict[str, bool]:
    """Each fix's guard on the installed stack (``True``: the trap is there and :func:`apply` fixes it)."""
    return {patch.name: bool(patch.needed()) for patch in PATCHES}
