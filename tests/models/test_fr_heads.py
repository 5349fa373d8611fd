"""Classification heads and losses: hand-computed values, gradients, AMP precision, bad configs."""
import math
import statistics

import pytest
import torch
import torch.nn.functional as F

import lrfr.models  # noqa: F401  (registers the heads)
from lrfr.models.fr_heads import ASoftmaxHead, chebyshev_cos
from lrfr.registry import MODELS
from lrfr.structures import DISTRACTOR_LABEL

# A tiny case with known angles: 2-D embeddings, 3 classes on known directions.
CLASS_DIRS = (0.0, 90.0, 180.0)  # degrees of w_0, w_1, w_2
CLASS_NORMS = (2.0, 3.0, 0.5)  # must not matter: weights are normalised
SAMPLES = ((30.0, 5.0, 0), (100.0, 0.5, 1), (170.0, 2.0, 0))  # (angle deg, norm, label)


def unit(deg: float):
    return math.cos(math.radians(deg)), math.sin(math.radians(deg))


def tiny_case(samples=SAMPLES, dtype=torch.float32):
    feats = torch.tensor([[n * c for c in unit(a)] for a, n, _ in samples], dtype=dtype)
    labels = torch.tensor([y for _, _, y in samples])
    weight = torch.tensor([[n * c for c in unit(a)] for a, n in zip(CLASS_DIRS, CLASS_NORMS)],
                          dtype=dtype)
    return feats, labels, weight


def angle(sample_deg: float, cls: int) -> float:
    """Angle (radians, in [0, pi]) between a sample direction and class ``cls``."""
    d = abs(sample_deg - CLASS_DIRS[cls]) % 360.0
    return math.radians(min(d, 360.0 - d))


def ce(rows, labels) -> float:
    """Mean softmax cross-entropy of python logits, by hand."""
    total = 0.0
    for row, y in zip(rows, labels):
        total += math.log(sum(math.exp(v) for v in row)) - row[y]
    return total / len(rows)


def build(cfg: dict, weight: torch.Tensor = None):
    head = MODELS.build(cfg)
    if weight is not None:
        head.fc.weight.data.copy_(weight)
    return head


def expected_margin_rows(scale, target_fn, samples=SAMPLES):
    rows = []
    for i, (a, n, y) in enumerate(samples):
        row = [scale * math.cos(angle(a, j)) for j in range(3)]
        row[y] = scale * target_fn(angle(a, y), n, i)
        rows.append(row)
    return rows


def check_loss(head, feats, labels, rows, atol=1e-5):
    margin_logits, plain = head.train_logits(feats, labels)
    assert torch.allclose(margin_logits, torch.tensor(rows, dtype=margin_logits.dtype), atol=atol)
    out = head.loss(feats, labels)
    assert torch.allclose(out['loss_cls'], torch.tensor(ce(rows, labels.tolist()),
                                                        dtype=out['loss_cls'].dtype), atol=atol)
    expected_acc = (plain.argmax(1) == labels).float().mean() * 100
    assert torch.allclose(out['accuracy'], expected_acc)
    return out


# -- softmax -----------------------------------------------------------------
def test_softmax_head_by_hand():
    head = MODELS.build(dict(type='SoftmaxHead', num_classes=3, in_channels=2))
    head.fc.weight.data = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-1.0, 1.0]])
    head.fc.bias.data = torch.tensor([0.5, 0.0, -0.5])
    feats = torch.tensor([[1.0, 2.0], [-1.0, 0.5]])
    labels = torch.tensor([1, 2])
    rows = [[1.5, 4.0, 0.5], [-0.5, 1.0, 1.0]]
    assert torch.allclose(head(feats), torch.tensor(rows))
    out = head.loss(feats, labels)
    assert set(out) == {'loss_cls', 'accuracy'}
    assert torch.allclose(out['loss_cls'], torch.tensor(ce(rows, [1, 2])))
    # argmax of row 1 is class 1 (tie 1.0/1.0 goes to the first index) -> 1 of 2 right
    assert torch.allclose(out['accuracy'], torch.tensor(50.0))


