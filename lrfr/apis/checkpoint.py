"""Checkpoints: strict loading (an error that says which file does not fit which model), and the stable
``final.pth`` name under which a finished run publishes its last checkpoint."""
import os
import os.path as osp
import shutil
import zipfile
from typing import Optional

import torch
from mmengine.model import is_model_wrapper
from mmengine.runner.checkpoint import _load_checkpoint

from lrfr.errors import CheckpointError


def check_checkpoint_file(filename: str, what: str = 'checkpoint') -> str:
    """Return ``filename`` if it is a complete PyTorch checkpoint file; raise :class:`CheckpointError` naming it.

    ``torch.save`` writes a zip archive whose central directory comes last, so a file cut short by a crash
    or a partial copy has none: ``zipfile.is_zipfile`` sees that from the end of the file without reading
    the tensors. torch's own message for such a file (``failed finding central directory``) names no file.

    Args:
        filename (str): path of the file.
        what (str): what the file is for, for the message (e.g. ``'--resume checkpoint'``).
    """
    if not osp.isfile(filename):
        raise CheckpointError(f'{what} not found: {filename}')
    if not zipfile.is_zipfile(filename):
        raise CheckpointError(f'{what} {filename} is not a readable PyTorch checkpoint (no zip central '
                              'directory: truncated by an interrupted save or copy?); use another checkpoint')
    return filename


def load_checkpoint_strict(model: torch.nn.Module, filename: str, map_location: str = 'cpu',
                           config_name: Optional[str] = None) -> dict:
    """Load ``filename`` into ``model``, requiring every key and shape to match.

    mmengine only warns about missing or unexpected keys, which at test time silently evaluates a
    half-initialised model. Here any mismatch raises a :class:`CheckpointError` (a ``RuntimeError``) naming
    the file, the config and the first offending keys; so does a local file that is missing or truncated.
    Returns the loaded checkpoint dict (meta included).
    """
    if '://' not in filename:  # URLs are mmengine's to fetch
        check_checkpoint_file(filename)
    checkpoint = _load_checkpoint(filename, map_location=map_location)
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f'{filename} is not a checkpoint: expected a dict, got {type(checkpoint).__name__}')
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
        raise CheckpointError(f'checkpoint {filename} does not match the model{where}: ' + '; '.join(parts) +
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
    # Made under a temporary name and renamed over the old one: a crash leaves the old final.pth or the new
    # one, never none and never half a copy.
    tmp = osp.join(work_dir, f'.{FINAL_CHECKPOINT}.tmp{os.getpid()}')
    if osp.lexists(tmp):
        os.remove(tmp)
    try:
        os.link(source, tmp)
    except OSError:  # file systems without hard links
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)
    return target
