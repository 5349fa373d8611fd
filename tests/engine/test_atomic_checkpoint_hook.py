"""AtomicCheckpointHook: a save that dies midway leaves the previous checkpoints intact and no partial file."""
import os

import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn

import lrfr.engine.hooks.atomic_checkpoint_hook as atomic
from lrfr.apis.checkpoint import check_checkpoint_file, publish_final_checkpoint
from lrfr.errors import CheckpointError


class _Toy(BaseModel):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.fc(torch.stack(inputs).float())
        return dict(loss=out.pow(2).mean()) if mode == 'loss' else out


def _runner(work_dir, max_iters):
    return Runner(
        model=_Toy(), work_dir=str(work_dir), default_scope='lrfr',
        train_dataloader=dict(dataset=[dict(inputs=torch.ones(2))] * 8, batch_size=2, num_workers=0,
                              sampler=dict(type='InfiniteSampler', shuffle=False),
                              collate_fn=dict(type='pseudo_collate')),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        default_hooks=dict(checkpoint=dict(type='AtomicCheckpointHook', interval=1, by_epoch=False,
                                           max_keep_ckpts=5),
                           logger=dict(type='LoggerHook', interval=100)),
        log_processor=dict(by_epoch=False), randomness=dict(seed=0))


class _DiskFull:
    """A file object that writes half of what it is given, then fails (a crash or a full disk midway)."""

    def __init__(self, f):
        self.f = f

    def write(self, data):
        self.f.write(data[:len(data) // 2])
        self.f.flush()
        raise OSError(28, 'No space left on device')

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def test_atomic_write_replaces_or_leaves_untouched(tmp_path, monkeypatch):
    target = tmp_path / 'sub' / 'x.pth'
    atomic.atomic_write_bytes(b'first', target)
    assert target.read_bytes() == b'first'
    atomic.atomic_write_bytes(b'second', target)
    assert target.read_bytes() == b'second'
    real_fdopen = os.fdopen
    monkeypatch.setattr(atomic.os, 'fdopen', lambda fd, mode: _DiskFull(real_fdopen(fd, mode)))
    with pytest.raises(OSError, match='No space left'):
        atomic.atomic_write_bytes(b'third, longer', target)
    assert target.read_bytes() == b'second'
    assert sorted(p.name for p in target.parent.iterdir()) == ['x.pth']  # no temporary file left


def test_a_crash_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    runner = _runner(tmp_path, max_iters=2)
    runner.train()
    before = (tmp_path / 'iter_2.pth').read_bytes()
    record = (tmp_path / 'last_checkpoint').read_text()
    publish_final_checkpoint(str(tmp_path))
    # The resumed run dies while writing iter_3.pth.
    real_fdopen = os.fdopen
    monkeypatch.setattr(atomic.os, 'fdopen', lambda fd, mode: _DiskFull(real_fdopen(fd, mode)))
    resumed = _runner(tmp_path, max_iters=3)
    resumed._load_from, resumed._resume = str(tmp_path / 'iter_2.pth'), True
    with pytest.raises(OSError, match='No space left'):
        resumed.train()
    # (the Runners' config dumps, <timestamp>.py, aside)
    names = sorted(p.name for p in tmp_path.iterdir() if p.is_file() and not p.name.endswith('.py'))
    assert names == ['final.pth', 'iter_1.pth', 'iter_2.pth', 'last_checkpoint']  # no iter_3, no temporary file
    assert (tmp_path / 'iter_2.pth').read_bytes() == before
    assert (tmp_path / 'last_checkpoint').read_text() == record
    check_checkpoint_file(str(tmp_path / 'final.pth'))
    assert torch.load(tmp_path / 'iter_2.pth', map_location='cpu')['meta']['iter'] == 2


def test_a_truncated_file_is_named(tmp_path):
    path = tmp_path / 'cut.pth'
    torch.save({'a': torch.zeros(100)}, path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(CheckpointError, match=r'checkpoint .*cut.pth is not a readable PyTorch checkpoint'):
        check_checkpoint_file(str(path))
    with pytest.raises(CheckpointError, match=r'checkpoint not found: .*none.pth'):
        check_checkpoint_file(str(tmp_path / 'none.pth'))


def test_refuses_an_mmengine_without_the_wrapped_methods(monkeypatch):
    from mmengine.hooks import CheckpointHook
    monkeypatch.delattr(CheckpointHook, '_save_best_checkpoint')
    with pytest.raises(RuntimeError, match=r"no \['_save_best_checkpoint'\]; use type=\"CheckpointHook\""):
        atomic.AtomicCheckpointHook(interval=1)
