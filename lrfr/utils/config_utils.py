"""Config-level helpers of the tools: find and read a config with its overrides, check that it builds, find a
dataset in it, switch on AMP, linear LR scaling and the speed switches.

The command-line side (argparse options) lives with the tools, in ``tools/_tool_args.py``.
"""
import os.path as osp
import sys
from typing import Dict, Optional, Sequence, Union

import torch
from mmengine.config import Config
from mmengine.logging import print_log

from lrfr.errors import INPUT_ERRORS, ConfigError, ConfigKeyError, DatasetError, one_line

#: Prefix of the configs shipped inside the package, as mmengine writes external bases (``mmpretrain::``).
PACKAGE_PREFIX = 'lrfr::'


def package_config_root() -> str:
    """The folder of the configs shipped with lrfr: ``lrfr/.mim/configs``, where mmengine looks for
    ``lrfr::`` bases (as for mmpretrain's). In a checkout it is a link to the checkout's ``configs/``; in a
    built wheel, a copy (setup.py)."""
    return osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), '.mim', 'configs')


def register_config_package() -> None:
    """Let mmengine resolve ``_base_ = 'lrfr::<folder>/<file>.py'``: it only accepts packages listed in its
    ``MODULE2PACKAGE`` table (``mmengine/config/utils.py``), which names OpenMMLab's own. Idempotent."""
    from mmengine.config import utils as config_utils
    config_utils.MODULE2PACKAGE.setdefault('lrfr', 'lrfr')


def resolve_config_path(path: str) -> str:
    """The file of a config given as a path or as ``lrfr::<folder>/<file>.py`` (a config shipped with lrfr).

    Raises:
        FileNotFoundError: no such file (the message names what was asked and where it was looked for).
    """
    if path.startswith(PACKAGE_PREFIX):
        resolved = osp.join(package_config_root(), path[len(PACKAGE_PREFIX):])
        if not osp.isfile(resolved):
            raise FileNotFoundError(f'config file not found: {path} (no {resolved}; the shipped configs are '
                                    f'listed under {package_config_root()})')
        return resolved
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file not found: {path}')
    return path


def add_config_folder_to_path(path: str) -> None:
    """Let a config's ``custom_imports`` name modules that sit next to it: append the config's folder to
    ``sys.path`` (last, so it shadows nothing) when the file has ``custom_imports``. A plugin then runs as
    ``python tools/train.py my_config.py`` from anywhere, without ``PYTHONPATH`` (docs/plugins.md)."""
    with open(path, encoding='utf-8') as f:
        if 'custom_imports' not in f.read():
            return
    folder = osp.dirname(osp.abspath(path))
    if folder not in sys.path:
        sys.path.append(folder)


def load_config(path: str, cfg_options: Optional[dict] = None, work_dir: Optional[str] = None,
                launcher: str = 'none') -> Config:
    """Read a config (a path or ``lrfr::<folder>/<file>.py``), merge ``--cfg-options``, and fill ``work_dir``
    and ``launcher``.

    ``work_dir`` priority: command line > config > ``./work_dirs/<config name>``. Modules in the config's
    ``custom_imports`` may sit next to it (:func:`add_config_folder_to_path`).

    Raises:
        FileNotFoundError: the config file does not exist.
        ConfigError: the file does not parse, or an override does not fit the config.
    """
    register_config_package()
    path = resolve_config_path(path)
    add_config_folder_to_path(path)
    try:
        cfg = Config.fromfile(path)
    except FileNotFoundError:
        raise
    except (SyntaxError, ImportError, *INPUT_ERRORS) as exc:
        raise ConfigError(f'{path}: {one_line(exc)}') from exc
    if cfg_options:
        try:
            cfg.merge_from_dict(cfg_options)
        except INPUT_ERRORS as exc:
            raise ConfigError(f'--cfg-options do not fit {path}: {one_line(exc)}') from exc
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(path))[0])
    cfg.launcher = launcher
    fill_sampler_length(cfg)
    return cfg


def fill_sampler_length(cfg: Config) -> None:
    """Give an infinite ``MultiBranchSampler`` the run's ``max_iters`` unless the config already did.

    mmengine's Runner asks ``len(train_dataloader)`` when it builds the parameter schedulers, before
    training starts; an endless sampler's length is the run's iterations, which live in ``train_cfg``.
    """
    loader = cfg.get('train_dataloader') or {}
    sampler = loader.get('sampler') or {}
    max_iters = (cfg.get('train_cfg') or {}).get('max_iters')
    if sampler.get('type') == 'MultiBranchSampler' and sampler.get('num_iters') is None and max_iters:
        sampler['num_iters'] = int(max_iters)


