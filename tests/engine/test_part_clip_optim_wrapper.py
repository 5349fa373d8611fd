"""PartClipOptimWrapper: each named part of the model is clipped to its own gradient norm, the rest to the top one."""
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper
from torch import nn

from lrfr.engine.optim_wrappers import PartClipOptimWrapper, split_by_part
from lrfr.errors import LRFRError


class SRFR(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.sr = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
        self.backbone = nn.Linear(3, 2)


def set_grads(model: nn.Module, sr_norm: float, fr_norm: float) -> None:
    """Gradients of known norms: every sr element equal, every backbone element equal."""
    sr_params = list(model.sr.parameters())
    sr_count = sum(p.numel() for p in sr_params)
    for p in sr_params:
        p.grad = torch.full_like(p, sr_norm / sr_count ** 0.5)
    fr_count = sum(p.numel() for p in model.backbone.parameters())
    for p in model.backbone.parameters():
        p.grad = torch.full_like(p, fr_norm / fr_count ** 0.5)


def grad_norm(module: nn.Module) -> float:
    return torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in module.parameters()])).item()


def make(model: nn.Module, **clip_grad) -> PartClipOptimWrapper:
    MessageHub.get_instance('test_part_clip')
    return PartClipOptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1), clip_grad=clip_grad or None)


def test_each_part_keeps_its_own_norm():
    """SR norm 100 is cut to 10 while the FR norm 3 stays 3 (a global clip at 10 would shrink it ~33x)."""
    model = SRFR()
    wrapper = make(model, max_norm=5.0, parts=dict(sr=dict(max_norm=10.0)))
    wrapper.bind_parts(model)
    set_grads(model, sr_norm=100.0, fr_norm=3.0)
    wrapper._clip_grad()
    assert grad_norm(model.sr) == pytest.approx(10.0, rel=1e-4)
    assert grad_norm(model.backbone) == pytest.approx(3.0, rel=1e-5)
    assert wrapper.last_grad_norms['grad_norm_sr'].item() == pytest.approx(100.0, rel=1e-5)
    assert wrapper.last_grad_norms['grad_norm'].item() == pytest.approx(3.0, rel=1e-5)
    assert wrapper.message_hub.get_scalar('train/grad_norm_sr').current() == pytest.approx(100.0, rel=1e-5)

    set_grads(model, sr_norm=1.0, fr_norm=50.0)  # the rest is clipped by the top-level max_norm
    wrapper._clip_grad()
    assert grad_norm(model.sr) == pytest.approx(1.0, rel=1e-5)
    assert grad_norm(model.backbone) == pytest.approx(5.0, rel=1e-4)


def test_without_parts_it_is_mmengines_global_clip():
    ours, theirs = SRFR(), SRFR()
    theirs.load_state_dict(ours.state_dict())
    set_grads(ours, 100.0, 3.0)
    set_grads(theirs, 100.0, 3.0)
    make(ours, max_norm=10.0)._clip_grad()
    OptimWrapper(torch.optim.SGD(theirs.parameters(), lr=0.1), clip_grad=dict(max_norm=10.0))._clip_grad()
    for a, b in zip(ours.parameters(), theirs.parameters()):
        torch.testing.assert_close(a.grad, b.grad)
    assert grad_norm(ours) == pytest.approx(10.0, rel=1e-4)


def test_parts_bind_on_the_first_optim_context():
    """train_step enters optim_context(model) every step: the first entry binds the parts."""
    model = SRFR()
    wrapper = make(model, max_norm=5.0, parts=dict(sr=dict(max_norm=10.0)))
    with wrapper.optim_context(model):
        loss = model.backbone(model.sr(torch.randn(4, 3))).pow(2).sum() * 1e4
    wrapper.update_params(loss)
    assert set(wrapper.last_grad_norms) == {'grad_norm', 'grad_norm_sr'}
    assert wrapper.last_grad_norms['grad_norm_sr'] > 10  # was clipped
    assert all(p.grad is None for p in model.sr.parameters())  # update_params clears them after the step


def test_a_ddp_style_wrapper_is_looked_through(monkeypatch):
    from lrfr.engine.optim_wrappers import part_clip_optim_wrapper as module
    model = SRFR()
    ddp = nn.Module()
    ddp.module = model
    monkeypatch.setattr(module, 'is_model_wrapper', lambda m: m is ddp)
    groups = split_by_part(ddp, list(model.parameters()), ['sr'])
    assert groups['sr'] == list(model.sr.parameters())


def test_split_by_part_keeps_the_optimiser_order_and_nested_names():
    model = SRFR()
    params = list(model.parameters())
    groups = split_by_part(model, params, ['sr.1'])
    assert groups['sr.1'] == list(model.sr[1].parameters())
    assert groups['rest'] == list(model.sr[0].parameters()) + list(model.backbone.parameters())


@pytest.mark.parametrize('clip_grad, match', [
    (dict(max_norm=5.0, parts=dict(head=dict(max_norm=1.0))), "no sub-module 'head' .*children: sr, backbone"),
    (dict(max_norm=5.0, parts=dict(sr=dict())), r"clip_grad.parts\['sr'\] needs a positive max_norm"),
    (dict(max_norm=5.0, parts=dict(rest=dict(max_norm=1.0))), "'rest' names the parameters outside"),
    (dict(norm_type=2.0, parts=dict(sr=dict(max_norm=1.0))), 'needs norm clipping with a top-level max_norm'),
    (dict(type='value', clip_value=1.0, parts=dict(sr=dict(max_norm=1.0))), 'needs norm clipping'),
])
def test_bad_parts_are_one_line_errors(clip_grad, match):
    model = SRFR()
    with pytest.raises(LRFRError, match=match):
        make(model, **clip_grad).bind_parts(model)


def test_unbound_parts_refuse_to_step():
    model = SRFR()
    wrapper = make(model, max_norm=5.0, parts=dict(sr=dict(max_norm=10.0)))
    set_grads(model, 1.0, 1.0)
    with pytest.raises(LRFRError, match='not bound to a model'):
        wrapper._clip_grad()
