"""Gallery search at scale: latency per query, peak memory and recall of the lrfr.apis.index backends.

    python tools/analysis_tools/benchmark_gallery.py --gallery-size 1000000 --dim 512 --queries 1000 \\
        --threads 2 --out gallery_bench.json

A synthetic clustered gallery, TinyFace-like (many identities with a few faces each, most of them
distractors to the queries): ``identities`` centres drawn from N(0, I), faces ``centre + spread * N(0, I)``;
queries are new faces of gallery identities. Each backend (torch brute force, faiss flat, faiss IVF) runs in
its own child process, so its peak resident memory (``ru_maxrss``, the gallery matrix included) is its own.
Reported: index build time, batch latency per query (all queries in one call, divided), single-query latency
(the first ``--single`` queries one by one), peak memory, and for every backend recall@1 against the exact
flat search (the fraction of queries whose top-1 gallery face is the exact one's); IVF once per ``--nprobe``.
"""
import argparse
import json
import os
import os.path as osp
import resource
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

import numpy as np

BACKENDS = ('faiss-flat', 'torch', 'faiss-ivf', 'faiss-hnsw')


def make_data(size: int, dim: int, queries: int, identities: int, spread: float, seed: int):
    """The gallery ``(size, dim)`` and queries ``(queries, dim)``, float32, in blocks (bounded extra memory)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((identities, dim), dtype=np.float32)
    gallery = np.empty((size, dim), np.float32)
    for start in range(0, size, 65536):
        n = min(65536, size - start)
        gallery[start:start + n] = centres[rng.integers(0, identities, n)]
        gallery[start:start + n] += spread * rng.standard_normal((n, dim), dtype=np.float32)
    q = centres[rng.integers(0, identities, queries)] + spread * rng.standard_normal((queries, dim),
                                                                                    dtype=np.float32)
    return gallery, q.astype(np.float32)


def run_backend(args: argparse.Namespace) -> List[Dict[str, float]]:
    """Build one backend's index, search (IVF: once per ``--nprobe``), save each top-1 as
    ``args.result + '.<i>.npy'``; returns one row of timings per search setting."""
    import torch

    from lrfr.apis.index import build_index
    torch.set_num_threads(args.threads)
    try:
        import faiss
        faiss.omp_set_num_threads(args.threads)
    except ImportError:
        pass
    gallery, queries = make_data(args.gallery_size, args.dim, args.queries, args.identities, args.spread,
                                 args.seed)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    backend = args.only
    params = dict(backend='torch') if backend == 'torch' else dict(backend='faiss')
    if backend == 'faiss-ivf':
        params.update(kind='ivf', nlist=args.nlist, nprobe=args.nprobe[0])
    elif backend == 'faiss-hnsw':
        params.update(kind='hnsw', hnsw_m=32, ef_search=args.ef_search)
    start = time.perf_counter()
    index = build_index(args.dim, 'euclidean', **params)
    index.add(gallery)
    build_s = time.perf_counter() - start
    rows = []
    for i, nprobe in enumerate(args.nprobe if backend == 'faiss-ivf' else [None]):
        if nprobe is not None:
            index.index.nprobe = index.nprobe = nprobe
        start = time.perf_counter()
        for j in range(args.single):
            index.search(queries[j:j + 1], args.top_k)
        single_ms = 1000 * (time.perf_counter() - start) / max(args.single, 1)
        start = time.perf_counter()
        _, idx = index.search(queries, args.top_k)
        batch_ms = 1000 * (time.perf_counter() - start) / len(queries)
        np.save(f'{args.result}.{i}.npy', idx[:, 0])
        rows.append(dict(backend=backend, build_s=build_s, batch_ms_per_query=batch_ms,
                         single_ms_per_query=single_ms,
                         peak_rss_gib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
                         data_rss_gib=base_rss / 2**20,
                         **{k: v for k, v in params.items() if k not in ('backend', 'nprobe')},
                         **({'nprobe': nprobe} if nprobe is not None else {})))
    return rows


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Benchmark gallery search backends on a synthetic gallery')
    parser.add_argument('--gallery-size', type=int, default=1_000_000)
    parser.add_argument('--dim', type=int, default=512)
    parser.add_argument('--queries', type=int, default=1000)
    parser.add_argument('--identities', type=int, default=100_000, help='clusters in the gallery')
    parser.add_argument('--spread', type=float, default=0.7, help='face noise around its identity centre')
    parser.add_argument('--top-k', type=int, default=5)
    parser.add_argument('--single', type=int, default=20, help='queries also timed one by one')
    parser.add_argument('--nlist', type=int, default=1024, help='IVF cells')
    parser.add_argument('--nprobe', type=int, nargs='+', default=[16],
                        help='IVF cells visited per query (several: one row each, one index)')
    parser.add_argument('--ef-search', type=int, default=64, help='HNSW search depth')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--backends', nargs='+', choices=BACKENDS, default=['faiss-flat', 'torch', 'faiss-ivf'],
                        help='faiss-flat (the exact reference) is always run first')
    parser.add_argument('--out', help='write the results as JSON')
    parser.add_argument('--only', choices=BACKENDS, help=argparse.SUPPRESS)  # the child's backend
    parser.add_argument('--result', help=argparse.SUPPRESS)  # the child's top-1 file
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.only:
        print(json.dumps(run_backend(args)))
        return
    backends: List[str] = ['faiss-flat'] + [b for b in args.backends if b != 'faiss-flat']
    rows = []
    with tempfile.TemporaryDirectory(prefix='lrfr_gallery_bench_') as tmp:
        for backend in backends:
            result = osp.join(tmp, backend)
            child = [sys.executable, osp.abspath(__file__), '--only', backend, '--result', result,
                     *(argv if argv is not None else sys.argv[1:])]
            proc = subprocess.run(child, capture_output=True, text=True,
                                  env={**os.environ, 'OMP_NUM_THREADS': str(args.threads)})
            if proc.returncode != 0:
                sys.exit(f'{backend} failed: {proc.stderr.strip().splitlines()[-1:]}')
            exact = np.load(osp.join(tmp, 'faiss-flat.0.npy'))
            for i, row in enumerate(json.loads(proc.stdout.strip().splitlines()[-1])):
                row['recall_at_1_vs_exact'] = float((np.load(f'{result}.{i}.npy') == exact).mean())
                rows.append(row)
                name = backend + (f' nprobe={row["nprobe"]}' if 'nprobe' in row else '')
                print(f'{name:22s} build {row["build_s"]:6.1f} s  batch {row["batch_ms_per_query"]:8.3f} '
                      f'ms/query  single {row["single_ms_per_query"]:8.2f} ms/query  peak RSS '
                      f'{row["peak_rss_gib"]:5.2f} GiB (data {row["data_rss_gib"]:4.2f})  recall@1 '
                      f'{row["recall_at_1_vs_exact"]:.4f}', flush=True)
    setup = {k: v for k, v in vars(args).items() if k not in ('only', 'result', 'out')}
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(setup=setup, results=rows), f, indent=1)
        print(f'written to {args.out}')


if __name__ == '__main__':
    main()
