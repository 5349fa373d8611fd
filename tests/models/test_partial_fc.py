"""Partial FC: equal to the full margin head (1 process, and 2 gloo processes), sampling keeps positives,
centre memory per rank halves on 2 ranks."""
import os.path as osp

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

import lrfr.models  # noqa: F401  (registers the heads)
from lrfr.models.fr_heads.partial_fc import PartialFCHead, ddp_ignore_sharded, sample_centres, shard_range
from lrfr.registry import MODELS

MARGINS = {'arcface': dict(type='ArcFaceHead', margin=0.5), 'cosface': dict(type='CosFaceHead', margin=0.35),
           'adaface': dict(type='AdaFaceHead', margin=0.4)}
NUM_CLASSES, DIM, PER_RANK = 11, 16, 4  # 11 classes: uneven shards (6 + 5)


def batch(seed: int = 0):
    """The global batch of 2 ranks: labels on both shards, embeddings of varied norms."""
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(2 * PER_RANK, DIM, generator=g) * torch.linspace(0.5, 3.0, 2 * PER_RANK).unsqueeze(1)
    labels = torch.tensor([0, 7, 3, 10, 5, 6, 3, 9])
    return feats, labels


def full_head(name: str) -> nn.Module:
    torch.manual_seed(1)
    head = MODELS.build(dict(MARGINS[name], num_classes=NUM_CLASSES, in_channels=DIM))
    head.train()
    return head


def full_result(name: str, feats: torch.Tensor, labels: torch.Tensor) -> dict:
    head = full_head(name)
    feats = feats.clone().requires_grad_()
    out = head.loss(feats, labels)
    out['loss_cls'].backward()
    stats = (head.batch_mean.item(), head.batch_std.item()) if name == 'adaface' else None
    return dict(loss=out['loss_cls'].item(), accuracy=out['accuracy'].item(), grad_feats=feats.grad,
                grad_weight=head.fc.weight.grad, stats=stats)


def partial_from_full(name: str, **kwargs) -> PartialFCHead:
    full = full_head(name)
    head = PartialFCHead(NUM_CLASSES, DIM, margin=MARGINS[name], **kwargs)
    with torch.no_grad():
        head.weight.copy_(full.fc.weight[head.class_start:head.class_start + head.num_local])
    head.train()
    return head


def _worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank, world_size=world)
    try:
        feats, labels = batch()
        rows = slice(rank * PER_RANK, (rank + 1) * PER_RANK)
        results = {}
        for name in MARGINS:
            head = partial_from_full(name)
            local = feats[rows].clone().requires_grad_()
            out = head.loss(local, labels[rows])
            out['loss_cls'].backward()
            results[name] = dict(loss=out['loss_cls'].item(), accuracy=out['accuracy'].item(),
                                 grad_feats=local.grad, grad_weight=head.weight.grad, start=head.class_start,
                                 stats=(head.margin.batch_mean.item(), head.margin.batch_std.item())
                                 if name == 'adaface' else None)
        torch.manual_seed(rank)
        sampled = partial_from_full('arcface', sample_rate=0.5)
        local = feats[rows].clone().requires_grad_()
        out = sampled.loss(local, labels[rows])
        out['loss_cls'].backward()
        results['sampled'] = dict(loss=out['loss_cls'].item(),
                                  index=sampled._last_index, start=sampled.class_start,
                                  num_local=sampled.num_local, grad_weight=sampled.weight.grad)
        head = partial_from_full('cosface')
        full_weight = full_head('cosface').fc.weight.detach()
        results['state'] = dict(gathered=head.gather_weight(), ungathered=head.state_dict()['weight'].shape)
        fresh = PartialFCHead(NUM_CLASSES, DIM, margin=MARGINS['cosface'])
        fresh.load_state_dict({'weight': full_weight})  # a full (C, D) matrix: the rank keeps its rows
        results['state']['loaded'] = fresh.weight.detach().clone()
        try:
            fresh.load_state_dict({'weight': torch.zeros(0, DIM)})
        except ValueError as e:
            results['state']['error'] = str(e)
        big = PartialFCHead(1000, 512, margin=MARGINS['arcface'])
        results['bytes'] = sum(p.numel() * p.element_size() for p in big.parameters())
        torch.save(results, osp.join(out_dir, f'rank{rank}.pth'))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope='module')
def two_ranks(tmp_path_factory):
    """Run :func:`_worker` on 2 gloo processes once; their results per rank."""
    tmp = tmp_path_factory.mktemp('pfc')
    mp.spawn(_worker, args=(2, str(tmp / 'init'), str(tmp)), nprocs=2, join=True)
    return [torch.load(tmp / f'rank{r}.pth') for r in range(2)]