def test_softmax_head_label_smoothing_and_no_bias():
    head = MODELS.build(dict(type='SoftmaxHead', num_classes=3, in_channels=2, bias=False,
                             label_smoothing=0.3, loss_weight=2.0))
    assert head.fc.bias is None
    head.fc.weight.data = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-1.0, 1.0]])
    feats, labels = torch.tensor([[1.0, 2.0]]), torch.tensor([0])
    row = [1.0, 4.0, 1.0]
    log_p = [v - math.log(sum(math.exp(u) for u in row)) for v in row]
    expected = 2.0 * ((1 - 0.3) * -log_p[0] + 0.3 * -sum(log_p) / 3)
    assert torch.allclose(head.loss(feats, labels)['loss_cls'], torch.tensor(expected))


# -- margin family --------------------------------------------------------------
@pytest.mark.parametrize('cfg', [dict(type='CosFaceHead'), dict(type='ArcFaceHead', easy_margin=True),
                                 dict(type='AdaFaceHead'), dict(type='ASoftmaxHead', margin=2),
                                 dict(type='SoftmaxHead', bias=False)])
def test_shared_arguments_reach_the_base(cfg):
    """scale, loss_weight and label_smoothing, passed through **kwargs, act as BaseFaceHead's."""
    feats, labels, weight = tiny_case()
    extra = {} if cfg['type'] in ('ASoftmaxHead', 'SoftmaxHead') else dict(scale=3.0)
    head = build(dict(cfg, num_classes=3, in_channels=2, loss_weight=2.5, label_smoothing=0.2, **extra),
                 weight).eval()
    if extra:
        assert head.scale == 3.0
        assert torch.allclose(head(feats), 3.0 * F.normalize(feats, dim=1) @ F.normalize(weight, dim=1).T,
                              atol=1e-5)
    margin_logits, _ = head.train_logits(feats, labels)
    expected = 2.5 * F.cross_entropy(margin_logits, labels, label_smoothing=0.2)
    assert torch.allclose(head.loss(feats, labels)['loss_cls'], expected)


def test_cosface_by_hand():
    feats, labels, weight = tiny_case()
    head = build(dict(type='CosFaceHead', num_classes=3, in_channels=2, scale=4.0, margin=0.35), weight)
    rows = expected_margin_rows(4.0, lambda t, n, i: math.cos(t) - 0.35)
    check_loss(head, feats, labels, rows)
    plain = [[4.0 * math.cos(angle(a, j)) for j in range(3)] for a, _, _ in SAMPLES]
    assert torch.allclose(head(feats), torch.tensor(plain), atol=1e-5)


@pytest.mark.parametrize('easy_margin', [False, True])
def test_arcface_by_hand_with_fallback(easy_margin):
    feats, labels, weight = tiny_case()
    m = 0.5
    head = build(dict(type='ArcFaceHead', num_classes=3, in_channels=2, scale=4.0, margin=m,
                      easy_margin=easy_margin), weight)

    def target(theta, n, i):
        if easy_margin:
            return math.cos(theta + m) if math.cos(theta) > 0 else math.cos(theta)
        if theta + m <= math.pi:
            return math.cos(theta + m)
        return math.cos(theta) - m * math.sin(m)  # the theta + m > pi fallback

    # sample 2 (170 deg from class 0) is past pi - m: it exercises both branches
    assert angle(SAMPLES[2][0], 0) + m > math.pi
    check_loss(head, feats, labels, expected_margin_rows(4.0, target))


def test_margin_head_combined_margins_by_hand():
    feats, labels, weight = tiny_case()
    head = build(dict(type='MarginHead', num_classes=3, in_channels=2, scale=2.0,
                      angular_margin=0.2, additive_margin=0.1), weight)
    rows = expected_margin_rows(2.0, lambda t, n, i: (math.cos(t + 0.2) if t + 0.2 <= math.pi
                                                      else math.cos(t) - 0.2 * math.sin(0.2)) - 0.1)
    check_loss(head, feats, labels, rows)


