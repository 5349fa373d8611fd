"""FaceRecognizer, SRFaceRecognizer, CSRI and SuperResolver on tiny stand-in parts (known values, gradients)."""
import pytest
import torch
import torch.nn.functional as F
from mmpretrain.structures import DataSample
from torch import nn

from lrfr.models.losses import EuclideanLoss
from lrfr.models.recognizers import CSRI, FaceRecognizer, SRFaceRecognizer, SuperResolver
from lrfr.registry import MODELS
from lrfr.structures import BRANCH_NAT, BRANCH_SYN

H, W, h, w, D = 8, 6, 4, 3, 5


class TinySR(nn.Module):
    """Bicubic up-sampling plus a 3x3 conv residual: the SR head interface at toy size."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        up = F.interpolate(x, size=(H, W), mode='bicubic', align_corners=False)
        return up + self.conv(up)


class TinyBackbone(nn.Module):
    embed_dim = D

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * H * W, D)

    def forward(self, x):
        return self.fc(x.flatten(1))


class TinyHead(nn.Module):
    """Softmax cross-entropy head with the lrfr head interface."""

    def __init__(self, num_classes):
        super().__init__()
        self.fc = nn.Linear(D, num_classes)

    def forward(self, feats):
        return self.fc(feats)

    def loss(self, feats, labels):
        return dict(loss_cls=F.cross_entropy(self.fc(feats), labels))


def make_samples(labels, branches, with_hr):
    samples = []
    for i, (label, branch) in enumerate(zip(labels, branches)):
        s = DataSample(metainfo=dict(branch=branch, sample_idx=i)).set_gt_label(label)
        if with_hr[i]:
            s.hr_img = torch.randn(3, H, W)
        samples.append(s)
    return samples


def make_csri(lambda_sr=0.003, **kwargs):
    return CSRI(sr=TinySR(), backbone=TinyBackbone(), head=TinyHead(4), native_head=TinyHead(3),
                lambda_sr=lambda_sr, **kwargs)


def test_face_recognizer_modes():
    model = FaceRecognizer(backbone=TinyBackbone(), head=TinyHead(3), flip_test=True)
    x = torch.randn(2, 3, H, W)
    assert model(x, mode='tensor').shape == (2, D)
    samples = model(x, make_samples([0, 1], [BRANCH_NAT] * 2, [False] * 2), mode='predict')
    assert torch.allclose(samples[0].embedding, model.backbone(x)[0])
    assert torch.allclose(samples[1].embedding_flip, model.backbone(x.flip(-1))[1])
    losses = model(x, make_samples([0, 2], [BRANCH_NAT] * 2, [False] * 2), mode='loss')
    expected = F.cross_entropy(model.head(model.backbone(x)), torch.tensor([0, 2]))
    assert torch.allclose(losses['loss_cls'], expected)
    with pytest.raises(RuntimeError, match='Invalid mode'):
        model(x, mode='train')
    with pytest.raises(RuntimeError, match='no head'):
        FaceRecognizer(backbone=TinyBackbone()).loss(x, make_samples([0, 1], [BRANCH_NAT] * 2, [False] * 2))


def test_face_recognizer_needs_labels():
    model = FaceRecognizer(backbone=TinyBackbone(), head=TinyHead(3))
    with pytest.raises(KeyError, match='gt_label'):
        model.loss(torch.randn(1, 3, H, W), [DataSample()])


def test_euclidean_loss_known_value():
    pred, target = torch.zeros(2, 1, 2, 2), torch.ones(2, 1, 2, 2)
    pred[1] = 3.0  # image 0: 4 pixels off by 1 -> 4; image 1: off by 2 -> 16
    assert torch.allclose(EuclideanLoss()(pred, target), torch.tensor((4 + 16) / 2 / 2))
    with pytest.raises(ValueError, match='differ'):
        EuclideanLoss()(torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 4, 4))


def test_csri_loss_is_sum_of_parts():
    model = make_csri()
    x = torch.randn(4, 3, h, w)
    samples = make_samples([0, 3, 1, 2], [BRANCH_SYN, BRANCH_SYN, BRANCH_NAT, BRANCH_NAT],
                           [True, True, False, False])
    losses = model.loss(x, samples)
    assert set(losses) == {'syn_loss_cls', 'nat_loss_cls', 'loss_sr'}
    sr = model.sr(x)
    feats = model.backbone(sr)
    syn = F.cross_entropy(model.head.fc(feats[:2]), torch.tensor([0, 3]))
    nat = F.cross_entropy(model.native_head.fc(feats[2:]), torch.tensor([1, 2]))
    hr = torch.stack([samples[0].hr_img, samples[1].hr_img])
    l_sr = (sr[:2] - hr).flatten(1).pow(2).sum(1).mean() / 2
    assert torch.allclose(losses['syn_loss_cls'], syn)
    assert torch.allclose(losses['nat_loss_cls'], nat)
    assert torch.allclose(losses['loss_sr'], 0.003 * l_sr)
    total, _ = model.parse_losses(losses)
    assert torch.allclose(total, syn + nat + 0.003 * l_sr)


def _sr_grad_norm(model, loss):
    model.zero_grad()
    loss.backward(retain_graph=True)
    return sum(p.grad.abs().sum() for p in model.sr.parameters() if p.grad is not None)


def test_csri_gradient_paths():
    model = make_csri(lambda_sr=1.0)
    x = torch.randn(4, 3, h, w)
    samples = make_samples([0, 1, 1, 2], [BRANCH_SYN, BRANCH_SYN, BRANCH_NAT, BRANCH_NAT],
                           [True, True, False, False])
    losses = model.loss(x, samples)
    # The SR head learns from the native branch's identity loss (complement SR) ...
    assert _sr_grad_norm(model, losses['nat_loss_cls']) > 0
    assert _sr_grad_norm(model, losses['syn_loss_cls']) > 0
    # ... and from the SR loss, which touches neither FR nor the native samples.
    model.zero_grad()
    losses['loss_sr'].backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.backbone.parameters())
    x2 = x.clone()
    x2[2:] += 10.0  # change only the native images
    assert torch.allclose(model.loss(x2, samples)['loss_sr'], losses['loss_sr'])


def test_single_head_joint_and_frozen_sr():
    joint = SRFaceRecognizer(sr=TinySR(), backbone=TinyBackbone(), head=TinyHead(3), lambda_sr=0.5)
    x = torch.randn(2, 3, h, w)
    samples = make_samples([0, 1], [BRANCH_SYN] * 2, [True, False])
    losses = joint.loss(x, samples)
    assert set(losses) == {'loss_cls', 'loss_sr'}  # no branch prefix with one head
    frozen = SRFaceRecognizer(sr=TinySR(), backbone=TinyBackbone(), head=TinyHead(3), freeze_sr=True)
    frozen.train()
    assert not frozen.sr.training and frozen.backbone.training
    losses = frozen.loss(x, samples)
    assert 'loss_sr' not in losses
    losses['loss_cls'].backward()
    assert all(p.grad is None for p in frozen.sr.parameters())
    assert all(p.grad is not None for p in frozen.backbone.parameters())


def test_sr_face_recognizer_predict():
    model = SRFaceRecognizer(sr=TinySR(), backbone=TinyBackbone(), predict_sr=True)
    x = torch.randn(2, 3, h, w)
    out = model.predict(x)
    assert torch.allclose(out[0].embedding, model.backbone(model.sr(x))[0])
    assert out[1].pred_img.shape == (3, H, W)


def test_csri_requires_native_head_and_valid_lambda():
    with pytest.raises(ValueError, match='native_head'):
        CSRI(sr=TinySR(), backbone=TinyBackbone(), head=TinyHead(3))
    with pytest.raises(ValueError, match='lambda_sr'):
        SRFaceRecognizer(sr=TinySR(), backbone=TinyBackbone(), lambda_sr=-1)


def test_super_resolver_trains_on_pairs():
    torch.manual_seed(0)
    model = SuperResolver(sr=TinySR())
    x = torch.randn(8, 3, h, w)
    samples = make_samples([0] * 8, [BRANCH_SYN] * 8, [True] * 8)
    hr = torch.stack([s.hr_img for s in samples])
    # Learnable target: a fixed blur of the up-sampled input, which the 3x3 residual conv can represent.
    target_conv = nn.Conv2d(3, 3, 3, padding=1)
    with torch.no_grad():
        up = F.interpolate(x, size=(H, W), mode='bicubic', align_corners=False)
        hr = up + target_conv(up)
    for s, t in zip(samples, hr):
        s.hr_img = t
    optim = torch.optim.Adam(model.parameters(), lr=0.05)
    start = model.loss(x, samples)['loss_sr'].item()
    for _ in range(100):
        optim.zero_grad()
        loss = model.loss(x, samples)['loss_sr']
        loss.backward()
        optim.step()
    assert loss.item() < 0.05 * start
    with pytest.raises(KeyError, match='hr_img'):
        model.loss(x, make_samples([0], [BRANCH_NAT], [False]))


def test_registry_builds_recognizers():
    assert MODELS.get('CSRI') is CSRI
    model = MODELS.build(dict(type='EuclideanLoss', loss_weight=2.0))
    assert model.loss_weight == 2.0


def test_sr_weights_come_from_an_sr_only_checkpoint(tmp_path):
    """Independent SR-FR learning: the frozen SR head is initialised from a SuperResolver run's checkpoint."""
    sr_cfg = dict(type='VDSR', mid_channels=4, num_layers=3, output_size=(H, W))
    trained = SuperResolver(sr=sr_cfg)
    ckpt = tmp_path / 'sr.pth'
    torch.save({'state_dict': trained.state_dict(), 'meta': {}}, ckpt)
    model = SRFaceRecognizer(
        sr=dict(sr_cfg, init_cfg=dict(type='Pretrained', checkpoint=str(ckpt), prefix='sr.')),
        backbone=TinyBackbone(), head=TinyHead(3), freeze_sr=True)
    assert not torch.allclose(model.sr.conv_first.weight, trained.sr.conv_first.weight)
    model.init_weights()
    for name, value in trained.sr.state_dict().items():
        assert torch.allclose(model.sr.state_dict()[name], value), name