def test_shard_range_covers_every_class_once():
    assert [shard_range(11, r, 2) for r in range(2)] == [(0, 6), (6, 5)]
    assert [shard_range(10, r, 4) for r in range(4)] == [(0, 3), (3, 3), (6, 2), (8, 2)]


@pytest.mark.parametrize('name', list(MARGINS))
def test_single_process_equals_the_full_head(name):
    feats, labels = batch()
    want = full_result(name, feats, labels)
    head = partial_from_full(name)
    assert (head.class_start, head.num_local) == (0, NUM_CLASSES)
    x = feats.clone().requires_grad_()
    out = head.loss(x, labels)
    out['loss_cls'].backward()
    assert out['loss_cls'].item() == pytest.approx(want['loss'], abs=1e-5)
    assert out['accuracy'].item() == want['accuracy']
    torch.testing.assert_close(x.grad, want['grad_feats'], atol=1e-5, rtol=0)
    torch.testing.assert_close(head.weight.grad, want['grad_weight'], atol=1e-5, rtol=0)
    torch.testing.assert_close(head(feats), full_head(name)(feats), atol=1e-5, rtol=0)


@pytest.mark.parametrize('name', list(MARGINS))
def test_two_gloo_ranks_equal_the_full_head(two_ranks, name):
    feats, labels = batch()
    want = full_result(name, feats, labels)
    for rank, res in enumerate(two_ranks):
        got = res[name]
        assert got['loss'] == pytest.approx(want['loss'], abs=1e-5)  # every rank: the loss of the full softmax
        assert got['accuracy'] == want['accuracy']
        # the rank's rows of the global-batch gradient, times W (DDP's averaging of the backbone divides by W)
        torch.testing.assert_close(got['grad_feats'] / 2, want['grad_feats'][rank * PER_RANK:(rank + 1) * PER_RANK],
                                   atol=1e-5, rtol=0)
        if name != 'adaface':  # = what a replicated full head gives the rank's backbone under DDP (local loss)
            local = full_result(name, feats[rank * PER_RANK:(rank + 1) * PER_RANK],
                                labels[rank * PER_RANK:(rank + 1) * PER_RANK])
            torch.testing.assert_close(got['grad_feats'], local['grad_feats'], atol=1e-5, rtol=0)
        start, count = shard_range(NUM_CLASSES, rank, 2)
        assert got['start'] == start and got['grad_weight'].shape == (count, DIM)
        torch.testing.assert_close(got['grad_weight'], want['grad_weight'][start:start + count], atol=1e-5, rtol=0)
        if name == 'adaface':  # norm statistics from the whole global batch, as the full head's
            assert got['stats'] == pytest.approx(want['stats'], abs=1e-5)


def test_two_gloo_ranks_sampling_keeps_positives(two_ranks):
    _, labels = batch()
    for res in (r['sampled'] for r in two_ranks):
        start, count = res['start'], res['num_local']
        positives = {int(y) - start for y in labels if start <= y < start + count}
        kept = set(res['index'].tolist())
        assert positives <= kept and len(kept) == max(int(0.5 * count), len(positives))
        assert torch.isfinite(torch.tensor(res['loss']))
        dropped = [c for c in range(count) if c not in kept]
        assert dropped, 'with these labels some negatives must be dropped'
        # the positives are here; dropped centres get no gradient
        assert res['grad_weight'][dropped].abs().max() == 0


def test_state_dict_gathers_and_loads_shards(two_ranks):
    full_weight = full_head('cosface').fc.weight.detach()
    for rank, res in enumerate(two_ranks):
        state = res['state']
        torch.testing.assert_close(state['gathered'], full_weight, rtol=0, atol=0)
        assert state['ungathered'] == (0, DIM)  # one rank alone has no full matrix to save
        start, count = shard_range(NUM_CLASSES, rank, 2)
        torch.testing.assert_close(state['loaded'], full_weight[start:start + count], rtol=0, atol=0)
        assert 'weight holds 0 centres, expected all 11' in state['error']


