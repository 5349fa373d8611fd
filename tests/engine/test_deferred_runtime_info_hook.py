"""DeferredRuntimeInfoHook: the message hub ends with exactly mmengine's RuntimeInfoHook histories, fetched only at
logging iterations, checkpoints and the end; DeferredScalars by hand."""
import math

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset

import lrfr.engine  # noqa: F401  (registers the hooks and wrappers)
from lrfr.engine.hooks import DeferredScalars, deferred_scalars


# -- DeferredScalars by hand --------------------------------------------------------------------------------------
def test_values_arrive_in_order_as_item_would_give_them():
    hub = MessageHub(name='deferred_by_hand')
    buffer = DeferredScalars(hub, deferred=True)
    values = [torch.tensor(1.1, dtype=torch.float16), torch.tensor(0.3, dtype=torch.bfloat16),
              torch.tensor(1 / 3), torch.tensor(1 / 3, dtype=torch.float64), torch.tensor([7])]
    for v in values:
        buffer.put('train/x', v)
    buffer.put('train/lr', 0.5)  # no pending value of its own: straight through
    assert hub.get_scalar('train/lr').current() == 0.5 and 'train/x' not in hub.log_scalars
    buffer.put('train/x', 2.5)  # behind pending tensors of its key: waits, keeps its place
    assert 'train/x' not in hub.log_scalars
    buffer.flush()
    data, counts = hub.get_scalar('train/x').data
    assert list(data) == [v.item() for v in values] + [2.5]  # bitwise: fp16/bf16/fp32 -> float exactly
    assert list(counts) == [1] * 6 and len(buffer) == 0


def test_one_element_only_and_detached():
    buffer = DeferredScalars(MessageHub(name='deferred_shape'), deferred=True)
    with pytest.raises(ValueError, match=r"DeferredScalars: 'train/v' must hold one element, got shape \(2,\)"):
        buffer.put('train/v', torch.ones(2))
    w = torch.ones((), requires_grad=True)
    buffer.put('train/loss', w * 2)
    assert buffer.pending[0][1].grad_fn is None


def test_flush_fetches_once_per_device_and_kind(monkeypatch):
    buffer = DeferredScalars(MessageHub(name='deferred_once'), deferred=True)
    for i in range(50):
        buffer.put('train/loss', torch.tensor(float(i)))
        buffer.put('train/grad_norm', torch.tensor(float(-i)))
    calls = []
    original = torch.Tensor.tolist
    monkeypatch.setattr(torch.Tensor, 'tolist', lambda self: calls.append(self.numel()) or original(self))
    buffer.flush()
    assert calls == [100]


# -- in a Runner, against mmengine's hook ----------------------------------------------------------------------
class Regression(Dataset):
    def __init__(self, n: int = 32) -> None:
        gen = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 4, generator=gen)
        self.y = self.x @ torch.arange(1.0, 5.0)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return dict(inputs=self.x[i], target=self.y[i])


class TwoLosses(BaseModel):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 1)

    def forward(self, inputs, target, mode='tensor'):
        pred = self.fc(inputs).squeeze(1)
        if mode != 'loss':
            return pred
        return dict(loss_mse=(pred - target).pow(2).mean(), loss_reg=1e-3 * self.fc.weight.pow(2).sum(),
                    acc=(pred - target).abs().lt(1).float().mean())


class HubAtLogging(Hook):
    """How many losses the message hub holds at each logging iteration (before LoggerHook, BELOW_NORMAL, reads)."""

    priority = 'NORMAL'

    def __init__(self) -> None:
        self.seen = {}

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if (runner.iter + 1) % 5 == 0:
            self.seen[runner.iter + 1] = len(runner.message_hub.get_scalar('train/loss').data[0])


def train(tmp_path, runtime_info: str, wrapper: str, name: str, iters: int = 23, ckpt_interval: int = 7):
    torch.manual_seed(0)
    watch = HubAtLogging()
    runner = Runner(
        model=TwoLosses(), work_dir=str(tmp_path / name), experiment_name=name,
        train_dataloader=dict(dataset=Regression(), batch_size=4, num_workers=0,
                              collate_fn=dict(type='default_collate'),
                              sampler=dict(type='InfiniteSampler', shuffle=True)),
        optim_wrapper=dict(type=wrapper, optimizer=dict(type='SGD', lr=0.05),
                           clip_grad=dict(max_norm=1.0)),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=iters),
        default_hooks=dict(runtime_info=dict(type=runtime_info),
                           logger=dict(type='LoggerHook', interval=5),
                           checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=ckpt_interval)),
        custom_hooks=[watch], randomness=dict(seed=0), default_scope='lrfr')
    runner.train()
    return runner, watch


def test_histories_equal_mmengines_and_are_complete_when_logged_and_saved(tmp_path):
    ours, watch = train(tmp_path, 'DeferredRuntimeInfoHook', 'PartClipOptimWrapper', 'deferred')
    # the reference: mmengine's hook and wrapper, which push every value at once with .item() / float()
    theirs, _ = train(tmp_path, 'RuntimeInfoHook', 'OptimWrapper', 'mmengine')
    # lrfr's wrapper under mmengine's hook: nothing would flush, so its norms go to the message hub at once
    mixed, mixed_watch = train(tmp_path, 'RuntimeInfoHook', 'PartClipOptimWrapper', 'mixed')
    assert mixed.message_hub.get_scalar('train/grad_norm').data[0].tolist() == \
        theirs.message_hub.get_scalar('train/grad_norm').data[0].tolist()
    assert mixed_watch.seen == watch.seen and not len(deferred_scalars(mixed.message_hub))
    keys = {'train/loss', 'train/loss_mse', 'train/loss_reg', 'train/acc', 'train/grad_norm', 'train/lr'}
    assert keys <= set(ours.message_hub.log_scalars)
    for key in keys:
        a, b = ours.message_hub.get_scalar(key).data, theirs.message_hub.get_scalar(key).data
        assert len(a[0]) == 23 and a[0].tolist() == b[0].tolist() and a[1].tolist() == b[1].tolist(), key
    assert not len(deferred_scalars(ours.message_hub))
    assert watch.seen == {5: 5, 10: 10, 15: 15, 20: 20}  # the logging iterations see every value so far
    # the checkpoint at iteration 14 (not a logging one) holds the 14 losses of the run so far
    saved = torch.load(tmp_path / 'deferred' / 'iter_14.pth', map_location='cpu', weights_only=False)
    history = saved['message_hub']['log_scalars']['train/loss']
    assert len(history.data[0]) == 14
    assert history.data[0].tolist() == ours.message_hub.get_scalar('train/loss').data[0][:14].tolist()
    assert all(math.isfinite(v) for v in history.data[0])


def test_a_run_that_never_flushes_is_bounded(monkeypatch):
    import lrfr.engine.hooks.runtime_info_hook as module
    monkeypatch.setattr(module, 'MAX_PENDING', 3)
    hub = MessageHub(name='deferred_bounded')
    buffer = DeferredScalars(hub, deferred=True)
    for i in range(4):
        buffer.put('train/loss', torch.tensor(float(i)))
    assert len(buffer) == 0 and list(hub.get_scalar('train/loss').data[0]) == [0.0, 1.0, 2.0, 3.0]


def test_outside_a_deferring_run_values_go_straight_in():
    hub = MessageHub(name='deferred_off')
    buffer = DeferredScalars(hub)
    buffer.put('train/grad_norm', torch.tensor(2.5))
    assert len(buffer) == 0 and hub.get_scalar('train/grad_norm').current() == 2.5
