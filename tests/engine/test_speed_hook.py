"""TrainSpeedHook: channels-last weights and batches, in-place compiling of the network parts (the ``eager``
backend, so no C compiler runs), and its errors."""
import copy
import os.path as osp
import socket
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
from mmengine.config import Config
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from lrfr.engine.hooks import TrainSpeedHook
from lrfr.errors import ConfigError
from lrfr.registry import HOOKS, MODELS
from lrfr.utils import register_all_modules
from lrfr.utils.config_utils import add_speed_hook

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CSRI_CONFIG = osp.join(REPO, 'configs', 'demo', 'csri_vdsr-centreface_1xb32_demo-pairs-native.py')
FR_CONFIG = osp.join(REPO, 'configs', 'demo', 'centreface_1xb32_demo-hr.py')

register_all_modules()


def _model(path):
    return MODELS.build(Config.fromfile(path).model)


def _batch(n=2):
    generator = torch.Generator().manual_seed(0)
    return dict(inputs=[torch.randint(0, 256, (3, 56, 48), dtype=torch.uint8, generator=generator)
                        for _ in range(n)])


def _conv_weights(model):
    return {name: p for name, p in model.named_parameters() if p.dim() == 4 and p.shape[1] > 1 and p.shape[2] > 1}


def test_channels_last_converts_the_weights_and_the_batches():
    model = _model(CSRI_CONFIG)
    weights = _conv_weights(model)
    assert weights and not any(p.is_contiguous(memory_format=torch.channels_last) for p in weights.values())
    before = model(model.data_preprocessor(_batch())['inputs'], mode='tensor')
    hook = TrainSpeedHook(channels_last=True)
    hook.before_train(SimpleNamespace(model=model))
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in _conv_weights(model).values())
    assert all(not p.is_contiguous() for p in _conv_weights(model).values())  # NHWC strides, not NCHW
    inputs = model.data_preprocessor(_batch())['inputs']
    assert model.data_preprocessor.channels_last is True
    assert inputs.is_contiguous(memory_format=torch.channels_last) and not inputs.is_contiguous()
    assert torch.allclose(model(inputs, mode='tensor'), before, atol=1e-4)
    assert hook.compiled == ()  # compiling was not asked for


def test_channels_last_also_before_val_and_test():
    for stage in ('before_val', 'before_test'):
        model = _model(FR_CONFIG)
        getattr(TrainSpeedHook(channels_last=True, compile=dict(backend='eager')), stage)(
            SimpleNamespace(model=model))
        assert all(p.is_contiguous(memory_format=torch.channels_last) for p in _conv_weights(model).values())
        assert model.data_preprocessor.channels_last is True
        assert model.backbone._compiled_call_impl is None  # compiled only for training


def test_channels_last_under_ddp_wraps_again_so_the_first_step_is_right():
    """Converted under an existing DDP wrapper, the first step's gradients are wrong (DDP's buckets keep the
    old strides); the hook wraps the module again through the Runner's ``wrap_model``."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        net = nn.Sequential(nn.Conv2d(8, 16, 3), nn.ReLU(), nn.Conv2d(16, 16, 3))
        plain = copy.deepcopy(net)
        first = DistributedDataParallel(net)
        runner = SimpleNamespace(model=first, cfg=Config(),
                                 wrap_model=lambda wrapper_cfg, module: DistributedDataParallel(module))
        TrainSpeedHook(channels_last=True).before_train(runner)
        x = torch.randn(2, 8, 12, 12)
        runner.model(x.contiguous(memory_format=torch.channels_last)).sum().backward()
        plain(x).sum().backward()
        for p, q in zip(net.parameters(), plain.parameters()):
            assert torch.allclose(p.grad, q.grad, atol=1e-3)
        assert isinstance(runner.model, DistributedDataParallel) and runner.model is not first
        assert runner.model.module is net
        second = runner.model
        TrainSpeedHook(channels_last=True).before_val(runner)  # already channels-last: no new wrapper
        assert runner.model is second
    finally:
        dist.destroy_process_group()


def test_compile_wraps_the_parts_in_place_and_keeps_the_keys():
    model = _model(CSRI_CONFIG)
    keys = list(model.state_dict())
    eager = copy.deepcopy(model)
    inputs = model.data_preprocessor(_batch())['inputs']
    hook = HOOKS.build(dict(type='TrainSpeedHook', compile=dict(backend='eager')))
    hook.before_train(SimpleNamespace(model=model))
    assert hook.compiled == ('sr', 'backbone')  # the demo CSRI model has no neck
    assert model.sr._compiled_call_impl is not None and model.backbone._compiled_call_impl is not None
    assert eager.backbone._compiled_call_impl is None
    assert list(model.state_dict()) == keys  # no _orig_mod. prefix: checkpoints load either way
    assert torch.allclose(model(inputs, mode='tensor'), eager(inputs, mode='tensor'), atol=1e-5)
    hook.before_train(SimpleNamespace(model=model))  # a second training start compiles nothing again
    assert hook.compiled == ('sr', 'backbone')


def test_missing_parts_are_skipped_on_an_fr_only_model():
    model = _model(FR_CONFIG)
    assert not hasattr(model, 'sr')
    hook = TrainSpeedHook(compile=dict(backend='eager'), parts=('sr', 'backbone'))
    hook.before_train(SimpleNamespace(model=model))
    assert hook.compiled == ('backbone',)


def test_unknown_part_and_bad_compile_arguments_are_errors():
    with pytest.raises(ConfigError, match=r"TrainSpeedHook: unknown part\(s\) \['head'\] in parts=\['sr', 'head'\]; "
                                          r"the parts are \['sr', 'backbone', 'neck'\]"):
        TrainSpeedHook(compile=True, parts=('sr', 'head'))
    with pytest.raises(ConfigError, match=r"torch.compile takes no \['modes'\]"):
        TrainSpeedHook(compile=dict(modes='max-autotune'))
    with pytest.raises(ConfigError, match=r'compile must be a bool or a dict'):
        TrainSpeedHook(compile='inductor')


def test_add_speed_hook_fills_custom_hooks_only_when_asked():
    cfg = Config(dict(custom_hooks=[dict(type='EMAHook')]))
    add_speed_hook(cfg)
    assert cfg.custom_hooks == [dict(type='EMAHook')]
    add_speed_hook(cfg, channels_last=True)
    add_speed_hook(cfg, compile='eager')  # --compile eager: updates the same hook
    assert cfg.custom_hooks == [dict(type='EMAHook'),
                                dict(type='TrainSpeedHook', channels_last=True, compile=dict(backend='eager'))]
    add_speed_hook(cfg, compile=dict(mode='max-autotune'))
    assert cfg.custom_hooks[1].compile == dict(mode='max-autotune')
    plain = Config(dict())
    add_speed_hook(plain, channels_last=False, compile=None)
    assert 'custom_hooks' not in plain
