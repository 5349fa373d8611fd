"""Checkpoints: strict loading (an error that says which file does not fit which model), and the stable
``final.pth`` name under which a finished run publishes its last checkpoint."""
import os
import os.path as osp
import shutil
from typing import Optional

import torch
from mmengine.model import is_model_wrapper
from mmengine.runner.checkpoint import _load_checkpoint


def load_checkpoint_strict(model: torch.nn.Module, filename: str, map_location: str = 'cpu',
                           config_name: Optional[str] = None) -> dict:
    """Load ``filename`` into ``model``, requiring every key and shape to match.

    mmengine only warns about missing or unexpected keys, which at test time silently evaluates a
    half-initialised model. Here any mismatch raises a ``RuntimeError`` naming the file, the config and the
    first offending keys. Returns the loaded checkpoint dict (meta included).
    """
    checkpoint = _load_checkpoint(filename, map_location=map_location)
    if not isinstance(checkpoint, dict):
        raise RuntimeError(f'{filename} is not a checkpoint: expected a dict, got {type(checkpoint).__name__}')
    state = checkpoint.get('state_dict', checkpoint)
    if is_model_wrapper(model):
        model = model.module
    own = model.state_dict()
    state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong_shape = sorted(k for k in set(own) & set(state)
                         if hasattr(state[k], 'shape') and tuple(state[k].shape) != tuple(own[k].shape))
    if missing or unexpected or wrong_shape:
        where = f' for config {config_name}' if config_name else ''
        parts = []
        if missing:
            parts.append(f'{len(missing)} model keys missing from the file (e.g. {missing[:3]})')
        if unexpected:
            parts.append(f'{len(unexpected)} file keys the model does not have (e.g. {unexpected[:3]})')
        if wrong_shape:
            k = wrong_shape[0]
            parts.append(f'{len(wrong_shape)} shape mismatches (e.g. {k}: file {tuple(state[k].shape)} '
                         f'vs model {tuple(own[k].shape)})')
        raise RuntimeError(f'checkpoint {filename} does not match the model{where}: ' + '; '.join(parts) +
                           '. Was it trained with another config?')
    model.load_state_dict(state, strict=True)
    return checkpoint


#: Name under which a finished run's last checkpoint is published in its work dir.
FINAL_CHECKPOINT = 'final.pth'


def last_checkpoint(work_dir: str) -> Optional[str]:
    """Path of the newest checkpoint mmengine recorded in ``work_dir/last_checkpoint``, if it still exists."""
    record = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(record):
        return None
    with open(record, encoding='utf-8') as f:
        path = f.read().strip()
    return path if osp.isfile(path) else None


def publish_final_checkpoint(work_dir: str) -> Optional[str]:
    """Link (or copy) the last checkpoint to ``work_dir/final.pth`` and return that path (None: no checkpoint).

    Two-step configs (paper §3: pre-train, then train both branches) point ``load_from`` at
    ``work_dirs/<stage-1 config>/final.pth``, which stays the same whatever the schedule length.
    """
    source = last_checkpoint(work_dir)
    if source is None:
        return None
    target = osp.join(work_dir, FINAL_CHECKPOINT)
    if osp.lexists(target):
        os.remove(target)
    try:
        os.link(source, target)
    except OSError:  # file systems without hard links
        shutil.copyfile(source, target)
    return target
