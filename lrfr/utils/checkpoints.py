"""Stable names for a run's checkpoint, so a later training stage can say where it starts from."""
import os
import os.path as osp
import shutil
from typing import Optional

#: Name under which a finished run's last checkpoint is published in its work dir.
FINAL_CHECKPOINT = 'final.pth'


def last_checkpoint(work_dir: str) -> Optional[str]:
    """Path of the newest checkpoint mmengine recorded in ``work_dir/last_checkpoint``, if any."""
    record = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(record):
        return None
    with open(record, encoding='utf-8') as f:
        path = f.read().strip()
    return path if osp.isfile(path) else None


def publish_final_checkpoint(work_dir: str) -> Optional[str]:
    """Link (or copy) the last checkpoint to ``work_dir/final.pth`` and return that path.

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
