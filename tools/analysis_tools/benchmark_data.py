"""Images/second through the real data pipeline: JPEG files vs the packed file vs RecordIO, same transforms, one run.

    python tools/analysis_tools/benchmark_data.py --num-images 4000
    python tools/analysis_tools/benchmark_data.py --data-root data/tinyface --split train --workers 4

Without ``--data-root`` a synthetic TinyFace-like tree (``Training_Set/<id>/<id>_<n>.jpg``,
faces of 12-32 px height, aspect 0.8 like TinyFace's mean 20x16) is written under a
temporary folder. The dataset is read twice through the same pipeline (default: the
light native-branch pipeline ``LoadFaceImage -> ResizeFace(20x16) -> RandomHFlip ->
PackFaceInputs``; or ``--config`` for a config's ``train_dataloader.dataset.pipeline``):
once from the image files (``TinyFaceDataset``), once from a pack of the same
images (``PackedFaceDataset``, where ``LoadFaceImage`` passes the decoded array through),
and once from an InsightFace RecordIO file of the same JPEG bytes (``MXFaceDataset``:
one ``pread`` and one decode per image).

Each pass is timed ``--repeat`` times and the best is kept (the machine may be shared).
``--cold`` drops the files from the OS page cache before each pass
(``posix_fadvise(DONTNEED)``) to model a first epoch on a disk; otherwise the files are
in the page cache (later epochs, or a dataset that fits in RAM).
"""
import argparse
import os
import os.path as osp
import tempfile
import time
from typing import Callable, List, Optional, Tuple

import cv2
import numpy as np
import torch

from lrfr.datasets import MXFaceDataset, PackedFaceDataset, TinyFaceDataset
from lrfr.datasets.converters import pack_dataset
from lrfr.datasets.converters.recordio import write_face_rec
from lrfr.utils import register_all_modules
from lrfr.utils.config_utils import load_config

