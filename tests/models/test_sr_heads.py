"""SR heads (SRCNN, VDSR, DRRN): parameter counts against hand formulas and the papers' figures,
output sizes, the global residual, weight sharing in DRRN, gradients, bad configs."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import lrfr.models  # noqa: F401  (registers the heads)
from lrfr.models.sr_heads import DRRN, SRCNN, VDSR, PreUpsampleSR
from lrfr.registry import MODELS


def num_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def num_conv_weights(module: nn.Module) -> int:
    """Convolution weights only (no biases, no BN): what SR papers report."""
    return sum(m.weight.numel() for m in module.modules() if isinstance(m, nn.Conv2d))


def conv(cin: int, cout: int, k: int, bias: bool = True) -> int:
    return cin * cout * k * k + (cout if bias else 0)


# Tiny variants for the CPU gradient / overfit tests.
TINY = {
    'SRCNN': dict(type='SRCNN', mid_channels=(8, 4), kernel_sizes=(5, 1, 3), output_size=(12, 10)),
    'VDSR': dict(type='VDSR', mid_channels=8, num_layers=4, output_size=(12, 10)),
    'DRRN': dict(type='DRRN', mid_channels=8, num_blocks=2, num_units=3, output_size=(12, 10)),
}


# -- parameter counts --------------------------------------------------------------
@pytest.mark.parametrize('in_ch', [1, 3])
@pytest.mark.parametrize('kernels', [(9, 1, 5), (9, 5, 5)])
def test_srcnn_param_count(in_ch, kernels):
    k1, k2, k3 = kernels
    model = MODELS.build(dict(type='SRCNN', in_channels=in_ch, kernel_sizes=kernels))
    assert num_params(model) == conv(in_ch, 64, k1) + conv(64, 32, k2) + conv(32, in_ch, k3)


def test_srcnn_matches_paper_weight_counts():
    # Dong et al. 2014, sec. 4.3 (Y channel): 8,032 weights for 9-1-5, 57,184 for 9-5-5.
    assert num_conv_weights(SRCNN(in_channels=1)) == 8032
    assert num_conv_weights(SRCNN(in_channels=1, kernel_sizes=(9, 5, 5))) == 57184


@pytest.mark.parametrize('in_ch, expected', [(3, 668227), (1, 665921)])
def test_vdsr_param_count(in_ch, expected):
    model = MODELS.build(dict(type='VDSR', in_channels=in_ch))
    formula = conv(in_ch, 64, 3) + 18 * conv(64, 64, 3) + conv(64, in_ch, 3)
    assert formula == expected  # "about 665k" is the paper's Y-channel net
    assert num_params(model) == expected
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == 20


def drrn_formula(c: int, m: int, b: int, u: int, bn: bool = True) -> int:
    convs = conv(c, m, 3) + b * 2 * conv(m, m, 3) + (b - 1) * conv(m, m, 3) + conv(m, c, 3)
    norms = 2 * c + 2 * m * (2 * u * b + b - 1) + 2 * m if bn else 0
    return convs + norms


@pytest.mark.parametrize('c, m, b, u', [(3, 128, 1, 25), (1, 128, 1, 25), (3, 16, 3, 2), (3, 8, 1, 1)])
def test_drrn_param_count(c, m, b, u):
    model = DRRN(in_channels=c, mid_channels=m, num_blocks=b, num_units=u)
    assert num_params(model) == drrn_formula(c, m, b, u)
    model = DRRN(in_channels=c, mid_channels=m, num_blocks=b, num_units=u, norm_layer=None)
    assert num_params(model) == drrn_formula(c, m, b, u, bn=False)


def test_drrn_b1u25_matches_paper():
    # Tai et al. 2017, Table 1: DRRN_B1U25 has 297K parameters (Y channel, convolution weights).
    model = DRRN(in_channels=1)
    assert num_conv_weights(model) == 297216
    # Depth (1 + 2U) * B + 1 = 52 convolutions applied, but only 4 distinct ones (2 shared).
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == 4


# -- shapes -----------------------------------------------------------------------
@pytest.mark.parametrize('cfg', [dict(type='SRCNN'), dict(type='VDSR'), dict(type='DRRN', num_units=2)])
@pytest.mark.parametrize('lr_size', [(16, 14), (28, 24)])
@torch.no_grad()
def test_paper_size_output_shape(cfg, lr_size):
    model = MODELS.build(dict(cfg, output_size=(112, 96))).eval()
    out = model(torch.randn(1, 3, *lr_size))
    assert out.shape == (1, 3, 112, 96)
    assert torch.isfinite(out).all()


def test_drrn_b1u25_paper_size_shape():
    # B1U25 at 112x96 costs ~80 GMACs: check the shapes on the meta device (no compute).
    with torch.device('meta'):
        model = MODELS.build(dict(type='DRRN', output_size=(112, 96))).eval()
        assert model(torch.empty(1, 3, 16, 14)).shape == (1, 3, 112, 96)


@pytest.mark.parametrize('name', sorted(TINY))
@pytest.mark.parametrize('lr_size', [(3, 3), (7, 5), (12, 10), (20, 16)])
def test_tiny_output_shape_any_lr_size(name, lr_size):
    model = MODELS.build(TINY[name])
    assert model(torch.randn(2, 3, *lr_size)).shape == (2, 3, 12, 10)


def test_int_output_size():
    assert VDSR(num_layers=2, mid_channels=4, output_size=16)(torch.randn(1, 3, 4, 4)).shape == (1, 3, 16, 16)


def test_upsample_is_bicubic_and_identity_at_output_size():
    model = PreUpsampleSR(output_size=(12, 10))
    lr = torch.randn(2, 3, 6, 5)
    expected = F.interpolate(lr, size=(12, 10), mode='bicubic', align_corners=False)
    assert torch.equal(model.upsample(lr), expected)
    hr = torch.randn(2, 3, 12, 10)
    assert model.upsample(hr) is hr


# -- global residual -------------------------------------------------------------
@pytest.mark.parametrize('name', ['VDSR', 'DRRN'])
def test_zero_last_layer_gives_exact_bicubic(name):
    model = MODELS.build(TINY[name])
    last = model.conv_last.conv if name == 'DRRN' else model.conv_last
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    lr = torch.randn(2, 3, 6, 5)
    expected = F.interpolate(lr, size=(12, 10), mode='bicubic', align_corners=False)
    assert torch.equal(model(lr), expected)


def test_srcnn_has_no_residual():
    model = MODELS.build(TINY['SRCNN'])
    nn.init.zeros_(model.conv_last.weight)
    nn.init.zeros_(model.conv_last.bias)
    assert torch.equal(model(torch.randn(2, 3, 6, 5)), torch.zeros(2, 3, 12, 10))


def test_drrn_recursion_is_multipath_with_shared_weights():
    """Reference computation of eq. (6): H_u = g(H_{u-1}) + H_0 with the same conv_a/conv_b at every u."""
    model = DRRN(mid_channels=6, num_blocks=1, num_units=3, output_size=(8, 8)).eval()
    for m in model.modules():  # non-trivial BN statistics so that each unit's own BN matters
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    block = model.body[0]
    x = torch.randn(2, 3, 8, 8)

    def pre(norm, conv_, h):
        return conv_(F.relu(norm(h)))

    h0 = pre(model.conv_first.norm, model.conv_first.conv, x)
    h = h0
    for u in range(3):
        h = pre(block.norms_b[u], block.conv_b, pre(block.norms_a[u], block.conv_a, h)) + h0
    expected = x + pre(model.conv_last.norm, model.conv_last.conv, h)
    assert torch.allclose(model(x), expected, atol=1e-6)


# -- gradients, learning ----------------------------------------------------------
@pytest.mark.parametrize('name', sorted(TINY))
def test_every_parameter_gets_a_gradient(name):
    model = MODELS.build(TINY[name]).train()
    model(torch.randn(2, 3, 6, 5)).square().mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f'{name}.{pname} got no gradient'


def test_tiny_vdsr_learns_to_super_resolve():
    """Blocky images, area-downsampled: 60 Adam steps take the loss well below its start."""
    model = MODELS.build(TINY['VDSR'])
    blocks = (torch.rand(4, 3, 3, 5) > 0.5).float() * 2 - 1
    hr = blocks.repeat_interleave(4, 2).repeat_interleave(2, 3)  # (4, 3, 12, 10)
    lr = F.interpolate(hr, size=(6, 5), mode='area')
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    start = F.mse_loss(model(lr), hr).item()
    for _ in range(60):
        opt.zero_grad()
        loss = F.mse_loss(model(lr), hr)
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * start


# -- bad configs and inputs ---------------------------------------------------------
@pytest.mark.parametrize('cfg, exc, match', [
    (dict(type='SRCNN', kernel_sizes=(9, 2, 5)), ValueError, r'kernel_sizes\[1\] must be odd .*, got 2'),
    (dict(type='SRCNN', kernel_sizes=(9, 5)), ValueError, r'kernel_sizes must have 3 values, got \(9, 5\)'),
    (dict(type='SRCNN', mid_channels=(64, 0)), ValueError, r'mid_channels\[1\] must be >= 1, got 0'),
    (dict(type='VDSR', num_layers=1), ValueError, 'num_layers must be >= 2, got 1'),
    (dict(type='VDSR', kernel_size=4), ValueError, 'kernel_size must be odd .*, got 4'),
    (dict(type='VDSR', output_size=(0, 96)), ValueError, r'output_size\[0\] \(height\) must be >= 1, got 0'),
    (dict(type='VDSR', output_size=(112, 96, 3)), TypeError, r'output_size must be an int or a \(height, width\) pair'),
    (dict(type='VDSR', mid_channels=6.5), TypeError, r'mid_channels must be an int, got float \(6.5\)'),
    (dict(type='DRRN', num_units=0), ValueError, 'num_units must be >= 1, got 0'),
    (dict(type='DRRN', norm_layer='bn'), TypeError, "norm_layer must be a layer class .*, got 'bn'"),
])
def test_bad_config_raises(cfg, exc, match):
    with pytest.raises(exc, match=match):
        MODELS.build(cfg)


@pytest.mark.parametrize('name', sorted(TINY))
def test_bad_input_raises(name):
    model = MODELS.build(TINY[name])
    with pytest.raises(ValueError, match=r'\(N, 3, h, w\)'):
        model(torch.randn(2, 1, 6, 5))
    with pytest.raises(ValueError):
        model(torch.randn(3, 6, 5))
