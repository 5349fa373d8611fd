"""Mixed precision without a GradScaler under bf16 (PartClipOptimWrapper(dtype='bfloat16')), with one under fp16
(AmpPartClipOptimWrapper), and what ``--amp`` (enable_amp) builds."""
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from torch import nn

import lrfr.engine  # noqa: F401  (registers the wrappers)
from lrfr.engine.optim_wrappers import AmpPartClipOptimWrapper, PartClipOptimWrapper
from lrfr.errors import ConfigError, LRFRError
from lrfr.registry import OPTIM_WRAPPERS
from lrfr.utils.config_utils import amp_optim_wrapper, enable_amp


class SRFR(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.sr = nn.Linear(4, 4)
        self.backbone = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.sr(x))


def build(model: nn.Module, **cfg) -> PartClipOptimWrapper:
    MessageHub.get_instance('test_amp_optim_wrapper')
    return OPTIM_WRAPPERS.build(dict(optimizer=torch.optim.SGD(model.parameters(), lr=0.1), **cfg))


def test_bf16_autocasts_on_the_models_device_without_a_scaler():
    model = SRFR()
    wrapper = build(model, type='PartClipOptimWrapper', dtype='bfloat16',
                    clip_grad=dict(max_norm=1.0, parts=dict(sr=dict(max_norm=0.5))))
    assert not hasattr(wrapper, 'loss_scaler') and wrapper.autocast_dtype is torch.bfloat16
    with wrapper.optim_context(model):
        assert torch.is_autocast_enabled('cpu') and torch.get_autocast_dtype('cpu') is torch.bfloat16
        out = model(torch.randn(3, 4))
        assert out.dtype is torch.bfloat16  # a Linear under CPU autocast runs in bf16
        loss = out.float().pow(2).sum() * 100
    assert not torch.is_autocast_enabled('cpu')
    before = [p.detach().clone() for p in model.parameters()]
    wrapper.update_params(loss)
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert set(wrapper.last_grad_norms) == {'grad_norm', 'grad_norm_sr'}


def test_fp32_is_the_default_and_fp16_needs_the_scaler():
    model = SRFR()
    wrapper = build(model, type='PartClipOptimWrapper')
    with wrapper.optim_context(model):
        assert not torch.is_autocast_enabled('cpu')
    with pytest.raises(LRFRError, match=r'dtype must be None or bfloat16 .*float16 needs one: '
                                        r'type="AmpPartClipOptimWrapper"'):
        build(model, type='PartClipOptimWrapper', dtype='float16')


def test_fp16_keeps_the_scaler_and_the_part_clipping(monkeypatch):
    # mmengine's AmpOptimWrapper asserts a GPU when built; the combination is checked on its attributes here
    import mmengine.optim.optimizer.amp_optimizer_wrapper as amp
    monkeypatch.setattr(amp, 'is_cuda_available', lambda: True)
    model = SRFR()
    wrapper = build(model, type='AmpPartClipOptimWrapper', dtype='float16', loss_scale='dynamic',
                    clip_grad=dict(max_norm=1.0, parts=dict(sr=dict(max_norm=0.5))))
    assert isinstance(wrapper, AmpPartClipOptimWrapper) and isinstance(wrapper.loss_scaler, torch.amp.GradScaler)
    assert wrapper.cast_dtype is torch.float16 and wrapper.autocast_dtype is None
    assert wrapper.part_clip == {'sr': dict(norm_type=2.0, max_norm=0.5)}


@pytest.mark.parametrize('dtype,kind', [('bfloat16', 'PartClipOptimWrapper'),
                                        ('float16', 'AmpPartClipOptimWrapper')])
def test_amp_switch_keeps_the_clipping(dtype, kind):
    cfg = dict(type='PartClipOptimWrapper', optimizer=dict(type='SGD', lr=0.1),
               clip_grad=dict(max_norm=40.0, parts=dict(sr=dict(max_norm=10.0))))
    out = amp_optim_wrapper(cfg, dtype)
    assert out['type'] == kind and out['dtype'] == dtype
    assert out['clip_grad'] == dict(max_norm=40.0, parts=dict(sr=dict(max_norm=10.0)))
    assert ('loss_scale' in out) == (dtype == 'float16')


def test_amp_switch_refuses_a_wrapper_it_does_not_know(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'is_bf16_supported', lambda: True)
    cfg = Config(dict(optim_wrapper=dict(type='MyWrapper', optimizer=dict(type='SGD', lr=0.1))))
    with pytest.raises(ConfigError, match=r"--amp: optim_wrapper.type='MyWrapper' is none of"):
        enable_amp(cfg)
    with pytest.raises(ValueError, match="dtype must be 'bfloat16' or 'float16', got 'int8'"):
        amp_optim_wrapper(dict(type='OptimWrapper'), 'int8')