DEFAULT_PIPELINE = [
    dict(type='LoadFaceImage'),
    dict(type='ResizeFace', size=(20, 16)),
    dict(type='RandomHFlip', prob=0.5),
    dict(type='PackFaceInputs'),
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Data loading speed: files vs packed')
    parser.add_argument('--data-root', help='a TinyFace-layout root (default: synthetic tree)')
    parser.add_argument('--split', default='train', help='TinyFace split to read')
    parser.add_argument('--num-images', type=int, default=4000,
                        help='images in the synthetic tree (ignored with --data-root)')
    parser.add_argument('--config', help="take train_dataloader.dataset.pipeline from this config")
    parser.add_argument('--repeat', type=int, default=3, help='timed passes per source (best kept)')
    parser.add_argument('--workers', type=int, default=0,
                        help='DataLoader workers (0: a plain loop in this process)')
    parser.add_argument('--batch-size', type=int, default=128, help='DataLoader batch size')
    parser.add_argument('--cold', action='store_true',
                        help='evict the files from the page cache before every pass')
    parser.add_argument('--work-dir', help='where to write the synthetic tree and the pack '
                                           '(default: a temporary folder, removed afterwards)')
    return parser.parse_args()


def make_synthetic_tinyface(root: str, num_images: int, seed: int = 0,
                            heights: Tuple[int, int] = (12, 32)) -> str:
    """Write ``num_images`` TinyFace-like JPEGs under ``root/Training_Set`` (~3 per identity).

    Faces are smooth random images (blurred noise), so JPEG sizes and decoding cost are
    close to real ~20x16 faces; heights uniform in ``heights`` (inclusive; TinyFace's
    own range is 6-32 px, paper Fig. 4), width = 0.8 x height.
    """
    rng = np.random.default_rng(seed)
    for i in range(num_images):
        pid = i // 3 + 1
        height = int(rng.integers(heights[0], heights[1] + 1))
        width = max(4, round(0.8 * height))
        img = cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), (3, 3), 0)
        folder = osp.join(root, 'Training_Set', str(pid))
        os.makedirs(folder, exist_ok=True)
        cv2.imwrite(osp.join(folder, f'{pid}_{i % 3 + 1}.jpg'), img,
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
    return root


def evict(paths: List[str]) -> None:
    """Ask the OS to drop these files from the page cache (clean pages only; no root needed)."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def time_pass(dataset, workers: int, batch_size: int) -> float:
    """Seconds to run every sample of ``dataset`` through its pipeline once."""
    start = time.perf_counter()
    if workers == 0:
        for i in range(len(dataset)):
            dataset[i]
    else:
        from mmengine.dataset import pseudo_collate
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=workers,
                                             collate_fn=pseudo_collate)
        for _ in loader:
            pass
    return time.perf_counter() - start


def best_rate(dataset, repeat: int, workers: int, batch_size: int,
              before: Optional[Callable[[], None]] = None) -> float:
    """Best images/second over ``repeat`` passes (``before`` runs ahead of each pass)."""
    times = []
    for _ in range(repeat):
        if before is not None:
            before()
        times.append(time_pass(dataset, workers, batch_size))
    return len(dataset) / min(times)


def run(args: argparse.Namespace, work_dir: str) -> None:
    register_all_modules()
    torch.set_num_threads(1)  # timing the data path, not intra-op threading
    pipeline = DEFAULT_PIPELINE
    if args.config:
        pipeline = load_config(args.config).train_dataloader.dataset.pipeline
    root = args.data_root
    if root is None:
        root = make_synthetic_tinyface(osp.join(work_dir, 'tinyface'), args.num_images)
    listing = TinyFaceDataset(root, split=args.split)
    paths = [listing.get_data_info(i)['img_path'] for i in range(len(listing))]
    start = time.perf_counter()
    index = pack_dataset(listing, osp.join(work_dir, 'packed'), progress=False)
    pack_seconds = time.perf_counter() - start
    bin_file = index[:-4] + '.bin'
    rec_file = write_face_rec([(p, listing.get_data_info(i)['gt_label']) for i, p in enumerate(paths)],
                              osp.join(work_dir, 'rec'))

    rows = []
    # The whole pipeline, and its loading step alone (the part packing replaces).
    for name, steps in (('full pipeline', pipeline), ('loading only', pipeline[:1])):
        files = TinyFaceDataset(root, split=args.split, pipeline=steps)
        packed = PackedFaceDataset(index, pipeline=steps)
        rec = MXFaceDataset(osp.dirname(rec_file), pipeline=steps)
        # Warm-up pass each: imports, first-touch allocations, page cache (unless --cold).
        for dataset in (files, packed, rec):
            time_pass(dataset, 0, args.batch_size)
        file_rate = best_rate(files, args.repeat, args.workers, args.batch_size,
                              (lambda: evict(paths)) if args.cold else None)
        pack_rate = best_rate(packed, args.repeat, args.workers, args.batch_size,
                              (lambda: evict([bin_file])) if args.cold else None)
        rec_rate = best_rate(rec, args.repeat, args.workers, args.batch_size,
                             (lambda: evict([rec_file])) if args.cold else None)
        rows.append((name, file_rate, pack_rate, rec_rate))

    sizes = [osp.getsize(p) for p in paths]
    print(f'images: {len(paths)} ({"synthetic" if args.data_root is None else root}), '
          f'mean JPEG {np.mean(sizes):.0f} B; pack {osp.getsize(bin_file) / 2**20:.1f} MiB '
          f'written in {pack_seconds:.1f} s')
    print(f'pipeline: {" -> ".join(t["type"] for t in pipeline)}; workers={args.workers}, '
          f'cache={"cold" if args.cold else "warm"}, best of {args.repeat}')
    print(f'| {"measured":<14}| {"JPEG files img/s":>17} | {"packed img/s":>13} | {"packed/files":>12} | '
          f'{"RecordIO img/s":>15} | {"RecordIO/files":>14} |')
    print(f'|{"-" * 15}|{"-" * 18}:|{"-" * 14}:|{"-" * 13}:|{"-" * 16}:|{"-" * 15}:|')
    for name, file_rate, pack_rate, rec_rate in rows:
        print(f'| {name:<14}| {file_rate:>17.0f} | {pack_rate:>13.0f} | '
              f'{pack_rate / file_rate:>11.2f}x | {rec_rate:>15.0f} | {rec_rate / file_rate:>13.2f}x |')


def main() -> None:
    args = parse_args()
    if args.work_dir:
        os.makedirs(args.work_dir, exist_ok=True)
        run(args, args.work_dir)
    else:
        with tempfile.TemporaryDirectory(prefix='lrfr_bench_data_') as work_dir:
            run(args, work_dir)


if __name__ == '__main__':
    main()