def test_zero_margins_give_normalised_softmax():
    feats, labels, weight = tiny_case()
    head = build(dict(type='MarginHead', num_classes=3, in_channels=2, scale=3.0), weight)
    margin_logits, plain = head.train_logits(feats, labels)
    assert torch.allclose(margin_logits, plain)
    cos = F.normalize(feats, dim=1) @ F.normalize(weight, dim=1).T
    assert torch.allclose(plain, 3.0 * cos, atol=1e-6)


def adaface_target(theta, norm, mean, std, m=0.4, h=0.333, eps=1e-3):
    z = max(-1.0, min(1.0, h * (min(max(norm, 1e-3), 100.0) - mean) / (std + eps)))
    theta = math.acos(max(-1 + eps, min(1 - eps, math.cos(theta))))
    theta_m = max(eps, min(math.pi - eps, theta - m * z))
    return math.cos(theta_m) - (m + m * z)


def test_adaface_margin_by_hand_eval_uses_buffers():
    samples = ((30.0, 5.0, 0), (100.0, 0.5, 1), (170.0, 0.1, 0))
    feats, labels, weight = tiny_case(samples)
    head = build(dict(type='AdaFaceHead', num_classes=3, in_channels=2, scale=4.0), weight).eval()
    head.batch_mean.fill_(2.0)
    head.batch_std.fill_(0.5)
    # z: sample 0 clipped to +1, sample 1 about -1, sample 2 clipped to -1 and theta + m clipped to pi - eps
    zs = [0.333 * (n - 2.0) / 0.501 for _, n, _ in samples]
    assert zs[0] > 1 and zs[2] < -1 and -1 < zs[1] < 0
    rows = expected_margin_rows(4.0, lambda t, n, i: adaface_target(t, n, 2.0, 0.5), samples)
    check_loss(head, feats, labels, rows)
    assert head.batch_mean.item() == 2.0 and head.batch_std.item() == 0.5  # eval: no update


def test_adaface_ema_update_by_hand():
    feats, labels, weight = tiny_case()
    head = build(dict(type='AdaFaceHead', num_classes=3, in_channels=2, scale=4.0, t_alpha=0.1), weight)
    head.train()
    norms = [n for _, n, _ in SAMPLES]
    mean = 0.1 * statistics.mean(norms) + 0.9 * 20.0
    std = 0.1 * statistics.stdev(norms) + 0.9 * 100.0  # unbiased batch std, as the official code
    rows = expected_margin_rows(4.0, lambda t, n, i: adaface_target(t, n, mean, std))
    margin_logits, _ = head.train_logits(feats, labels)  # updates the EMAs, then uses them
    assert torch.allclose(margin_logits, torch.tensor(rows), atol=1e-5)
    assert math.isclose(head.batch_mean.item(), mean, rel_tol=1e-6)
    assert math.isclose(head.batch_std.item(), std, rel_tol=1e-6)
    mean2 = 0.1 * statistics.mean(norms) + 0.9 * mean
    std2 = 0.1 * statistics.stdev(norms) + 0.9 * std
    rows2 = expected_margin_rows(4.0, lambda t, n, i: adaface_target(t, n, mean2, std2))
    loss = head.loss(feats, labels)['loss_cls']  # a second update
    assert torch.allclose(loss, torch.tensor(ce(rows2, labels.tolist())), atol=1e-5)
    assert math.isclose(head.batch_mean.item(), mean2, rel_tol=1e-6)
    assert math.isclose(head.batch_std.item(), std2, rel_tol=1e-6)
    assert 'batch_mean' in head.state_dict() and 'batch_std' in head.state_dict()
    # a batch of one has no std: statistics stay as they are
    head.loss(feats[:1], labels[:1])
    assert math.isclose(head.batch_mean.item(), mean2, rel_tol=1e-6)


# -- A-Softmax ------------------------------------------------------------------
def test_chebyshev_cos():
    c = torch.linspace(-1, 1, 41, dtype=torch.float64)
    assert torch.allclose(chebyshev_cos(c, 4), 8 * c**4 - 8 * c**2 + 1)
    for m in range(0, 6):
        assert torch.allclose(chebyshev_cos(c, m), torch.cos(m * torch.acos(c)), atol=1e-12)


