"""The backbones public pretrained models load into: IResNet-200 and AdaFace's IR layout (AdaFaceIR).

AdaFace's ``net.py`` differs from arcface_torch's IResNet in two places (the first unit's shortcut and the
embedding BN); both are checked here by known values, the exact conversion in tests/tools/test_model_converters.py.
"""
import pytest
import torch
from torch import nn

from lrfr.models.backbones import AdaFaceIR, IResNet
from lrfr.registry import MODELS
from lrfr.utils import register_all_modules

register_all_modules()


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build_meta(cfg: dict) -> nn.Module:
    with torch.device('meta'):
        return MODELS.build(cfg)


# Removed from IResNet: the first unit's 1x1 conv (64x64) + BN (2x64), the embedding BN's scale and shift (2x512).
ADAFACE_SAVING = 64 * 64 + 2 * 64 + 2 * 512


@pytest.mark.parametrize('depth,iresnet_params', [(18, 24_025_600), (34, 34_139_328), (50, 43_590_848),
                                                  (100, 65_156_160)])
def test_adaface_ir_parameter_counts(depth, iresnet_params):
    assert num_params(build_meta(dict(type='IResNet', depth=depth))) == iresnet_params
    assert num_params(build_meta(dict(type='AdaFaceIR', depth=depth))) == iresnet_params - ADAFACE_SAVING


def test_iresnet200_layout():
    net = build_meta(dict(type='IResNet', depth=200))
    assert [len(getattr(net, f'layer{i}')) for i in range(1, 5)] == [6, 26, 60, 6]
    # arcface_torch's iresnet200: 6+26+60+6 units of two 3x3 convs (+3 BN, PReLU), 4 shortcut convs
    units = {64: 6, 128: 26, 256: 60, 512: 6}
    convs = sum(n * 2 * 9 * c * c for c, n in units.items()) - sum(9 * c * c - 9 * c * c // 2 for c in (128, 256, 512))
    convs += 3 * 9 * 64 + sum(ci * co for ci, co in ((64, 64), (64, 128), (128, 256), (256, 512)))
    norms = sum(n * (2 * c + 2 * c + c + 2 * c) for c, n in units.items()) - sum(c // 2 * 2 for c in (128, 256, 512))
    norms += 3 * 64 + 2 * (64 + 128 + 256 + 512) + 2 * 512 + 512 * 49 * 512 + 512 + 2 * 512
    assert num_params(net) == convs + norms


def test_adaface_first_unit_subsamples():
    net = AdaFaceIR(depth=18, input_size=(32, 32), width_mult=0.125, embed_dim=8).eval()
    first = net.layer1[0]
    assert isinstance(first.downsample, nn.MaxPool2d)
    assert isinstance(net.layer2[0].downsample, nn.Sequential)  # width changes: conv + BN as in IResNet
    assert isinstance(IResNet(depth=18).layer1[0].downsample, nn.Sequential)
    nn.init.zeros_(first.bn3.weight)  # silence the residual branch: the unit is its shortcut alone
    x = torch.randn(2, 8, 16, 16)
    torch.testing.assert_close(first(x), x[:, :, ::2, ::2], rtol=0, atol=0)


def test_adaface_embedding_bn_has_no_affine():
    net = AdaFaceIR(depth=18, input_size=(32, 32), width_mult=0.125, embed_dim=8)
    assert net.features.weight is None and net.features.bias is None
    assert net.dropout.p == 0.4
    net.features.running_mean.fill_(2.0)
    net.features.running_var.fill_(4.0)
    net.eval()
    x = torch.randn(3, 3, 32, 32)
    pre = net.fc(net.bn2(net.layer4(net.layer3(net.layer2(net.layer1(net.prelu(net.bn1(net.conv1(x)))))))).flatten(1))
    torch.testing.assert_close(net(x), (pre - 2.0) / (4.0 + 1e-5) ** 0.5)
    # every parameter trains (IResNet's frozen embedding scale does not exist here)
    assert all(p.requires_grad for p in net.parameters())
    assert not IResNet(depth=18).features.weight.requires_grad


def test_adaface_depths():
    with pytest.raises(ValueError, match=r'AdaFaceIR depth must be one of \[18, 34, 50, 100\], got 200'):
        AdaFaceIR(depth=200)
