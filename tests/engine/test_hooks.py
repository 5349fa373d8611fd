"""ASoftmaxLambdaHook: the SphereFace schedule, every A-Softmax head reached, in a real Runner too."""
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as torch_dist
from mmengine.logging import MessageHub
from mmengine.model import BaseModel, MMDistributedDataParallel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset

import lrfr.engine  # noqa: F401  (registers the hooks)
import lrfr.models  # noqa: F401  (registers the heads)
from lrfr.engine.hooks import ASoftmaxLambdaHook
from lrfr.registry import HOOKS, MODELS


def asoftmax(**kwargs):
    return dict(type='ASoftmaxHead', num_classes=3, in_channels=4, **kwargs)


def fake_runner(model, iteration=0):
    return SimpleNamespace(model=model, iter=iteration, message_hub=MessageHub.get_instance('test_hooks'))


def test_schedule_by_hand():
    hook = HOOKS.build(dict(type='ASoftmaxLambdaHook'))  # SphereFace: 1000, 0.12, 1, 5
    assert hook.lambda_at(0) == 1000.0
    assert hook.lambda_at(10) == pytest.approx(1000.0 / 2.2)
    assert hook.lambda_at(1000) == pytest.approx(1000.0 / 121.0)
    # floor reached where 1000 / (1 + 0.12 i) < 5, i.e. from i = 1659
    assert hook.lambda_at(1658) > 5.0 and hook.lambda_at(1659) == 5.0 and hook.lambda_at(10**6) == 5.0
    custom = ASoftmaxLambdaHook(base=10.0, gamma=1.0, power=2.0, lambda_min=0.0)
    assert custom.lambda_at(3) == pytest.approx(10.0 / 16.0)


def test_sets_every_asoftmax_head_of_a_wrapped_model():
    # CSRI-like: one head per branch, one of them inside a CompositeHead, all behind a wrapper
    inner = nn.ModuleDict(dict(
        syn_head=MODELS.build(asoftmax()),
        nat_head=MODELS.build(dict(type='CompositeHead', heads=[
            asoftmax(), dict(type='CenterLoss', num_classes=3, in_channels=4)])),
        other=MODELS.build(dict(type='SoftmaxHead', num_classes=3, in_channels=4))))
    wrapped = nn.Module()
    wrapped.module = inner
    runner = fake_runner(wrapped, iteration=10)
    HOOKS.build(dict(type='ASoftmaxLambdaHook')).before_train_iter(runner, batch_idx=0)
    assert inner.syn_head.asoftmax_lambda == pytest.approx(1000.0 / 2.2)
    assert inner.nat_head.heads[0].asoftmax_lambda == pytest.approx(1000.0 / 2.2)
    assert not hasattr(inner.other, 'asoftmax_lambda')
    assert runner.message_hub.get_scalar('train/asoftmax_lambda').current() == pytest.approx(1000.0 / 2.2)


def test_with_mmengine_ddp_wrapper(tmp_path):
    # a real single-process gloo group, so the real MMDistributedDataParallel wraps the model
    if torch_dist.is_initialized():
        pytest.skip('a process group is already initialised')
    torch_dist.init_process_group('gloo', init_method=f'file://{tmp_path / "pg"}', rank=0, world_size=1)
    try:
        model = MMDistributedDataParallel(module=nn.Sequential(nn.Linear(4, 4), MODELS.build(asoftmax())))
        HOOKS.build(dict(type='ASoftmaxLambdaHook')).before_train_iter(fake_runner(model, 2000), 0)
        assert model.module[1].asoftmax_lambda == 5.0
    finally:
        torch_dist.destroy_process_group()


def test_model_without_asoftmax_raises():
    runner = fake_runner(MODELS.build(dict(type='SoftmaxHead', num_classes=3, in_channels=4)))
    with pytest.raises(RuntimeError, match='asoftmax_lambda'):
        HOOKS.build(dict(type='ASoftmaxLambdaHook')).before_train_iter(runner, 0)


@pytest.mark.parametrize('cfg, match', [
    (dict(base=0.0), 'base'), (dict(gamma=-0.1), 'gamma'), (dict(power=-1.0), 'power'),
    (dict(lambda_min=-1.0), 'lambda_min'), (dict(base=float('inf')), 'base')])
def test_bad_configs_raise(cfg, match):
    with pytest.raises(ValueError, match=match):
        HOOKS.build(dict(type='ASoftmaxLambdaHook', **cfg))


class _Points(Dataset):
    """Eight labelled 4-D points: enough for a few training iterations."""

    def __len__(self):
        return 8

    def __getitem__(self, idx):
        return dict(inputs=torch.full((4,), float(idx)), labels=idx % 3)


class _ToyRecognizer(BaseModel):
    """Linear embedding + A-Softmax head; records the lambda each loss call saw."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(4, 4)
        self.head = MODELS.build(asoftmax())
        self.seen = []

    def forward(self, inputs, labels=None, mode='tensor'):
        if mode != 'loss':
            return self.embed(inputs)
        self.seen.append(self.head.asoftmax_lambda)
        return self.head.loss(self.embed(inputs), labels)


def test_in_a_real_runner(tmp_path):
    hook_cfg = dict(type='ASoftmaxLambdaHook', base=1000.0, gamma=0.12, power=1.0, lambda_min=5.0)
    runner = Runner(
        model=_ToyRecognizer(),
        work_dir=str(tmp_path),
        train_dataloader=dict(dataset=_Points(), batch_size=4, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=False, max_iters=3),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        custom_hooks=[hook_cfg],
        default_hooks=dict(checkpoint=None, logger=dict(type='LoggerHook', interval=1)),
        default_scope='lrfr',
        experiment_name='test_asoftmax_lambda_hook')
    runner.train()
    hook = HOOKS.build(hook_cfg)
    assert runner.model.seen == [hook.lambda_at(i) for i in range(3)]
    assert runner.message_hub.get_scalar('train/asoftmax_lambda').current() == pytest.approx(hook.lambda_at(2))