def psi_by_hand(theta: float, m: int = 4) -> float:
    k = min(int(math.floor(m * theta / math.pi)), m - 1)
    return (-1) ** k * math.cos(m * theta) - 2 * k


def test_asoftmax_psi_matches_definition_and_decreases():
    head = MODELS.build(dict(type='ASoftmaxHead', num_classes=3, in_channels=2))
    assert head.margin == 4
    thetas = torch.linspace(0, math.pi, 721, dtype=torch.float64)
    psi = head.psi(torch.cos(thetas))
    expected = torch.tensor([psi_by_hand(t) for t in thetas.tolist()], dtype=torch.float64)
    assert torch.allclose(psi, expected, atol=1e-9)
    assert (psi.diff() < 0).all()  # continuous and monotonically decreasing over [0, pi]
    assert torch.allclose(psi[[0, -1]], torch.tensor([1.0, -7.0], dtype=torch.float64))


@pytest.mark.parametrize('lam', [0.0, 5.0])
def test_asoftmax_by_hand(lam):
    samples = SAMPLES + ((100.0, 1.5, 0),)  # theta_y = 30, 10, 170, 100 deg -> k = 0, 0, 3, 2
    feats, labels, weight = tiny_case(samples)
    head = build(dict(type='ASoftmaxHead', num_classes=3, in_channels=2, margin=4), weight)
    head.asoftmax_lambda = lam
    rows = []
    for a, n, y in samples:
        row = [n * math.cos(angle(a, j)) for j in range(3)]  # features NOT normalised
        t = angle(a, y)
        row[y] = n * (lam * math.cos(t) + psi_by_hand(t)) / (1 + lam)
        rows.append(row)
    assert [min(int(4 * angle(a, y) / math.pi), 3) for a, _, y in samples] == [0, 0, 3, 2]
    check_loss(head, feats, labels, rows)
    plain = [[n * math.cos(angle(a, j)) for j in range(3)] for a, n, _ in samples]
    assert torch.allclose(head(feats), torch.tensor(plain), atol=1e-5)