#: Dataloaders a run reads, by tool step: what :func:`check_config` builds for ``train`` and ``test``.
LOADERS = dict(train=('train_dataloader', 'val_dataloader'), val=('val_dataloader',), test=('test_dataloader',))


def config_name(cfg: Config) -> str:
    """The config's file name for error messages (``'the config'`` for one built in memory)."""
    return osp.basename(cfg.filename) if cfg.filename else 'the config'


#: DataLoader options that only mean something with worker processes, and the value that switches each off.
WORKER_ONLY_OPTIONS = dict(persistent_workers=False, prefetch_factor=None)


def check_dataloader_options(cfg: Config, loaders: Sequence[str] = LOADERS['train'] + LOADERS['test']) -> None:
    """Refuse worker-only DataLoader options on a loader that loads in the main process.

    torch's ``DataLoader`` rejects ``persistent_workers=True`` or a ``prefetch_factor`` with ``num_workers=0``
    in a message that names neither the config nor the loader (and only when the Runner builds it, after its
    environment dump); the full-size configs set both, so ``--cfg-options train_dataloader.num_workers=0``
    (to debug in one process) meets it first. The message gives the overrides that switch them off.

    Raises:
        ConfigError: a loader of ``loaders`` has ``num_workers=0`` and a worker-only option set, or a
            ``prefetch_factor`` that is not a positive int.
    """
    name = config_name(cfg)
    for key in loaders:
        loader = cfg.get(key)
        if not loader:
            continue
        prefetch = loader.get('prefetch_factor')
        if prefetch is not None and (not isinstance(prefetch, int) or isinstance(prefetch, bool) or prefetch < 1):
            raise ConfigError(f'{name}: {key}.prefetch_factor must be a positive int (batches loaded ahead by '
                              f'each worker) or None, got {prefetch!r}')
        if loader.get('num_workers', 0) > 0:
            continue
        set_options = [option for option, off in WORKER_ONLY_OPTIONS.items() if loader.get(option, off) != off]
        if set_options:
            given = ', '.join(f'{option}={loader[option]!r}' for option in set_options)
            fix = ' '.join(f'{key}.{option}={WORKER_ONLY_OPTIONS[option]}' for option in set_options)
            raise ConfigError(f'{name}: {key}.num_workers=0 (loading in the main process) cannot take {given}; '
                              f'add --cfg-options {fix}, or set {key}.num_workers > 0')


def check_config(cfg: Config, loaders: Sequence[str] = ()) -> torch.nn.Module:
    """Build the config's model and the datasets of ``loaders`` once, so that a wrong key, a missing data
    folder or an unreadable protocol file is reported before mmengine's Runner logs its environment and
    config (a few hundred lines), naming the config key at fault.

    The datasets are fully loaded (their file lists read; a demo tree is built here on first use, with a log
    line naming its folder) and discarded; the Runner builds its own. Model weights are not initialised.
    Returns the model built (for a tool that checks a checkpoint against it before the run).

    Args:
        cfg (Config): a loaded config (:func:`load_config`).
        loaders (Sequence[str]): dataloader keys whose ``dataset`` to build, e.g. ``('test_dataloader',)``;
            missing or ``None`` entries are skipped.

    Raises:
        ConfigError: the model does not build (unknown type, unexpected argument, bad value), or a loader's
            worker options contradict its ``num_workers`` (:func:`check_dataloader_options`).
        DatasetError: a dataset does not build or load (missing folder, wrong layout, bad protocol file).
    """
    from lrfr.registry import DATASETS, MODELS
    name = config_name(cfg)
    check_dataloader_options(cfg, loaders)
    if cfg.get('model') is None:
        raise ConfigError(f'{name}: no `model` entry')
    try:
        model = MODELS.build(cfg.model)
    except INPUT_ERRORS as exc:
        raise ConfigError(f'{name}: model: {one_line(exc)}') from exc
    for key in loaders:
        loader = cfg.get(key)
        if not loader or loader.get('dataset') is None:
            continue
        try:
            dataset = DATASETS.build(loader['dataset'])
            if hasattr(dataset, 'full_init'):
                dataset.full_init()
        except INPUT_ERRORS as exc:
            raise DatasetError(f'{name}: {key}.dataset: {one_line(exc)}') from exc
    return model


