"""Plot training curves from mmengine's JSON scalar logs, several runs on one plot.

    python tools/analysis_tools/analyze_logs.py plot_curve LOG.json [LOG2.json ...] --keys loss \
        [--legend run1 run2] [--title T] --out curve.png

A log is ``<work_dir>/<timestamp>/vis_data/scalars.json`` (or ``<timestamp>.json`` beside it), one JSON object
per logged step (``{"loss": 1.2, "lr": 0.01, "step": 50}``; validation lines carry the metrics, e.g.
``tinyface/mAP``); a work dir or timestamp folder is accepted too (its newest ``scalars.json``). Each key is
drawn against ``step`` from the lines that have it; the legend names each curve by run (``--legend``, else
the work dir's name) and key.
"""
import argparse
import glob
import json
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # tools/, for _tool_args

from _tool_args import add_debug, report_errors  # noqa: E402
from lrfr.errors import ConfigError  # noqa: E402

Curve = Tuple[List[float], List[float]]


def find_log(path: str) -> str:
    """The JSON scalar log named by ``path``: the file itself, or a work dir's / timestamp folder's newest
    ``vis_data/scalars.json``.

    Raises:
        FileNotFoundError: no such file, or a folder without a JSON log.
    """
    if osp.isfile(path):
        return path
    if osp.isdir(path):
        found = sorted(glob.glob(osp.join(path, 'vis_data', 'scalars.json')) +
                       glob.glob(osp.join(path, '*', 'vis_data', 'scalars.json')))
        if found:
            return found[-1]  # timestamp folders sort in time order
        raise FileNotFoundError(f'no JSON log in {path} (expected <timestamp>/vis_data/scalars.json)')
    raise FileNotFoundError(f'log not found: {path}')


def read_scalars(path: str, keys: Sequence[str]) -> Dict[str, Curve]:
    """``key -> (steps, values)`` from one JSON-lines scalar log, for the lines that have the key.

    Raises:
        ConfigError: a line is not JSON (the message names the file and line).
    """
    curves: Dict[str, Curve] = {key: ([], []) for key in keys}
    with open(path, encoding='utf-8') as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f'{path}:{number}: not a JSON scalar log line ({exc.msg})') from None
            for key in keys:
                if key in record and 'step' in record:
                    curves[key][0].append(record['step'])
                    curves[key][1].append(float(record[key]))
    return curves


def run_name(path: str) -> str:
    """A run's name for the legend: the work dir of ``<work_dir>/<timestamp>/vis_data/<file>.json``, else
    the file name without extension."""
    parts = osp.normpath(osp.abspath(path)).split(os.sep)
    if len(parts) >= 4 and parts[-2] == 'vis_data':
        return parts[-4]
    return osp.splitext(parts[-1])[0]


def plot_curve(logs: Sequence[str], keys: Sequence[str], out: str, legend: Optional[Sequence[str]] = None,
               title: Optional[str] = None) -> Dict[str, Curve]:
    """Draw every ``key`` of every log against ``step`` on one plot, save it to ``out`` and return the
    curves drawn (label -> (steps, values)).

    Raises:
        ConfigError: ``legend`` does not have one name per log, or no log has any of the keys (the message
            lists the keys each log has).
    """
    if legend is not None and len(legend) != len(logs):
        raise ConfigError(f'--legend: {len(legend)} names for {len(logs)} logs')
    names = list(legend) if legend is not None else [run_name(log) for log in logs]
    drawn: Dict[str, Curve] = {}
    for log, name in zip(logs, names):
        for key, curve in read_scalars(log, keys).items():
            if curve[0]:
                label = name if len(keys) == 1 else f'{name}: {key}'
                drawn[label] = curve
    if not drawn:
        available = {log: sorted(_keys_of(log)) for log in logs}
        raise ConfigError(f'none of the keys {list(keys)} is in the logs; they have {available}')
    import matplotlib
    matplotlib.use('Agg')  # files only: never needs a display
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for label, (steps, values) in drawn.items():
        ax.plot(steps, values, label=label, marker='.' if len(steps) < 20 else None)
    ax.set_xlabel('iteration')
    ax.set_ylabel(keys[0] if len(keys) == 1 else 'value')
    ax.set_title(title or ', '.join(keys))
    ax.grid(True, alpha=0.3)
    ax.legend()
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return drawn


def _keys_of(path: str) -> set:
    keys = set()
    with open(path, encoding='utf-8') as f:
        for line in f:
            if line.strip():
                keys.update(json.loads(line))
    keys.discard('step')
    return keys


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Plot curves from mmengine JSON scalar logs')
    sub = parser.add_subparsers(dest='command', required=True)
    curve = sub.add_parser('plot_curve', help='plot keys against the iteration, several runs on one plot')
    curve.add_argument('logs', nargs='+', help='vis_data/scalars.json files (or work dirs)')
    curve.add_argument('--keys', nargs='+', default=['loss'], help='scalars to plot (default: loss)')
    curve.add_argument('--legend', nargs='+', help='one name per log (default: the work dir names)')
    curve.add_argument('--title', help='plot title (default: the keys)')
    curve.add_argument('--out', required=True, help='output image, e.g. curve.png')
    add_debug(curve)
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    logs = [find_log(path) for path in args.logs]
    drawn = plot_curve(logs, args.keys, args.out, args.legend, args.title)
    for label, (steps, values) in drawn.items():
        print(f'{label}: {len(steps)} points, last {values[-1]:.4g} at step {steps[-1]}')
    print(f'saved {args.out}')


if __name__ == '__main__':
    report_errors(main)