# -- gradients (float64) ---------------------------------------------------------------
def test_gradcheck_asoftmax_psi_each_piece():
    head = ASoftmaxHead(num_classes=3, in_channels=2, margin=4).double()
    # one angle inside each of the four pieces, away from the joins
    cos = torch.cos(torch.tensor([0.3, 1.1, 1.9, 2.8], dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(head.psi, (cos,))


def loss_fn(head, labels, key='loss_cls'):
    return lambda x: head.loss(x, labels)[key]


def test_gradcheck_asoftmax_loss():
    samples = SAMPLES + ((100.0, 1.5, 0),)
    feats, labels, weight = tiny_case(samples, dtype=torch.float64)
    head = build(dict(type='ASoftmaxHead', num_classes=3, in_channels=2), weight.float()).double()
    head.asoftmax_lambda = 2.0
    assert torch.autograd.gradcheck(loss_fn(head, labels), (feats.requires_grad_(),))


@pytest.mark.parametrize('easy_margin', [False, True])
def test_gradcheck_arcface_with_fallback(easy_margin):
    feats, labels, weight = tiny_case(dtype=torch.float64)
    head = build(dict(type='ArcFaceHead', num_classes=3, in_channels=2, scale=4.0,
                      easy_margin=easy_margin), weight.float()).double()
    assert torch.autograd.gradcheck(loss_fn(head, labels), (feats.requires_grad_(),))

    assert torch.autograd.gradcheck(wrt_weight(head, feats.detach(), labels),
                                    (weight.clone().requires_grad_(),))


def wrt_weight(head, feats, labels):
    """The head's loss as a function of its class vectors (the Parameter swapped for a tensor)."""
    def fn(w):
        del head.fc.weight
        head.fc.weight = w
        return head.loss(feats, labels)['loss_cls']
    return fn


def test_gradcheck_cosface_and_adaface():
    feats, labels, weight = tiny_case(dtype=torch.float64)
    head = build(dict(type='CosFaceHead', num_classes=3, in_channels=2, scale=4.0),
                 weight.float()).double()
    assert torch.autograd.gradcheck(loss_fn(head, labels), (feats.clone().requires_grad_(),))
    # AdaFace detaches the norm in its margin (as the official code), so the true derivative
    # wrt x differs from autograd's by design; its piecewise margin is checked wrt the weights.
    samples = ((30.0, 5.0, 0), (100.0, 0.5, 1), (170.0, 0.1, 0))
    feats, labels, weight = tiny_case(samples, dtype=torch.float64)
    head = build(dict(type='AdaFaceHead', num_classes=3, in_channels=2, scale=4.0),
                 weight.float()).double().eval()
    head.batch_mean.fill_(2.0)
    head.batch_std.fill_(0.5)
    assert torch.autograd.gradcheck(wrt_weight(head, feats, labels), (weight.clone().requires_grad_(),))


# -- centre loss ------------------------------------------------------------------------
def test_center_loss_value_grad_and_update_by_hand():
    head = MODELS.build(dict(type='CenterLoss', num_classes=3, in_channels=2, loss_weight=0.5, alpha=0.4))
    assert 'centers' in dict(head.named_buffers()) and not list(head.parameters())
    c = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    head.centers.copy_(c)
    x = torch.tensor([[2.0, 1.0], [0.0, -1.0], [-2.0, 0.0]], requires_grad=True)
    labels = torch.tensor([0, 0, 2])  # class 1 absent from the batch
    out = head.loss(x, labels)
    assert set(out) == {'loss_center'}
    # 1/(2N) sum ||x_i - c_yi||^2 with the centres *before* the update: (2 + 2 + 2) / 6
    assert torch.allclose(out['loss_center'], torch.tensor(0.5 * 6.0 / 6.0))
    out['loss_center'].backward()
    assert torch.allclose(x.grad, 0.5 * (x.detach() - c[labels]) / 3)  # gradient reaches x only
    alpha = 0.4
    c0 = c[0] - alpha * ((c[0] - x[0]) + (c[0] - x[1])).detach() / (1 + 2)
    c2 = c[2] - alpha * (c[2] - x[2]).detach() / (1 + 1)
    assert torch.allclose(head.centers, torch.stack([c0, c[1], c2]))
    # eval mode: the loss is computed, the centres stay
    head.eval()
    before = head.centers.clone()
    head(x.detach(), labels)
    assert torch.equal(head.centers, before)


def test_center_loss_centres_ignore_the_optimiser():
    head = MODELS.build(dict(type='CenterLoss', num_classes=2, in_channels=2))
    x = torch.ones(4, 2, requires_grad=True)
    opt = torch.optim.SGD([x], lr=0.1)
    head.loss(x, torch.tensor([0, 0, 1, 1]))['loss_center'].backward()
    opt.step()
    # one update from zero centres: c_j = 0 - 0.5 * (2 * (0 - 1)) / 3 = 1/3 for both classes
    assert torch.allclose(head.centers, torch.full((2, 2), 1.0 / 3.0))


def test_center_update_full_table_path_matches(monkeypatch):
    """The distributed path (full class table, one all-reduce) equals the per-batch one."""
    import lrfr.models.fr_heads.center_loss as center_module
    heads = [MODELS.build(dict(type='CenterLoss', num_classes=5, in_channels=3)) for _ in range(2)]
    x, labels = torch.randn(6, 3), torch.tensor([4, 0, 4, 2, 0, 4])
    heads[0].update_centers(x, labels)
    monkeypatch.setattr(center_module, 'get_world_size', lambda: 2)
    heads[1].update_centers(x, labels)  # all_reduce itself is a no-op outside a process group
    assert torch.allclose(heads[0].centers, heads[1].centers)
    assert torch.allclose(heads[0].centers[4], 0.5 * x[labels == 4].sum(0) / 4)


def test_gradcheck_center_loss():
    head = MODELS.build(dict(type='CenterLoss', num_classes=3, in_channels=4)).eval()
    head.centers.normal_()
    x = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(loss_fn(head, torch.tensor([0, 2, 2, 1, 0]), 'loss_center'), (x,))


def test_composite_head_softmax_plus_center():
    head = MODELS.build(dict(type='CompositeHead', heads=[
        dict(type='CenterLoss', num_classes=3, in_channels=4, loss_weight=0.1),
        dict(type='SoftmaxHead', num_classes=3, in_channels=4)]))
    assert head.num_classes == 3 and head.in_channels == 4
    x, labels = torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    assert torch.equal(head(x), head.heads[1](x))  # logits from the first classifier member
    centers = head.heads[0].centers.clone()
    out = head.loss(x, labels)
    assert set(out) == {'loss_cls', 'accuracy', 'loss_center'}
    assert torch.allclose(out['loss_cls'], F.cross_entropy(head.heads[1](x), labels))
    assert torch.allclose(out['loss_center'], 0.1 * (x - centers[labels]).pow(2).sum() / 12)


# -- AMP: margins in float32 even under autocast ------------------------------------------------
@pytest.mark.parametrize('cfg', [
    dict(type='CosFaceHead'), dict(type='ArcFaceHead'), dict(type='AdaFaceHead'),
    dict(type='MarginHead', angular_margin=0.3, additive_margin=0.1), dict(type='ASoftmaxHead'),
    dict(type='CenterLoss')])
def test_amp_margins_in_fp32(cfg):
    head = MODELS.build(dict(cfg, num_classes=5, in_channels=16)).eval()
    x = torch.randn(8, 16) * 3
    labels = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2])
    ref = head.loss(x, labels)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        # autocast is really on: a plain linear would run in bfloat16
        assert F.linear(x, torch.randn(5, 16)).dtype == torch.bfloat16
        amp = head.loss(x, labels)
        amp_bf16_in = head.loss(x.bfloat16(), labels)
        if hasattr(head, 'train_logits'):
            assert head.train_logits(x, labels)[0].dtype == torch.float32
            assert head(x).dtype == torch.float32
    ref_bf16_in = head.loss(x.bfloat16().float(), labels)
    for key in ref:
        assert amp[key].dtype == torch.float32
        assert torch.allclose(amp[key], ref[key], rtol=1e-5, atol=1e-5), key
        assert torch.allclose(amp_bf16_in[key], ref_bf16_in[key], rtol=1e-5, atol=1e-5), key