def dataset_config_from(source: str, key: str = 'train_dataloader.dataset', ds_args: Optional[dict] = None,
                        cfg_options: Optional[dict] = None) -> dict:
    """A dataset config for the dataset tools: the node at dotted ``key`` of a config file, or ``type=source``.

    Args:
        source (str): a config file (``.py``) or a registered dataset type, e.g. ``'FaceFolderDataset'``.
        key (str): dotted path of the dataset in the config; list items by index
            (``train_dataloader.dataset.datasets.0``).
        ds_args (dict, optional): arguments that override the config's, e.g. ``{'data_root': ...}``.
        cfg_options (dict, optional): ``--cfg-options`` merged into the config first.
    """
    if source.endswith('.py') or source.startswith(PACKAGE_PREFIX):
        node = load_config(source, cfg_options)
        for part in key.split('.'):
            try:
                node = node[int(part)] if isinstance(node, (list, tuple)) else node[part]
            except (KeyError, IndexError, ValueError, TypeError):
                raise ConfigKeyError(f'{source}: no dataset at {key!r} (failed at {part!r})') from None
        cfg = dict(node)
    else:
        cfg = dict(type=source)
    cfg.update(ds_args or {})
    return cfg


#: optimiser wrapper types ``enable_amp`` switches (mmengine's plain one, lrfr's per-part clipping), and the AMP ones
AMP_SWITCHABLE = ('OptimWrapper', 'PartClipOptimWrapper')
AMP_WRAPPERS = ('AmpOptimWrapper', 'AmpPartClipOptimWrapper')


def amp_optim_wrapper(wrapper: dict, dtype: str) -> dict:
    """``wrapper`` (an ``optim_wrapper`` config of a type in :data:`AMP_SWITCHABLE`) switched to mixed
    precision in place: ``'bfloat16'`` -> ``PartClipOptimWrapper(dtype='bfloat16')`` (autocast, no
    ``GradScaler``), ``'float16'`` -> ``AmpPartClipOptimWrapper`` with a dynamic loss scale; ``clip_grad``
    (with its ``parts``) is kept."""
    kind = wrapper.get('type', 'OptimWrapper')
    if kind not in AMP_SWITCHABLE:
        raise ConfigError(f'--amp: optim_wrapper.type={kind!r} is none of {AMP_SWITCHABLE}; '
                          'set mixed precision in the config itself')
    if dtype == 'bfloat16':
        wrapper['type'], wrapper['dtype'] = 'PartClipOptimWrapper', 'bfloat16'
    elif dtype == 'float16':
        wrapper['type'], wrapper['dtype'], wrapper['loss_scale'] = 'AmpPartClipOptimWrapper', 'float16', 'dynamic'
    else:
        raise ValueError(f"amp_optim_wrapper: dtype must be 'bfloat16' or 'float16', got {dtype!r}")
    return wrapper


def enable_amp(cfg: Config) -> None:
    """Turn on mixed precision: bf16 autocast where the GPU supports it, else fp16; off (fp32) on CPU.

    bf16 runs as ``PartClipOptimWrapper(dtype='bfloat16')``: autocast only, no ``GradScaler`` (mmengine's
    ``AmpOptimWrapper`` keeps one under bf16 too, whose unscale/inf check/update sync every step); fp16 as
    ``AmpPartClipOptimWrapper`` with a dynamic loss scale. Both keep the config's ``clip_grad`` (and its
    ``parts``). mmengine's ``AmpOptimWrapper`` refuses the CPU, and bf16 on CPUs without AVX512-BF16 is many
    times slower than fp32, so on CPU the flag is reported and ignored.
    """
    if not torch.cuda.is_available():
        print_log('--amp: no CUDA device, mixed precision is OFF; training runs in fp32 on the CPU.',
                  logger='current')
        return
    wrapper = cfg.optim_wrapper
    kind = wrapper.get('type', 'OptimWrapper')
    if kind in AMP_WRAPPERS or wrapper.get('dtype') is not None:
        print_log('--amp: AMP is already enabled in the config.', logger='current')
        return
    amp_optim_wrapper(wrapper, 'bfloat16' if torch.cuda.is_bf16_supported() else 'float16')
    print_log(f'--amp: autocast with {wrapper.dtype} on the GPU ({wrapper.type}).', logger='current')


