"""Any SR head composes with any backbone and any loss head through SRFaceRecognizer / CSRI configs."""
import pytest
import torch
from mmpretrain.structures import DataSample

from lrfr.registry import MODELS
from lrfr.structures import BRANCH_NAT, BRANCH_SYN
from lrfr.utils import register_all_modules

register_all_modules()

BACKBONES = {
    'CentreFaceNet': (dict(type='CentreFaceNet', input_size=(48, 40), width_mult=0.125, num_units=(1, 1, 1, 1),
                           embed_dim=16), (48, 40)),
    'SphereFaceNet': (dict(type='SphereFaceNet', depth=20, input_size=(32, 24), width_mult=0.125, embed_dim=16),
                      (32, 24)),
    'VGGFace': (dict(type='VGGFace', input_size=(32, 32), width_mult=0.125, fc_dim=16), (32, 32)),
    'DeepID2': (dict(type='DeepID2', width_mult=0.25, embed_dim=16), (55, 47)),
    'IResNet': (dict(type='IResNet', depth=18, input_size=(32, 32), width_mult=0.0625, embed_dim=16), (32, 32)),
}
SR_HEADS = {
    'SRCNN': dict(type='SRCNN', mid_channels=(8, 4)),
    'VDSR': dict(type='VDSR', mid_channels=4, num_layers=3),
    'DRRN': dict(type='DRRN', mid_channels=4, num_units=2),
}
HEADS = {
    'SoftmaxHead': dict(type='SoftmaxHead'),
    'ArcFaceHead': dict(type='ArcFaceHead'),
    'CosFaceHead': dict(type='CosFaceHead'),
    'AdaFaceHead': dict(type='AdaFaceHead'),
    'ASoftmaxHead': dict(type='ASoftmaxHead'),
}
COMBOS = [('SRCNN', 'CentreFaceNet', 'SoftmaxHead'), ('VDSR', 'SphereFaceNet', 'ASoftmaxHead'),
          ('DRRN', 'IResNet', 'ArcFaceHead'), ('VDSR', 'VGGFace', 'CosFaceHead'),
          ('SRCNN', 'DeepID2', 'AdaFaceHead')]


def _samples(n):
    samples = []
    for i in range(n):
        branch = BRANCH_SYN if i % 2 == 0 else BRANCH_NAT
        s = DataSample(metainfo=dict(branch=branch)).set_gt_label(i % 3)
        samples.append(s)
    return samples


def _total_loss(model, x, samples):
    losses = model.loss(x, samples)
    assert {'syn_loss_cls', 'nat_loss_cls', 'loss_sr'} <= set(losses)
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total)
    return total


@pytest.mark.parametrize('sr,backbone,head', COMBOS)
def test_csri_with_any_parts_trains_one_step(sr, backbone, head):
    """One SGD step on CSRI's summed loss moves every part and lowers the loss on the same batch."""
    torch.manual_seed(0)
    bb_cfg, (h, w) = BACKBONES[backbone]
    model = MODELS.build(dict(
        type='CSRI', sr=dict(SR_HEADS[sr], output_size=(h, w)), backbone=bb_cfg,
        head=dict(HEADS[head], in_channels=16, num_classes=3),
        native_head=dict(HEADS[head], in_channels=16, num_classes=3), lambda_sr=0.003))
    x = torch.randn(4, 3, 12, 10)
    samples = _samples(4)
    for s in samples[::2]:
        s.hr_img = torch.randn(3, h, w)
    # Eval mode makes the loss a deterministic function of the weights (no dropout draw, BatchNorm on its
    # running statistics, AdaFace's norm EMAs frozen), so a lower loss after the step is the step's doing.
    model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    before = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    optimizer = torch.optim.SGD(params, lr=1.0)
    loss_before = _total_loss(model, x, samples)
    optimizer.zero_grad()
    loss_before.backward()
    # A step of length 1e-3 in weight space: the tiny nets' gradient norms differ by orders of magnitude
    # (margin scale 64, near-zero feature norms), and a fixed lr would overshoot on some and stall on others.
    grad_norm = torch.cat([p.grad.flatten() for p in params if p.grad is not None]).norm()
    optimizer.param_groups[0]['lr'] = 1e-3 / grad_norm.item()
    optimizer.step()
    for part in ('sr', 'backbone', 'head', 'native_head'):
        moved = [name for name, p in getattr(model, part).named_parameters()
                 if p.requires_grad and not torch.equal(p.detach(), before[f'{part}.{name}'])]
        assert moved, f'the SGD step left every parameter of {part} unchanged'
    assert all(not torch.equal(p.detach(), before[name]) for name, p in model.sr.named_parameters(prefix='sr'))
    with torch.no_grad():
        loss_after = _total_loss(model, x, samples)
    assert loss_after < loss_before, (loss_before.item(), loss_after.item())
    out = model.predict(x)
    assert out[0].embedding.shape == (16,)
