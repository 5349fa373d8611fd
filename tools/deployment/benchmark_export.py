"""Embeddings per second of an exported model in onnxruntime vs the same graph in PyTorch eager, on the CPU:

    python tools/deployment/benchmark_export.py configs/demo/csri_vdsr-centreface_1xb32_demo-pairs-native.py \\
        [CKPT | --random-init] [--batch-sizes 1 32] [--seconds 5] [--threads 2] [--out export_bench.json]

Both run :class:`lrfr.apis.export.EmbeddingGraph` (uint8 pipeline images -> matching features) on random faces
of the config's input size, after a warm-up, each for about ``--seconds`` per batch size; the exported ONNX
file is checked against PyTorch first (max abs difference printed). Weights do not change the speed, so
``--random-init`` is enough for a timing.
"""
import argparse
import json
import os.path as osp
import tempfile
import time
from typing import Callable, Dict

import numpy as np
import torch

from lrfr.apis import init_model
from lrfr.apis.export import EmbeddingGraph, export_onnx, identification_options, pipeline_input_size
from lrfr.utils import register_all_modules


def throughput(fn: Callable[[], object], batch: int, seconds: float) -> float:
    """Images per second of ``fn`` (one batch per call), timed for about ``seconds`` after two warm-up calls."""
    fn(), fn()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        calls += 1
    return calls * batch / (time.perf_counter() - start)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description='onnxruntime vs PyTorch eager embeddings/s on the CPU')
    parser.add_argument('config')
    parser.add_argument('checkpoint', nargs='?')
    parser.add_argument('--random-init', action='store_true')
    parser.add_argument('--batch-sizes', type=int, nargs='+', default=[1, 32])
    parser.add_argument('--seconds', type=float, default=5.0, help='timing per runtime and batch size')
    parser.add_argument('--threads', type=int, default=2, help='intra-op threads of both runtimes')
    parser.add_argument('--out', help='write the results as JSON')
    args = parser.parse_args(argv)
    if (args.checkpoint is None) == (not args.random_init):
        parser.error('give a CHECKPOINT or --random-init (one of the two)')
    import onnxruntime as ort
    register_all_modules()
    torch.set_num_threads(args.threads)
    model = init_model(args.config, args.checkpoint)
    opts = identification_options(model.cfg)
    graph = EmbeddingGraph(model, opts['flip_fusion'], opts['l2_normalize']).eval()
    height, width = pipeline_input_size(model.cfg)
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = args.threads, 1
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = osp.join(tmp, 'model.onnx')
        export_onnx(model, path, dynamic_batch=True)
        session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
        for batch in args.batch_sizes:
            images = torch.randint(0, 256, (batch, 3, height, width), dtype=torch.uint8)
            feed = {'images': images.numpy()}
            with torch.no_grad():
                diff = float(np.abs(session.run(None, feed)[0] - graph(images).numpy()).max())

                def eager() -> object:
                    with torch.no_grad():
                        return graph(images)
                row: Dict[str, float] = dict(batch=batch, max_abs_diff=diff,
                                             torch_eager_per_s=throughput(eager, batch, args.seconds),
                                             onnxruntime_per_s=throughput(lambda: session.run(None, feed), batch,
                                                                          args.seconds))
            row['speed_up'] = row['onnxruntime_per_s'] / row['torch_eager_per_s']
            rows.append(row)
            print(f'batch {batch:4d}: PyTorch eager {row["torch_eager_per_s"]:9.1f} img/s, onnxruntime '
                  f'{row["onnxruntime_per_s"]:9.1f} img/s (x{row["speed_up"]:.2f}), max |diff| {diff:.2g}',
                  flush=True)
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(config=args.config, threads=args.threads, torch=torch.__version__,
                           onnxruntime=ort.__version__, results=rows), f, indent=1)


if __name__ == '__main__':
    main()