def enable_auto_scale_lr(cfg: Config) -> int:
    """Turn on mmengine's linear learning-rate scaling (``--auto-scale-lr``) and return the base batch size.

    The Runner then multiplies every parameter group's ``lr`` by ``world_size * train_dataloader.batch_size /
    base_batch_size`` (Goyal et al. 2017, "Accurate, Large Minibatch SGD"; ``Runner.scale_lr`` in mmengine
    0.10.7) before it builds the schedulers. A CSRI loader's ``batch_size`` is already the sum of its branches'
    shares (``MultiBranchSampler`` takes the same value), so that product is the real world batch. Every config
    states the total batch its ``lr`` was set for as ``auto_scale_lr = dict(base_batch_size=N)`` in its dataset
    base.

    Raises:
        ConfigKeyError: the config has no ``auto_scale_lr.base_batch_size``.
        ConfigError: it is not a positive int.
    """
    name = config_name(cfg)
    scale = cfg.get('auto_scale_lr') or {}
    base = scale.get('base_batch_size')
    if base is None:
        raise ConfigKeyError(f'{name}: --auto-scale-lr needs auto_scale_lr = dict(base_batch_size=<the total '
                             'batch its lr was set for>) in the config, and it has none')
    if not isinstance(base, int) or isinstance(base, bool) or base < 1:
        raise ConfigError(f'{name}: auto_scale_lr.base_batch_size must be a positive int, got {base!r}')
    cfg.auto_scale_lr = dict(scale, enable=True)
    return base


def scaled_lr(cfg: Config, world_size: int) -> Dict[str, Optional[Union[int, float]]]:
    """What ``--auto-scale-lr`` makes of the config's learning rate on ``world_size`` processes: the world
    batch (``world_size * train_dataloader.batch_size``), the base batch, the ratio and the optimiser's
    ``lr`` before and after (mmengine's rule, :func:`enable_auto_scale_lr`), for the tool to print.
    ``base_lr`` and ``lr`` are ``None`` for an ``optim_wrapper`` without one ``optimizer.lr`` (several
    optimisers): mmengine scales each of them by the same ratio.

    Raises:
        ConfigKeyError: the config lacks ``train_dataloader.batch_size`` or ``auto_scale_lr.base_batch_size``.
    """
    name = config_name(cfg)
    try:
        batch = int(cfg.train_dataloader.batch_size)
        base = int(cfg.auto_scale_lr.base_batch_size)
    except (AttributeError, KeyError, TypeError) as exc:
        raise ConfigKeyError(f'{name}: --auto-scale-lr needs train_dataloader.batch_size and '
                             f'auto_scale_lr.base_batch_size ({one_line(exc)})') from exc
    base_lr = ((cfg.get('optim_wrapper') or {}).get('optimizer') or {}).get('lr')
    world_batch = world_size * batch
    ratio = world_batch / base
    return dict(world_batch=world_batch, base_batch=base, ratio=ratio, base_lr=base_lr,
                lr=None if base_lr is None else base_lr * ratio)


def add_speed_hook(cfg: Config, channels_last: bool = False,
                   compile: Union[None, bool, str, dict] = None) -> None:
    """Add (or update) :class:`lrfr.engine.hooks.TrainSpeedHook` in ``custom_hooks`` for ``--channels-last`` /
    ``--compile [BACKEND]``; nothing when both are off. ``compile``: ``None``/``False`` (off), ``True``, a
    backend name (``'inductor'``, ``'eager'``: ``dict(backend=name)``) or a dict of ``torch.compile``
    arguments. A hook the config already has keeps its other settings."""
    if not channels_last and not compile:
        return
    if isinstance(compile, str):
        compile = dict(backend=compile)
    hooks = list(cfg.get('custom_hooks') or [])
    hook = next((h for h in hooks if h.get('type') in ('TrainSpeedHook', 'lrfr.TrainSpeedHook')), None)
    if hook is None:
        hook = dict(type='TrainSpeedHook')
        hooks.append(hook)
    if channels_last:
        hook['channels_last'] = True
    if compile:
        hook['compile'] = compile
    cfg.custom_hooks = hooks
