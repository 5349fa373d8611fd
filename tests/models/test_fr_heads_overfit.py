"""Each head family learns: a tiny MLP embedding of 4 Gaussian identities overfits on CPU."""
from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MessageHub
from torch import nn

import lrfr.engine  # noqa: F401  (registers the hooks)
import lrfr.models  # noqa: F401  (registers the heads)
from lrfr.registry import HOOKS, MODELS

NUM_IDS, PER_ID, IN_DIM, EMBED_DIM = 4, 16, 16, 8


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: thread start-up and contention on the shared cores cost more than they save."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def identities():
    """64 samples: 4 well-separated Gaussian clusters in 16-D (seeded by conftest)."""
    means = torch.randn(NUM_IDS, IN_DIM) * 2.0
    labels = torch.arange(NUM_IDS).repeat_interleave(PER_ID)
    return means[labels] + torch.randn(labels.numel(), IN_DIM), labels


@pytest.mark.parametrize('head_cfg, steps', [
    (dict(type='SoftmaxHead'), 60),
    (dict(type='CompositeHead', heads=[
        dict(type='SoftmaxHead', num_classes=NUM_IDS, in_channels=EMBED_DIM),
        dict(type='CenterLoss', num_classes=NUM_IDS, in_channels=EMBED_DIM, loss_weight=0.01)]), 60),
    (dict(type='CosFaceHead', scale=16.0), 100),
    (dict(type='ArcFaceHead', scale=16.0), 100),
    (dict(type='AdaFaceHead', scale=16.0), 100),
    (dict(type='ASoftmaxHead'), 100),
])
def test_head_overfits(head_cfg, steps):
    x, labels = identities()
    embed = nn.Sequential(nn.Linear(IN_DIM, 32), nn.ReLU(), nn.Linear(32, EMBED_DIM))
    if head_cfg['type'] != 'CompositeHead':
        head_cfg = dict(head_cfg, num_classes=NUM_IDS, in_channels=EMBED_DIM)
    head = MODELS.build(head_cfg)
    model = nn.ModuleDict(dict(embed=embed, head=head)).train()
    # A-Softmax trains with the annealed blend, driven by its hook on a stand-in runner
    hook = HOOKS.build(dict(type='ASoftmaxLambdaHook', base=100.0, gamma=0.5, lambda_min=1.0))
    runner = SimpleNamespace(model=model, iter=0, message_hub=MessageHub.get_instance('overfit'))
    uses_lambda = head_cfg['type'] == 'ASoftmaxHead'
    opt = torch.optim.Adam(model.parameters(), lr=0.01)

    def step():
        if uses_lambda:
            hook.before_train_iter(runner, runner.iter)
        out = head.loss(embed(x), labels)
        total = sum(v for k, v in out.items() if 'loss' in k)
        return total, out

    first, _ = step()
    for runner.iter in range(steps):
        opt.zero_grad()
        total, out = step()
        total.backward()
        opt.step()
    with torch.no_grad():
        last, out = step()
        accuracy = (head(embed(x)).argmax(1) == labels).float().mean().item() * 100
    assert last.item() < 0.2 * first.item(), (first.item(), last.item())
    assert out['accuracy'].item() >= 90.0 and accuracy >= 90.0
    if uses_lambda:
        assert head.asoftmax_lambda == hook.lambda_at(runner.iter) < 10.0
    if head_cfg['type'] == 'CompositeHead':
        # the centres followed the class means of the embeddings
        emb = embed(x).detach()
        means = torch.stack([emb[labels == j].mean(0) for j in range(NUM_IDS)])
        centers = head.heads[1].centers
        assert (centers - means).norm(dim=1).max() < 0.2 * means.norm(dim=1).min()
