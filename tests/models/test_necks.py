"""EmbeddingNeck: feature maps -> embedding, alone and behind an mmpretrain backbone in FaceRecognizer."""
from typing import Dict

import pytest
import torch
import torch.nn.functional as F
from mmpretrain.structures import DataSample
from torch import nn

import lrfr.models  # noqa: F401  (registers the neck and the recogniser)
from lrfr.models.necks import EmbeddingNeck
from lrfr.registry import MODELS

# A tiny mmpretrain ResNet-18 (widths 8/16/32/64): at 112x96 its last map is 64 x 4x3.
TINY_RESNET = dict(type='mmpretrain.ResNet', depth=18, stem_channels=8, base_channels=8)


class TinyLinearHead(nn.Module):
    """Stand-in classification head: linear logits + cross-entropy, enough to drive a backward pass."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_channels, num_classes)

    def loss(self, feats: torch.Tensor, labels: torch.Tensor) -> Dict[str, torch.Tensor]:
        return dict(loss_cls=F.cross_entropy(self.fc(feats), labels))


def test_global_pool_mode_is_mean_then_linear_bn():
    neck = MODELS.build(dict(type='EmbeddingNeck', in_channels=6, embed_dim=4)).eval()
    maps = (torch.randn(3, 2, 9, 9), torch.randn(3, 6, 5, 4))
    expected = neck.norm(neck.fc(maps[-1].mean(dim=(2, 3))))
    assert torch.allclose(neck(maps), expected, atol=1e-6)
    assert neck(torch.randn(3, 6, 7, 2)).shape == (3, 4)  # any map size, tensor input too
    assert neck.embed_dim == 4


def test_flatten_mode_keeps_the_spatial_layout():
    neck = EmbeddingNeck(in_channels=6, embed_dim=4, in_size=(5, 4), norm_layer=None)
    x = torch.randn(3, 6, 5, 4)
    assert neck.fc.in_features == 6 * 5 * 4
    assert torch.allclose(neck(x), neck.fc(x.flatten(1)), atol=1e-6)
    # Moving activation between positions changes the embedding (pooling would not see it).
    assert not torch.allclose(neck(x), neck(x.flip(-1)), atol=1e-4)


def test_index_selects_the_map():
    neck = EmbeddingNeck(in_channels=2, embed_dim=4, index=0).eval()
    maps = [torch.randn(2, 2, 8, 8), torch.randn(2, 6, 4, 4)]
    assert torch.allclose(neck(maps), neck(maps[0]))


@pytest.mark.parametrize('feats, exc, match', [
    (torch.randn(2, 5, 4, 3), ValueError, r'\(N, 6, h, w\)'),
    (torch.randn(2, 6, 4, 4), ValueError, 'in_size'),
    ((torch.randn(2, 6, 4, 3),), IndexError, 'index=1'),
])
def test_bad_input_raises(feats, exc, match):
    index = 1 if isinstance(feats, tuple) else -1
    neck = EmbeddingNeck(in_channels=6, embed_dim=4, in_size=(4, 3), index=index)
    with pytest.raises(exc, match=match):
        neck(feats)


@pytest.mark.parametrize('cfg, exc, match', [
    (dict(in_channels=0), ValueError, 'in_channels must be >= 1, got 0'),
    (dict(in_channels=6, in_size=(4, 0)), ValueError, r'in_size\[1\] \(width\) must be >= 1, got 0'),
    (dict(in_channels=6, dropout=1.5), ValueError, r'dropout must be in \[0, 1\), got 1.5'),
    (dict(in_channels=6, index='last'), TypeError, "index must be an int, got 'last'"),
])
def test_bad_config_raises(cfg, exc, match):
    with pytest.raises(exc, match=match):
        MODELS.build(dict(type='EmbeddingNeck', **cfg))


@pytest.mark.parametrize('neck_cfg', [dict(in_size=(4, 3)), dict(in_size=None)])
def test_mmpretrain_backbone_through_face_recognizer(neck_cfg):
    model = MODELS.build(dict(
        type='FaceRecognizer',
        backbone=TINY_RESNET,
        neck=dict(type='EmbeddingNeck', in_channels=64, embed_dim=16, **neck_cfg),
        head=TinyLinearHead(16, 3)))
    images = torch.randn(4, 3, 112, 96)

    assert model(images, mode='tensor').shape == (4, 16)

    samples = [DataSample().set_gt_label(i % 3) for i in range(4)]
    losses = model(images, samples, mode='loss')
    losses['loss_cls'].backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f'{name} got no gradient'

    model.eval()
    out = model(images, [DataSample() for _ in range(4)], mode='predict')
    assert out[0].embedding.shape == (16,)
