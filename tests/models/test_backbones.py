"""FR backbones (CentreFace, SphereFace, VGGFace, DeepID2, IResNet) and their layers: output shapes at the
papers' input sizes and for tiny variants, parameter counts against hand formulas and published numbers,
gradients to every parameter (one test over every registered backbone), bad configs and inputs."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import lrfr.models  # noqa: F401  (registers the backbones)
from lrfr.models.backbones import FaceBackbone, LocallyConnected2d
from lrfr.models.backbones.base_backbone import conv_out_size
from lrfr.registry import MODELS


def num_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def conv(cin: int, cout: int, k: int, bias: bool = True) -> int:
    return cin * cout * k * k + (cout if bias else 0)


def build_meta(cfg: dict) -> nn.Module:
    """Build on the meta device: parameter counts and shapes of the big nets without memory or compute."""
    with torch.device('meta'):
        return MODELS.build(cfg).eval()


# Tiny variant of every registered backbone: (config, input (H, W)). Used by the gradient test.
TINY = {
    'CentreFaceNet': (dict(type='CentreFaceNet', input_size=(48, 40), width_mult=0.125,
                           num_units=(1, 1, 1, 1), embed_dim=16), (48, 40)),
    'SphereFaceNet': (dict(type='SphereFaceNet', depth=20, input_size=(32, 24), width_mult=0.125,
                           embed_dim=16), (32, 24)),
    'VGGFace': (dict(type='VGGFace', input_size=(32, 32), width_mult=0.125, fc_dim=32), (32, 32)),
    'DeepID2': (dict(type='DeepID2', width_mult=0.25, embed_dim=16), (55, 47)),
    'IResNet': (dict(type='IResNet', depth=18, input_size=(32, 32), width_mult=0.0625, embed_dim=16), (32, 32)),
    'AdaFaceIR': (dict(type='AdaFaceIR', depth=18, input_size=(32, 32), width_mult=0.0625, embed_dim=16), (32, 32)),
}


def registered_backbones():
    return sorted(name for name, cls in MODELS.module_dict.items()
                  if isinstance(cls, type) and issubclass(cls, FaceBackbone))


def test_every_registered_backbone_has_a_tiny_variant():
    assert registered_backbones() == sorted(TINY)


@pytest.mark.parametrize('name', registered_backbones())
def test_every_parameter_gets_a_gradient(name):
    cfg, (h, w) = TINY[name]
    model = MODELS.build(cfg).train()
    emb = model(torch.randn(3, 3, h, w))
    assert emb.shape == (3, model.embed_dim)
    (emb * torch.randn_like(emb)).sum().backward()  # random weights: no symmetric cancellation
    for pname, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and p.grad.abs().sum() > 0, f'{name}.{pname} got no gradient'


@pytest.mark.parametrize('name', ['CentreFaceNet', 'DeepID2', 'VGGFace'])
def test_too_small_input_names_the_input_size(name):
    # SphereFaceNet and IResNet only have padded stride-2 convolutions: any size keeps a 1x1 map.
    cfg, _ = TINY[name]
    with pytest.raises(ValueError, match=r'input_size=\(8, 8\) is too small'):
        MODELS.build(dict(cfg, input_size=(8, 8)))


@pytest.mark.parametrize('name', registered_backbones())
def test_wrong_image_size_at_forward_raises(name):
    cfg, (h, w) = TINY[name]
    model = MODELS.build(cfg)
    with pytest.raises(ValueError, match='expects images of shape'):
        model(torch.randn(2, 3, h + 2, w))
    with pytest.raises(ValueError, match='expects images of shape'):
        model(torch.randn(2, 1, h, w))


# -- CentreFace -----------------------------------------------------------------------
def centreface_params(c=3, chs=(32, 64, 128, 256, 512), units=(1, 2, 5, 3), feat=(5, 4), embed=512):
    total = conv(c, chs[0], 3) + chs[0]  # conv1a + PReLU
    for i, n in enumerate(units):
        ch = chs[i + 1]
        total += conv(chs[i], ch, 3) + ch  # transition conv + PReLU
        total += n * (2 * conv(ch, ch, 3, bias=False) + 2 * ch)  # units: 2 bias-free convs + 2 PReLU
    return total + conv(chs[-1] * feat[0] * feat[1], embed, 1)  # fc5


@torch.no_grad()
def test_centreface_paper_size():
    model = MODELS.build(dict(type='CentreFaceNet')).eval()
    assert model.feature_size == (5, 4)  # 512 x 5 x 4 feeds fc5, as in the prototxt
    assert model.fc5.in_features == 10240
    assert num_params(model) == centreface_params() == 27536800
    assert model(torch.randn(1, 3, 112, 96)).shape == (1, 512)


def test_centreface_tiny_matches_formula_and_caffe_ceil_pooling():
    model = MODELS.build(TINY['CentreFaceNet'][0])
    # 48x40 -> 46x38 -> 44x36 -> 22x18 -> 20x16 -> 10x8 -> 8x6 -> 4x3 -> 2x1 -> pool (ceil) 1x1
    assert model.feature_size == (1, 1)
    assert num_params(model) == centreface_params(chs=(4, 8, 16, 32, 64), units=(1, 1, 1, 1), feat=(1, 1),
                                                  embed=16)


# -- SphereFace -------------------------------------------------------------------------
def sphere_params(units, c=3, chs=(64, 128, 256, 512), feat=(7, 6), embed=512):
    total, prev = 0, c
    for n, ch in zip(units, chs):
        total += conv(prev, ch, 3) + ch + n * (2 * conv(ch, ch, 3, bias=False) + 2 * ch)
        prev = ch
    return total + conv(prev * feat[0] * feat[1], embed, 1)


@torch.no_grad()
def test_sphere20a_paper_size():
    model = MODELS.build(dict(type='SphereFaceNet', depth=20)).eval()
    assert model.feature_size == (7, 6)  # fc5 from 512 x 7 x 6
    assert num_params(model) == sphere_params((1, 2, 4, 1)) == 22666944
    n_convs = sum(isinstance(m, nn.Conv2d) for m in model.modules())
    assert n_convs == 20
    assert model(torch.randn(1, 3, 112, 96)).shape == (1, 512)


def test_sphere64a_paper_size():
    model = build_meta(dict(type='SphereFaceNet', depth=64))
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == 64
    assert num_params(model) == sphere_params((3, 8, 16, 3)) == 48186816
    assert model(torch.empty(1, 3, 112, 96, device='meta')).shape == (1, 512)


def test_sphereface_unknown_depth():
    with pytest.raises(ValueError, match='depth must be one of'):
        MODELS.build(dict(type='SphereFaceNet', depth=18))


# -- VGGFace -------------------------------------------------------------------------------
def test_vggface_paper_size_matches_vgg16():
    model = build_meta(dict(type='VGGFace'))
    assert model.feature_size == (7, 7)
    # torchvision's VGG-16 has 138,357,544 parameters; minus the 1000-way fc8 (4096*1000 + 1000).
    assert num_params(model) == 138357544 - 4097000
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == 13
    assert model(torch.empty(1, 3, 224, 224, device='meta')).shape == (1, 4096)


@torch.no_grad()
def test_vggface_lrfr_size():
    model = MODELS.build(dict(type='VGGFace', input_size=(112, 96))).eval()
    assert model.feature_size == (3, 3)
    assert model.fc6.in_features == 512 * 3 * 3
    emb = model(torch.randn(1, 3, 112, 96))
    assert emb.shape == (1, 4096)
    assert (emb >= 0).all()  # fc7 after ReLU: the activation that feeds fc8


# -- DeepID2 ----------------------------------------------------------------------------------
@torch.no_grad()
def test_deepid2_paper_size():
    model = MODELS.build(dict(type='DeepID2')).eval()
    assert model.conv3[0].output_size == (10, 8) and model.conv3[0].num_regions == (5, 4)
    assert model.conv4[0].input_size == (5, 4) and model.conv4[0].output_size == (4, 3)
    expected = (conv(3, 20, 4) + conv(20, 40, 3)
                + 5 * 4 * conv(40, 60, 3)  # conv3: one filter set per 2x2 region of the 10x8 map
                + 4 * 3 * conv(60, 80, 2)  # conv4: one filter set per position of the 4x3 map
                + conv(60 * 5 * 4 + 80 * 4 * 3, 160, 1))  # DeepID2 layer on [pool3, conv4]
    assert num_params(model) == expected == 1018540
    emb = model(torch.randn(1, 3, 55, 47))
    assert emb.shape == (1, 160) and (emb >= 0).all()


@torch.no_grad()
def test_deepid2_at_lrfr_input_size():
    model = MODELS.build(dict(type='DeepID2', input_size=(112, 96))).eval()
    assert model(torch.randn(1, 3, 112, 96)).shape == (1, 160)


# -- LocallyConnected2d ---------------------------------------------------------------------
def test_locally_connected_equals_conv_when_filters_are_equal():
    lc = LocallyConnected2d(3, 5, 3, input_size=(9, 7), stride=2, padding=1, share_size=(2, 3))
    ref = nn.Conv2d(3, 5, 3, stride=2, padding=1)
    with torch.no_grad():
        lc.weight.copy_(ref.weight.flatten(1).expand_as(lc.weight))
        lc.bias.copy_(ref.bias.expand_as(lc.bias))
    x = torch.randn(2, 3, 9, 7)
    assert lc.output_size == (5, 4) and lc.num_regions == (3, 2)  # partial last regions
    assert torch.allclose(lc(x), ref(x), atol=1e-5)


def test_locally_connected_uses_the_filter_of_each_region():
    lc = LocallyConnected2d(2, 3, 2, input_size=(5, 4), share_size=(2, 1))
    x = torch.randn(1, 2, 5, 4)
    out = lc(x)
    assert out.shape == (1, 3, 4, 3)
    for i in range(4):
        for j in range(3):
            w = lc.weight[i // 2, j].view(3, 2, 2, 2)
            b = lc.bias[i // 2, j]
            expected = F.conv2d(x[:, :, i:i + 2, j:j + 2], w, b).flatten()
            assert torch.allclose(out[0, :, i, j], expected, atol=1e-5)


def test_locally_connected_bad_input():
    lc = LocallyConnected2d(2, 3, 2, input_size=(5, 4))
    with pytest.raises(ValueError, match='expects'):
        lc(torch.randn(1, 2, 6, 4))
    with pytest.raises(ValueError, match='too small'):
        LocallyConnected2d(2, 3, 5, input_size=(4, 4))


# -- IResNet --------------------------------------------------------------------------------
def iresnet_params(layers, c=3, chs=(64, 128, 256, 512), feat=(7, 7), embed=512):
    total = conv(c, chs[0], 3, bias=False) + 2 * chs[0] + chs[0]  # conv1, bn1, prelu
    prev = chs[0]
    for n, ch in zip(layers, chs):
        for b in range(n):
            cin = prev if b == 0 else ch
            total += 2 * cin + conv(cin, ch, 3, False) + 2 * ch + ch + conv(ch, ch, 3, False) + 2 * ch
            if b == 0:  # first block: stride 2, so a 1x1 conv + BN shortcut
                total += conv(cin, ch, 1, False) + 2 * ch
        prev = ch
    return total + 2 * prev + conv(prev * feat[0] * feat[1], embed, 1) + 2 * embed  # bn2, fc, features


@pytest.mark.parametrize('depth, layers', [(18, (2, 2, 2, 2)), (34, (3, 4, 6, 3)), (50, (3, 4, 14, 3)),
                                           (100, (3, 13, 30, 3))])
@pytest.mark.parametrize('input_size, feat', [((112, 112), (7, 7)), ((112, 96), (7, 6))])
def test_iresnet_depths_param_count_and_shape(depth, layers, input_size, feat):
    model = build_meta(dict(type='IResNet', depth=depth, input_size=input_size))
    assert model.feature_size == feat
    assert num_params(model) == iresnet_params(layers, feat=feat)
    assert model(torch.empty(1, 3, *input_size, device='meta')).shape == (1, 512)


def test_iresnet_counts_match_published_mxnet_models():
    # InsightFace's MXNet LResNet34E-IR / LResNet100E-IR at 112x112, as listed by OpenVINO's model zoo:
    # 34.129M / 65.132M parameters. Their output block differs in small details, hence the 0.1% tolerance.
    for depth, published in ((34, 34.129e6), (100, 65.132e6)):
        ours = num_params(build_meta(dict(type='IResNet', depth=depth)))
        assert abs(ours - published) / published < 1e-3, (depth, ours)


@pytest.mark.parametrize('input_size', [(112, 112), (112, 96)])
@torch.no_grad()
def test_iresnet18_paper_size_forward(input_size):
    model = MODELS.build(dict(type='IResNet', depth=18, input_size=input_size)).eval()
    assert model(torch.randn(1, 3, *input_size)).shape == (1, 512)
    assert not model.features.weight.requires_grad  # embedding BN scale fixed at 1, as in ArcFace


def test_iresnet_unknown_depth():
    with pytest.raises(ValueError, match='depth must be one of'):
        MODELS.build(dict(type='IResNet', depth=152))


@pytest.mark.parametrize('name', registered_backbones())
def test_pretrained_init_cfg_loads_the_weights(name, tmp_path):
    """``init_cfg=Pretrained`` (mmengine's BaseModule) replaces the backbone's own initialisation on init_weights."""
    cfg, (h, w) = TINY[name]
    torch.manual_seed(0)
    trained = MODELS.build(cfg)
    ckpt = tmp_path / 'fr.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in trained.state_dict().items()}, 'meta': {}}, ckpt)
    torch.manual_seed(1)
    model = MODELS.build(dict(cfg, init_cfg=dict(type='Pretrained', checkpoint=str(ckpt), prefix='backbone.')))
    assert model.init_cfg['type'] == 'Pretrained'
    differ = [k for k, v in trained.state_dict().items()
              if v.is_floating_point() and not torch.equal(model.state_dict()[k], v)]
    assert differ, 'the two builds must start from different weights for this test to mean anything'
    model.init_weights()
    for key, value in trained.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    x = torch.randn(2, 3, h, w)
    assert torch.equal(model.eval()(x), trained.eval()(x))


# -- shared checks -----------------------------------------------------------------------------
@pytest.mark.parametrize('size', range(1, 12))
@pytest.mark.parametrize('kernel, stride, padding, ceil', [(3, 1, 0, False), (3, 2, 1, False), (2, 2, 0, True),
                                                             (2, 2, 0, False), (4, 1, 0, False), (3, 2, 0, True)])
def test_conv_out_size_matches_pytorch(size, kernel, stride, padding, ceil):
    expected = conv_out_size(size, kernel, stride, padding, ceil)
    x = torch.zeros(1, 1, size, 1)
    layer = (nn.MaxPool2d((kernel, 1), (stride, 1), (padding, 0), ceil_mode=ceil) if ceil
             else nn.Conv2d(1, 1, (kernel, 1), (stride, 1), (padding, 0)))
    if expected < 1:
        with pytest.raises(RuntimeError):
            layer(x)
    else:
        assert layer(x).shape[2] == expected


@pytest.mark.parametrize('cfg, exc, match', [
    (dict(type='CentreFaceNet', num_units=(1, 2, 5)), ValueError, r'num_units must give 4 stages, got \(1, 2, 5\)'),
    (dict(type='CentreFaceNet', num_units=(1, 2, -1, 3)), ValueError, r'num_units\[2\] must be >= 0, got -1'),
    (dict(type='CentreFaceNet', width_mult=0), ValueError, 'width_mult must be a positive number, got 0'),
    (dict(type='CentreFaceNet', input_size=(112, 96, 3)), TypeError,
     r'input_size must be an int or a \(height, width\) pair'),
    (dict(type='CentreFaceNet', embed_dim=0), ValueError, 'embed_dim must be >= 1, got 0'),
    (dict(type='VGGFace', dropout=1.0), ValueError, r'dropout must be in \[0, 1\), got 1.0'),
    (dict(type='VGGFace', num_convs=(2, 2, 3, 3)), ValueError, 'num_convs must give 5 blocks'),
    (dict(type='IResNet', depth=18, dropout=-0.1), ValueError, r'dropout must be in \[0, 1\), got -0.1'),
    (dict(type='DeepID2', input_size='55x47'), TypeError,
     r"input_size must be an int or a \(height, width\) pair, got '55x47'"),
])
def test_bad_config_raises(cfg, exc, match):
    with pytest.raises(exc, match=match):
        MODELS.build(cfg)