def test_centre_memory_per_rank_halves(two_ranks):
    full = MODELS.build(dict(type='ArcFaceHead', num_classes=1000, in_channels=512))
    full_bytes = sum(p.numel() * p.element_size() for p in full.parameters())
    assert [r['bytes'] for r in two_ranks] == [full_bytes // 2] * 2 == [1000 * 512 * 4 // 2] * 2


def test_sample_centres_keeps_positives_and_remaps():
    local = torch.tensor([7, -1, 2, 7, 9])
    index, remapped = sample_centres(local, num_local=10, num_sample=5, generator=torch.Generator().manual_seed(0))
    assert len(index) == 5 and {2, 7, 9} <= set(index.tolist()) and index.tolist() == sorted(index.tolist())
    assert [int(index[r]) if r >= 0 else -1 for r in remapped.tolist()] == local.tolist()
    index, _ = sample_centres(local, num_local=10, num_sample=1)
    assert index.tolist() == [2, 7, 9]  # never fewer than the positives


def test_bad_arguments_and_ddp_ignore():
    with pytest.raises(ValueError, match=r'sample_rate must be in \(0, 1\], got 0'):
        PartialFCHead(10, 4, margin=MARGINS['arcface'], sample_rate=0)
    with pytest.raises(TypeError, match='margin must be a margin head .* got SoftmaxHead'):
        PartialFCHead(10, 4, margin=dict(type='SoftmaxHead'))
    with pytest.raises(ValueError, match='label_smoothing is not supported'):
        PartialFCHead(10, 4, margin=MARGINS['arcface'], label_smoothing=0.1)
    with pytest.raises(ValueError, match=r'labels must lie in \[0, 10\)'):
        PartialFCHead(10, 4, margin=MARGINS['arcface']).loss(torch.randn(2, 4), torch.tensor([1, 10]))
    model = nn.ModuleDict(dict(head=PartialFCHead(10, 4, margin=MARGINS['adaface']), other=nn.Linear(2, 2)))
    assert ddp_ignore_sharded(model) == ['head.weight'] == model._ddp_params_and_buffers_to_ignore


def test_benchmark_tool_reports_the_three_heads(capsys, monkeypatch):
    import importlib
    # importable by name: the spawned workers unpickle its worker function
    monkeypatch.syspath_prepend(osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
                                         'tools', 'analysis_tools'))
    tool = importlib.import_module('benchmark_partial_fc')
    rows = tool.main(['--num-classes', '2000', '--dim', '32', '--batch', '4', '--steps', '1', '--sample-rate', '0.5'])
    full, pfc, sampled = rows
    assert full[2] == pytest.approx(2000 * 32 * 4 / 2**20) and pfc[2] == sampled[2] == pytest.approx(full[2] / 2)
    assert '| Partial FC, sample 0.5 |' in capsys.readouterr().out


def test_runner_trains_partial_fc_on_two_ddp_processes(tmp_path):
    """tools/train.py under torch.distributed.run, 2 gloo processes, the wrapper keeping the shards out of DDP."""
    import os
    import subprocess
    import sys
    from lrfr.datasets.converters.demo import ensure_demo
    repo = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    ensure_demo(str(tmp_path / 'data' / 'demo_tinyface'))
    config = tmp_path / 'pfc_demo.py'
    config.write_text(
        f"_base_ = [{osp.join(repo, 'configs', 'demo', 'centreface_1xb32_demo-hr-native.py')!r}]\n"
        "load_from = None\n"
        "model = dict(head=dict(_delete_=True, type='PartialFCHead', num_classes=25, in_channels=128,\n"
        "                       margin=dict(type='ArcFaceHead', margin=0.3, scale=16.0), sample_rate=0.5))\n"
        "model_wrapper_cfg = dict(type='lrfr.PartialFCDistributedDataParallel')\n"
        "custom_hooks = [dict(type='PartialFCCheckpointHook')]\n"
        "default_hooks = dict(checkpoint=dict(save_best='tinyface/mAP', rule='greater'))\n")
    env = {**os.environ, 'PYTHONPATH': repo, 'OMP_NUM_THREADS': '1'}
    proc = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', '--master_port=29571',
         osp.join(repo, 'tools', 'train.py'), str(config), '--launcher', 'pytorch', '--work-dir', 'work_dirs/pfc',
         '--cfg-options', 'train_cfg.max_iters=4', 'train_cfg.val_interval=2', 'default_hooks.checkpoint.interval=4',
         'optim_wrapper.optimizer.lr=0',  # the same mAP at iterations 2 and 4: the best is iteration 2's save
         'default_hooks.logger.interval=1', 'train_dataloader.batch_size=8'],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=400)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert 'Distributed training: True' in log and 'loss_cls' in log
    state = torch.load(tmp_path / 'work_dirs' / 'pfc' / 'final.pth', map_location='cpu')['state_dict']
    assert state['head.weight'].shape == (25, 128)  # every rank's shard (13 + 12), gathered before saving
    assert state['head.weight'].abs().sum(dim=1).min() > 0  # no empty row: rank 1's centres are there
    best = sorted((tmp_path / 'work_dirs' / 'pfc').glob('best_*.pth'))
    assert [p.name for p in best] == ['best_tinyface_mAP_iter_2.pth'], best  # saved after a validation only
    assert torch.load(best[0], map_location='cpu')['state_dict']['head.weight'].shape == (25, 128)  # gathered too