# -- bad configs and inputs ------------------------------------------------------------------------
@pytest.mark.parametrize('cfg, error, match', [
    (dict(type='ASoftmaxHead', margin=0), ValueError, 'margin'),
    (dict(type='ASoftmaxHead', margin=2.5), TypeError, 'margin'),
    (dict(type='ASoftmaxHead', asoftmax_lambda=-1.0), ValueError, 'asoftmax_lambda'),
    (dict(type='CosFaceHead', margin=-0.1), ValueError, 'margin'),
    (dict(type='ArcFaceHead', margin=-0.5), ValueError, 'margin'),
    (dict(type='ArcFaceHead', margin=4.0), ValueError, 'margin'),
    (dict(type='MarginHead', additive_margin=-0.2), ValueError, 'additive_margin'),
    (dict(type='MarginHead', angular_margin=-0.2), ValueError, 'angular_margin'),
    (dict(type='AdaFaceHead', margin=-0.4), ValueError, 'margin'),
    (dict(type='AdaFaceHead', h=0.0), ValueError, 'h'),
    (dict(type='AdaFaceHead', t_alpha=0.0), ValueError, 't_alpha'),
    (dict(type='CosFaceHead', scale=0.0), ValueError, 'scale'),
    (dict(type='SoftmaxHead', num_classes=1), ValueError, 'num_classes'),
    (dict(type='ArcFaceHead', num_classes=1), ValueError, 'num_classes'),
    (dict(type='SoftmaxHead', in_channels=0), ValueError, 'in_channels'),
    (dict(type='SoftmaxHead', num_classes=3.0), TypeError, 'num_classes'),
    (dict(type='SoftmaxHead', label_smoothing=1.0), ValueError, 'label_smoothing'),
    (dict(type='SoftmaxHead', loss_weight=-1.0), ValueError, 'loss_weight'),
    (dict(type='CenterLoss', num_classes=1), ValueError, 'num_classes'),
    (dict(type='CenterLoss', alpha=0.0), ValueError, 'alpha'),
    (dict(type='CenterLoss', loss_weight=-0.1), ValueError, 'loss_weight'),
    (dict(type='CenterLoss', loss_weight=float('nan')), ValueError, 'loss_weight'),
    (dict(type='ArcFaceHead', loss_weight=float('nan')), ValueError, 'loss_weight'),
    # a member takes only its own margin arguments, not those of its siblings
    (dict(type='CosFaceHead', angular_margin=0.3), TypeError, 'angular_margin'),
    (dict(type='ArcFaceHead', additive_margin=0.1), TypeError, 'additive_margin'),
    (dict(type='CenterLoss', label_smoothing=0.1), TypeError, 'label_smoothing'),
])
def test_bad_configs_raise(cfg, error, match):
    cfg = dict(dict(num_classes=3, in_channels=4), **cfg)
    with pytest.raises(error, match=match):
        MODELS.build(cfg)


