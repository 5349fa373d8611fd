"""Config-level helpers of the tools: read a config with its overrides, find a dataset in it, switch on AMP.

The command-line side (argparse options) lives with the tools, in ``tools/_tool_args.py``.
"""
import os.path as osp
from typing import Optional

import torch
from mmengine.config import Config
from mmengine.logging import print_log


def load_config(path: str, cfg_options: Optional[dict] = None, work_dir: Optional[str] = None,
                launcher: str = 'none') -> Config:
    """Read a config, merge ``--cfg-options``, and fill ``work_dir`` and ``launcher``.

    ``work_dir`` priority: command line > config > ``./work_dirs/<config name>``.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file not found: {path}')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
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


def dataset_config_from(source: str, key: str = 'train_dataloader.dataset', ds_args: Optional[dict] = None) -> dict:
    """A dataset config for the dataset tools: the node at dotted ``key`` of a config file, or ``type=source``.

    Args:
        source (str): a config file (``.py``) or a registered dataset type, e.g. ``'FaceFolderDataset'``.
        key (str): dotted path of the dataset in the config; list items by index
            (``train_dataloader.dataset.datasets.0``).
        ds_args (dict, optional): arguments that override the config's, e.g. ``{'data_root': ...}``.
    """
    if source.endswith('.py'):
        node = load_config(source)
        for part in key.split('.'):
            try:
                node = node[int(part)] if isinstance(node, (list, tuple)) else node[part]
            except (KeyError, IndexError, ValueError, TypeError):
                raise KeyError(f'{source}: no dataset at {key!r} (failed at {part!r})') from None
        cfg = dict(node)
    else:
        cfg = dict(type=source)
    cfg.update(ds_args or {})
    return cfg


def enable_amp(cfg: Config) -> None:
    """Turn on mixed precision: bf16 autocast where the GPU supports it, else fp16; off (fp32) on CPU.

    mmengine's ``AmpOptimWrapper`` refuses the CPU, and bf16 on CPUs without AVX512-BF16 is many times
    slower than fp32, so on CPU the flag is reported and ignored.
    """
    if not torch.cuda.is_available():
        print_log('--amp: no CUDA device, mixed precision is OFF; training runs in fp32 on the CPU.',
                  logger='current')
        return
    wrapper = cfg.optim_wrapper
    if wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
        print_log('--amp: AMP is already enabled in the config.', logger='current')
        return
    wrapper.type = 'AmpOptimWrapper'
    wrapper.dtype = 'bfloat16' if torch.cuda.is_bf16_supported() else 'float16'
    if wrapper.dtype == 'float16':
        wrapper.loss_scale = 'dynamic'
    print_log(f'--amp: autocast with {wrapper.dtype} on the GPU.', logger='current')
