"""Checkpoints that are never left half-written: mmengine's ``CheckpointHook`` with atomic local writes.

mmengine 0.10.x writes a checkpoint with ``open(path, 'wb').write(...)`` (``LocalBackend.put``), so a crash, a
full disk or a kill during the write leaves a truncated ``iter_*.pth`` / ``epoch_*.pth`` that ``--resume`` then
fails on. Here each local write goes to a temporary file in the same folder, is flushed to disk (``fsync``) and
renamed over the target with ``os.replace`` (atomic on POSIX and Windows): a reader sees the old file or the new
one, never part of one.
"""
import contextlib
import os
import os.path as osp
import tempfile
from typing import Iterator, Union

from mmengine.fileio.backends.local_backend import LocalBackend
from mmengine.hooks import CheckpointHook

from lrfr.registry import HOOKS


def atomic_write_bytes(data: bytes, path: Union[str, os.PathLike]) -> None:
    """Write ``data`` to ``path`` atomically: temporary file in the same folder, ``fsync``, ``os.replace``.

    The folder is created if needed. On any error the temporary file is removed and ``path`` is untouched.
    """
    path = os.fspath(path)
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(path)}.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def _atomic_put(self: LocalBackend, obj: bytes, filepath: Union[str, os.PathLike]) -> None:
    atomic_write_bytes(obj, filepath)


@contextlib.contextmanager
def atomic_local_writes() -> Iterator[None]:
    """Within the block, mmengine's local file backend writes bytes atomically (:func:`atomic_write_bytes`).

    Patched for the block only, so nothing outside a checkpoint save changes.
    """
    original = LocalBackend.put
    LocalBackend.put = _atomic_put
    try:
        yield
    finally:
        LocalBackend.put = original


#: The CheckpointHook methods that save (mmengine 0.10.x); each is wrapped in :func:`atomic_local_writes`.
SAVING_METHODS = ('_save_checkpoint_with_step', '_save_best_checkpoint')


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` (same arguments) whose local checkpoint files are written atomically.

    Where mmengine saves through other methods than :data:`SAVING_METHODS` (another mmengine version), the
    hook refuses to start rather than silently writing non-atomically.
    """

    def __init__(self, *args, **kwargs) -> None:
        missing = [name for name in SAVING_METHODS if not hasattr(CheckpointHook, name)]
        if missing:
            raise RuntimeError(f'AtomicCheckpointHook: this mmengine CheckpointHook has no {missing}; '
                               'use type="CheckpointHook" in default_hooks.checkpoint or update lrfr')
        super().__init__(*args, **kwargs)

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        with atomic_local_writes():
            super()._save_checkpoint_with_step(runner, step, meta)

    def _save_best_checkpoint(self, runner, metrics) -> None:
        with atomic_local_writes():
            super()._save_best_checkpoint(runner, metrics)


__all__ = ['AtomicCheckpointHook', 'atomic_write_bytes', 'atomic_local_writes']
