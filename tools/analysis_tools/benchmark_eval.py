"""Time lrfr's identification evaluator against a sort-based reference and the bare GEMM.

Random features at TinyFace scale by default (3,728 probes x 157,871 gallery images x
512-d; 4,443 gallery matches of 2,569 identities, the rest distractors). In one run it
times:

(a) ``lrfr.evaluation.functional.evaluate_identification`` (counting, no sort), in
    official and exact AP mode;
(b) a sort-based reference: the same score blocks, then a stable ``argsort`` of each
    probe's gallery row and the ``compute_AP.m`` walk, vectorised (both modes at once);
(c) the matrix product alone: ``probe_block @ gallery.T`` for the same probe blocks;

repeated ``--repeat`` times, interleaved (a, b, c, a, b, c, ...), keeping each best time;

and prints seconds, the ratios lrfr/reference and lrfr/GEMM, and each method's peak
memory: the rise of the process's resident set size above its level before the method
(sampled every 2 ms from ``/proc/self/statm``), or on CUDA ``torch.cuda.max_memory_allocated``.

Example (full scale with the official protocol's labels, the figures in docs/benchmark.md;
the folder holds the TinyFace release's ``probe_img_ID_pairs.mat`` and
``gallery_match_img_ID_pairs.mat``)::

    python tools/analysis_tools/benchmark_eval.py --protocol data/tinyface/Testing_Set \
        --repeat 1 --threads 2

Scaled down (about a second)::

    python tools/analysis_tools/benchmark_eval.py --scale 0.05
"""
import argparse
import functools
import json
import os
import resource
import threading
import time
from typing import Callable, Dict, Tuple

import numpy as np
import torch

from lrfr.evaluation.functional import OFFICIAL_MAX_RANK, evaluate_identification
from lrfr.structures import DISTRACTOR_LABEL

TINYFACE = dict(num_probes=3728, num_gallery=157871, num_mated=4443, num_ids=2569,
                num_probe_ids=2563, dim=512)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--scale', type=float, default=1.0,
                        help='multiply every count (probes, gallery, ids) by this factor')
    parser.add_argument('--dim', type=int, default=TINYFACE['dim'], help='feature dimension')
    parser.add_argument('--protocol', default=None,
                        help='folder with the official probe_img_ID_pairs.mat and '
                        'gallery_match_img_ID_pairs.mat: use their identity labels (scale 1 only)')
    parser.add_argument('--features', default='random', choices=['random', 'clustered'],
                        help="'random': i.i.d. Gaussian (true matches rank anywhere: the most "
                        "counting work); 'clustered': identity centre + noise, so true matches "
                        'rank near the top as with a trained model')
    parser.add_argument('--noise', type=float, default=2.2,
                        help='clustered features: noise std relative to the centres')
    parser.add_argument('--dtype', default='float32', choices=['float32', 'float64'])
    parser.add_argument('--device', default='cpu', help="'cpu' or 'cuda'")
    parser.add_argument('--chunk-size', type=int, default=None, help='probes per block')
    parser.add_argument('--gallery-chunk-size', type=int, default=None,
                        help='gallery columns per block (lrfr only)')
    parser.add_argument('--ap-mode', nargs='+', default=['official', 'exact'],
                        choices=['official', 'exact'], help='time lrfr in these modes')
    parser.add_argument('--repeat', type=int, default=1, help='timed runs per method (min is kept)')
    parser.add_argument('--threads', type=int, default=None, help='torch.set_num_threads')
    parser.add_argument('--skip-reference', action='store_true', help='do not run (b)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', default=None, help='also write the figures to this JSON file')
    return parser.parse_args()


