"""Partial FC vs the full margin head on 2 CPU processes (gloo): step time and peak memory per rank.

    python tools/analysis_tools/benchmark_partial_fc.py --num-classes 100000 --batch 64 --steps 10

Each variant runs in its own 2 spawned processes (so the peak RSS is the variant's own):

* ``full``: an ``ArcFaceHead`` over all classes on every rank, its weight gradient all-reduced
  (averaged) as DistributedDataParallel does;
* ``pfc-1.0`` / ``pfc-<r>``: ``PartialFCHead`` (ArcFace margin) holding ``C / 2`` centres per rank,
  with ``sample_rate`` 1.0 and ``--sample-rate``.

A step is forward + backward + SGD (momentum) update of the head, on fixed random embeddings of
``--batch`` rows per rank. Reported per rank: the median step time over ``--steps`` (after 2
warm-up steps), the head's parameter bytes, and the growth of the peak resident memory
(``ru_maxrss``) from just before the head is built to the end (weights, gradients, momentum,
logits and the softmax's buffers).
"""
import argparse
import os
import os.path as osp
import resource
import statistics
import sys
import tempfile
import time
from typing import Dict, List, Optional

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_head(variant: str, num_classes: int, dim: int, sample_rate: float) -> torch.nn.Module:
    """The head of a variant: ``full`` or ``pfc-<sample rate>``."""
    import lrfr.models  # noqa: F401  (registers the heads)
    from lrfr.registry import MODELS
    margin = dict(type='ArcFaceHead', margin=0.5)
    if variant == 'full':
        return MODELS.build(dict(margin, num_classes=num_classes, in_channels=dim))
    return MODELS.build(dict(type='PartialFCHead', num_classes=num_classes, in_channels=dim, margin=margin,
                             sample_rate=sample_rate))


def _worker(rank: int, world: int, init_file: str, out_file: str, variant: str, args: dict) -> None:
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank, world_size=world)
    try:
        g = torch.Generator().manual_seed(rank)
        feats = torch.randn(args['batch'], args['dim'], generator=g)
        labels = torch.randint(0, args['num_classes'], (args['batch'],), generator=g)
        before = peak_rss_mib()
        torch.manual_seed(0)
        head = build_head(variant, args['num_classes'], args['dim'], args['sample_rate'])
        optimizer = torch.optim.SGD(head.parameters(), lr=0.1, momentum=0.9)
        times: List[float] = []
        for step in range(args['steps'] + 2):
            dist.barrier()
            start = time.perf_counter()
            x = feats.clone().requires_grad_()
            head.loss(x, labels)['loss_cls'].backward()
            if variant == 'full':  # DDP's gradient averaging of a replicated classifier
                for p in head.parameters():
                    dist.all_reduce(p.grad)
                    p.grad /= world
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if step >= 2:
                times.append(time.perf_counter() - start)
        result = dict(step_s=statistics.median(times), param_bytes=sum(p.numel() * p.element_size()
                                                                       for p in head.parameters()),
                      peak_mib=peak_rss_mib() - before)
        torch.save(result, f'{out_file}.{rank}')
    finally:
        dist.destroy_process_group()


def run_variant(variant: str, args: dict, world: int = 2) -> Dict[str, float]:
    """Run one variant on ``world`` gloo processes; the worst rank's step time and memory."""
    with tempfile.TemporaryDirectory(prefix='lrfr_bench_pfc_') as tmp:
        out = osp.join(tmp, 'result')
        mp.spawn(_worker, args=(world, osp.join(tmp, 'init'), out, variant, args), nprocs=world, join=True)
        results = [torch.load(f'{out}.{r}') for r in range(world)]
    return {key: max(r[key] for r in results) for key in results[0]}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Partial FC vs full head: step time and memory, 2 processes')
    parser.add_argument('--num-classes', type=int, default=100000)
    parser.add_argument('--dim', type=int, default=512, help='embedding size')
    parser.add_argument('--batch', type=int, default=64, help='embeddings per rank')
    parser.add_argument('--steps', type=int, default=10, help='timed steps (after 2 warm-up steps)')
    parser.add_argument('--sample-rate', type=float, default=0.1, help='the sampled Partial FC variant')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> List[tuple]:
    args = parse_args(argv)
    base = dict(num_classes=args.num_classes, dim=args.dim, batch=args.batch, steps=args.steps)
    rows = []
    for name, variant, rate in (('full head (DDP-style)', 'full', 1.0), ('Partial FC, sample 1.0', 'pfc', 1.0),
                                (f'Partial FC, sample {args.sample_rate}', 'pfc', args.sample_rate)):
        res = run_variant(variant, dict(base, sample_rate=rate))
        rows.append((name, res['step_s'] * 1000, res['param_bytes'] / 2**20, res['peak_mib']))
    print(f'{args.num_classes} classes x {args.dim}-d, {args.batch} embeddings per rank, 2 gloo processes, '
          f'1 thread each, median of {args.steps} steps (torch {torch.__version__}, {sys.platform})')
    print('| head | step (ms) | centres per rank (MiB) | peak RSS growth per rank (MiB) |')
    print('|---|---:|---:|---:|')
    for name, step_ms, param_mib, peak in rows:
        print(f'| {name} | {step_ms:.0f} | {param_mib:.1f} | {peak:.0f} |')
    return rows


if __name__ == '__main__':
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    main()