@pytest.mark.parametrize('head_type', ['SoftmaxHead', 'ArcFaceHead', 'ASoftmaxHead', 'CenterLoss'])
def test_bad_batches_raise(head_type):
    head = MODELS.build(dict(type=head_type, num_classes=3, in_channels=4))
    x = torch.randn(2, 4)
    with pytest.raises(ValueError, match='DISTRACTOR_LABEL'):
        head.loss(x, torch.tensor([0, DISTRACTOR_LABEL]))
    with pytest.raises(ValueError, match=r'\[0, 3\)'):
        head.loss(x, torch.tensor([0, 3]))
    with pytest.raises(ValueError, match='labels must be'):
        head.loss(x, torch.tensor([0, 1, 2]))
    with pytest.raises(TypeError, match='integer'):
        head.loss(x, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match='in_channels=4'):
        head.loss(torch.randn(2, 5), torch.tensor([0, 1]))


def test_composite_head_bad_configs_raise():
    soft = dict(type='SoftmaxHead', num_classes=3, in_channels=4)
    with pytest.raises(ValueError, match='loss key'):
        MODELS.build(dict(type='CompositeHead', heads=[soft, soft])).loss(
            torch.randn(2, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match='num_classes'):
        MODELS.build(dict(type='CompositeHead', heads=[soft, dict(type='CenterLoss', num_classes=4,
                                                                   in_channels=4)]))
    with pytest.raises(ValueError, match='produces logits'):
        MODELS.build(dict(type='CompositeHead', heads=[dict(type='CenterLoss', num_classes=3,
                                                            in_channels=4)]))
    with pytest.raises(TypeError, match='non-empty list'):
        MODELS.build(dict(type='CompositeHead', heads=soft))
    with pytest.raises(TypeError, match='non-empty list'):
        MODELS.build(dict(type='CompositeHead', heads=[]))


# -- in a recogniser ------------------------------------------------------------------------------
@pytest.mark.parametrize('head', [
    dict(type='ArcFaceHead', num_classes=3, in_channels=4, scale=8.0),
    dict(type='CompositeHead', heads=[dict(type='SoftmaxHead', num_classes=3, in_channels=4),
                                      dict(type='CenterLoss', num_classes=3, in_channels=4)]),
    dict(type='ASoftmaxHead', num_classes=3, in_channels=4)])
def test_heads_plug_into_face_recognizer(head):
    from mmpretrain.structures import DataSample
    backbone = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 4))
    model = MODELS.build(dict(type='FaceRecognizer', backbone=backbone, head=head))
    samples = [DataSample().set_gt_label(y) for y in (0, 2, 1)]
    losses = model(torch.randn(3, 3, 4, 4), samples, mode='loss')
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    assert torch.isfinite(total) and 'accuracy' in losses
    assert all(p.grad is not None for p in model.backbone.parameters())