def make_labels(args: argparse.Namespace, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """Probe and gallery labels with TinyFace's shape: every id in the gallery, a skewed count per id."""
    if args.protocol:
        import mat4py
        probe = np.asarray(mat4py.loadmat(os.path.join(args.protocol, 'probe_img_ID_pairs.mat'))
                           ['probe_ids']).ravel()
        mated = np.asarray(mat4py.loadmat(os.path.join(
            args.protocol, 'gallery_match_img_ID_pairs.mat'))['gallery_ids']).ravel()
        num_gallery = round(TINYFACE['num_gallery'] * args.scale)
        return probe.astype(np.int64), np.concatenate(
            [mated, np.full(num_gallery - mated.size, DISTRACTOR_LABEL)]).astype(np.int64)

    def scaled(key: str) -> int:
        return max(1, round(TINYFACE[key] * args.scale))

    # Like TinyFace's protocol: each test identity's n >= 2 images split in half between
    # gallery (ceil) and probe (floor), n drawn from a heavy tail (P(n) ~ n^-3, n <= 58),
    # which gives about TinyFace's figures (4.3k matches, 3.7k probes, 3.2 true matches per probe).
    num_ids = scaled('num_ids')
    sizes = np.arange(2, 59)
    weights = sizes ** -3.0
    n = rng.choice(sizes, num_ids, p=weights / weights.sum())
    mated = np.repeat(np.arange(num_ids), (n + 1) // 2)
    probe = rng.permutation(np.repeat(np.arange(num_ids), n // 2))
    distractors = np.full(max(0, scaled('num_gallery') - mated.size), DISTRACTOR_LABEL)
    # Official order: the gallery matches (sorted by id), then the distractors.
    return probe, np.concatenate([mated, distractors])


def make_features(args: argparse.Namespace, probe_lbl: np.ndarray, gallery_lbl: np.ndarray,
                  dtype: torch.dtype) -> Tuple[torch.Tensor, torch.Tensor]:
    """Random features; 'clustered': ``centre[id] + noise * N(0, I)`` for labelled images and
    ``sqrt(1 + noise^2) * N(0, I)`` for distractors (same norm statistics)."""
    gen = torch.Generator().manual_seed(args.seed)
    gallery = torch.randn(gallery_lbl.size, args.dim, generator=gen, dtype=dtype)
    probe = torch.randn(probe_lbl.size, args.dim, generator=gen, dtype=dtype)
    if args.features == 'clustered':
        num_ids = int(max(probe_lbl.max(), gallery_lbl.max())) + 1
        centres = torch.randn(num_ids, args.dim, generator=gen, dtype=dtype)
        labelled = torch.as_tensor(gallery_lbl != DISTRACTOR_LABEL)
        gallery.mul_(args.noise)
        gallery[labelled] += centres[torch.as_tensor(gallery_lbl[gallery_lbl != DISTRACTOR_LABEL])]
        gallery[~labelled] *= (1 + args.noise ** 2) ** 0.5 / args.noise
        probe = probe.mul_(args.noise) + centres[torch.as_tensor(probe_lbl)]
    return probe, gallery


class PeakMemory:
    """Peak rise of resident memory (CPU: sampled RSS; CUDA: max_memory_allocated) in a block."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak = 0

    @staticmethod
    def _rss() -> int:
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')

    def __enter__(self) -> 'PeakMemory':
        if self.device.type == 'cuda':
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
            return self
        self.base = self._rss()
        self._stop = threading.Event()
        self._max = self.base

        def poll() -> None:
            while not self._stop.wait(0.002):
                self._max = max(self._max, self._rss())

        self._thread = threading.Thread(target=poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == 'cuda':
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self.base
            return
        self._stop.set()
        self._thread.join()
        self.peak = max(self._max, self._rss()) - self.base


def timed(methods: Dict[str, Callable[[], object]], repeat: int,
          device: torch.device) -> Dict[str, Tuple[float, float, int, object]]:
    """Run the methods in turn ``repeat`` times (interleaved, so a burst of load elsewhere
    hits them alike); keep each one's best wall time, best process CPU time (less
    sensitive to other jobs on a shared machine), peak memory and output."""
    best: Dict[str, Tuple[float, float, int, object]] = {}
    for _ in range(repeat):
        for name, fn in methods.items():
            with PeakMemory(device) as mem:
                start, cpu = time.perf_counter(), time.process_time()
                out = fn()
                if device.type == 'cuda':
                    torch.cuda.synchronize()
                sec, cpu = time.perf_counter() - start, time.process_time() - cpu
            old = best.get(name, (float('inf'), float('inf'), 0, None))
            best[name] = (min(old[0], sec), min(old[1], cpu), max(old[2], mem.peak), out)
    return best


def gemm_only(probe: torch.Tensor, gallery: torch.Tensor, chunk: int) -> None:
    for a in range(0, probe.shape[0], chunk):
        probe[a:a + chunk] @ gallery.T


def sort_reference(probe: torch.Tensor, probe_lbl: np.ndarray, gallery: torch.Tensor,
                   gallery_lbl: np.ndarray, chunk: int) -> Dict[str, Dict[str, float]]:
    """Sort each probe's row (stable), then the compute_AP.m walk over the true-match
    positions; both AP modes from the same sort."""
    gallery_lbl_t = torch.as_tensor(gallery_lbl, device=gallery.device)
    sq = (gallery * gallery).sum(1)
    num_gallery = gallery.shape[0]
    aps: Dict[str, list] = dict(official=[], exact=[])
    first_hits = []
    for a in range(0, probe.shape[0], chunk):
        scores = torch.addmm(sq, probe[a:a + chunk] * -2.0, gallery.T)
        order = torch.argsort(scores, dim=1, stable=True)
        labels = torch.as_tensor(probe_lbl[a:a + chunk], device=gallery.device)
        good = (gallery_lbl_t[order] == labels[:, None]) & (labels[:, None] != DISTRACTOR_LABEL)
        for row in good.cpu().numpy():
            r = np.flatnonzero(row).astype(np.float64) + 1  # 1-based ranks of the hits
            n = r.size
            if n == 0:
                aps['official'].append(0.0)
                aps['exact'].append(0.0)
                first_hits.append(0)
                continue
            k = np.arange(1, n + 1, dtype=np.float64)
            kept = r <= OFFICIAL_MAX_RANK
            old = np.where(r > 1, (k - 1) / np.maximum(r - 1, 1), 1.0)
            aps['official'].append(float(np.sum(((k / n - (k - 1) / n) * (old + k / r) / 2)[kept])))
            aps['exact'].append(float(np.sum(k / r) / n))
            first_hits.append(int(r[0]))
    hits = np.asarray(first_hits)
    out = {}
    for mode, max_rank in (('official', OFFICIAL_MAX_RANK), ('exact', num_gallery)):
        cmc = np.cumsum(np.bincount(hits[hits > 0] - 1, minlength=num_gallery)[:max_rank]) / hits.size
        out[mode] = dict(rank1=float(cmc[0]), rank20=float(cmc[min(20, max_rank) - 1]),
                         mAP=float(np.mean(aps[mode])))
    return out


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    rng = np.random.default_rng(args.seed)
    probe_lbl, gallery_lbl = make_labels(args, rng)
    probe, gallery = make_features(args, probe_lbl, gallery_lbl, dtype)
    probe, gallery = probe.to(device), gallery.to(device)
    counts = np.bincount(gallery_lbl[gallery_lbl != DISTRACTOR_LABEL])
    num_pairs = int(np.sum(counts[probe_lbl[probe_lbl < counts.size]]))
    chunk = args.chunk_size or (2048 if device.type == 'cuda' else 256)
    print(f'{args.features} features, probes {probe.shape[0]}, gallery {gallery.shape[0]} '
          f'({int((gallery_lbl != DISTRACTOR_LABEL).sum())} matches), dim {args.dim}, '
          f'{args.dtype}, true-match pairs {num_pairs}, device {device}, '
          f'threads {torch.get_num_threads()}, probe block {chunk}')

    methods: Dict[str, Callable[[], object]] = {}
    for mode in args.ap_mode:
        methods[f'(a) lrfr {mode}'] = functools.partial(
            evaluate_identification, probe, probe_lbl, gallery, gallery_lbl, ap_mode=mode,
            chunk_size=chunk, gallery_chunk_size=args.gallery_chunk_size)
    if not args.skip_reference:
        methods['(b) sort reference'] = functools.partial(
            sort_reference, probe, probe_lbl, gallery, gallery_lbl, chunk)
    methods['(c) GEMM alone'] = functools.partial(gemm_only, probe, gallery, chunk)
    timings = timed(methods, args.repeat, device)

    mem_kind = 'CUDA max_memory_allocated' if device.type == 'cuda' else 'RSS rise, sampled'
    print(f"{'method':<24}{'wall s':>10}{'CPU s':>10}{'peak MiB':>12}   ({mem_kind})")
    for name, (sec, cpu, mem, _) in timings.items():
        print(f'{name:<24}{sec:>10.3f}{cpu:>10.3f}{mem / 2**20:>12.1f}')
    t_gemm, c_gemm, m_gemm, _ = timings['(c) GEMM alone']
    figures: Dict[str, object] = dict(gemm_s=t_gemm, gemm_cpu_s=c_gemm, gemm_peak_bytes=m_gemm,
                                      num_pairs=num_pairs)
    for mode in args.ap_mode:
        t, c, m, res = timings[f'(a) lrfr {mode}']
        fig = dict(lrfr_s=t, lrfr_cpu_s=c, lrfr_peak_bytes=m, lrfr_over_gemm=t / t_gemm,
                   lrfr_over_gemm_cpu=c / c_gemm, rank1=res['rank1'], rank20=res['rank20'],
                   mAP=res['mAP'])
        line = (f'{mode:>8}: lrfr / GEMM = {t / t_gemm:.3f} (wall), {c / c_gemm:.3f} (CPU time)')
        if not args.skip_reference:
            t_ref, c_ref, m_ref, ref = timings['(b) sort reference']
            diff = max(abs(res[k] - ref[mode][k]) for k in ('rank1', 'rank20', 'mAP'))
            fig.update(reference_s=t_ref, reference_cpu_s=c_ref, reference_peak_bytes=m_ref,
                       lrfr_over_reference=t / t_ref, max_abs_diff=diff)
            line += f'; lrfr / reference = {t / t_ref:.3f} (wall); |lrfr - reference| <= {diff:.1e}'
        print(line + f"; rank1 {res['rank1']:.4f}, rank20 {res['rank20']:.4f}, mAP {res['mAP']:.4f}")
        figures[mode] = fig
    print(f'process peak RSS (ru_maxrss): '
          f'{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(figures, f, indent=2)


if __name__ == '__main__':
    main()
