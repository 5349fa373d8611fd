"""Print results in the layout of the paper's Tables 3 and 5 (Method, Rank-1, Rank-20, Rank-50, mAP), with error bars.

Reads the JSON files that ``tools/test.py --out`` writes (metrics in percent under keys like
``tinyface/rank1``; the config's ``benchmark`` entry; the seed; per-probe AP and first-match rank). Files of
the same method (same ``benchmark.name``, else the same config) are seeds of one row: the row shows
mean ± std over seeds. For each row a paired bootstrap over probes gives a 95 % interval of its difference
to the FR-only row (``--baseline``, default: the row whose ``benchmark`` has ``baseline=True``) on mAP and
Rank-1; per-probe values (AP, rank-1 hit) are averaged over the row's seeds first, and the same probe
resample serves both rows. The text under the table says which differences are real (the interval
excludes 0) and whether each trained row beats the untrained reference (``benchmark.reference=True``).
``tools/analysis_tools/run_benchmark.py`` prints its table through :func:`render`.

Examples::

    python tools/analysis_tools/benchmark_table.py work_dirs/*/seed*/results.json
    python tools/analysis_tools/benchmark_table.py work_dirs/*/seed*/results.json --markdown \\
        --baseline "CentreFace (FR only)"
"""
import argparse
import os.path as osp
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from lrfr.evaluation.reporting import find_metric, load_results_json, make_table
from lrfr.evaluation.statistics import DEFAULT_RESAMPLES, mean_std, paired_bootstrap

COLUMNS = ('rank1', 'rank20', 'rank50', 'mAP')
COMPARED = ('mAP', 'rank1')  # the per-probe quantities the bootstrap compares


def column_title(key: str) -> str:
    return f'Rank-{key[4:]}' if key.startswith('rank') else key


@dataclass
class Row:
    """One method: its seeds' figures and its per-probe values averaged over seeds (in %)."""
    name: str
    order: float
    baseline: bool = False
    reference: bool = False
    seeds: List[Any] = field(default_factory=list)
    sources: List[str] = field(default_factory=list)
    figures: Dict[str, List[float]] = field(default_factory=dict)
    per_probe: Optional[Dict[str, np.ndarray]] = None  # 'mAP' -> AP %, 'rank1' -> hit %
    probe_index: Optional[List[Any]] = None


def _per_probe(record: Dict[str, Any], prefix: Optional[str], path: str) -> Optional[Dict[str, Any]]:
    table = record.get('per_probe') or {}
    if not table:
        return None
    if prefix is None:
        if len(table) != 1:
            raise KeyError(f'{path}: per-probe results of several metrics {sorted(table)}; pass --prefix')
        return next(iter(table.values()))
    if prefix not in table:
        raise KeyError(f'{path}: no per-probe results for prefix {prefix!r}; available: {sorted(table)}')
    return table[prefix]


def load_rows(paths: Sequence[str], columns: Sequence[str] = COLUMNS, prefix: Optional[str] = None,
              names: Optional[Sequence[str]] = None) -> List[Row]:
    """Group results files into rows (one per method, its seeds together), in ``benchmark.row`` order.

    Args:
        paths (Sequence[str]): results JSON files from ``tools/test.py --out``.
        columns (Sequence[str]): metric names to tabulate.
        prefix (str, optional): metric prefix when a file holds several. Defaults to None.
        names (Sequence[str], optional): a method name per file (overrides ``benchmark.name``).

    Returns:
        list[Row]: the rows.
    """
    if names and len(names) != len(paths):
        raise ValueError(f'--names: got {len(names)} names for {len(paths)} result files')
    rows: Dict[str, Row] = {}
    collected: Dict[str, list] = {}
    for i, path in enumerate(paths):
        record = load_results_json(path)
        bench = record.get('benchmark') or {}
        name = (names[i] if names else bench.get('name')
                or osp.splitext(osp.basename(str(record.get('config') or path)))[0])
        row = rows.setdefault(name, Row(name=name, order=float(bench.get('row', 1e9 + len(rows))),
                                        baseline=bool(bench.get('baseline')),
                                        reference=bool(bench.get('reference'))))
        row.seeds.append(record.get('seed'))
        row.sources.append(path)
        for column in columns:
            row.figures.setdefault(column, []).append(find_metric(record['metrics'], column, prefix, source=path))
        collected.setdefault(name, []).append((path, _per_probe(record, prefix, path)))
    for name, runs in collected.items():
        if any(probes is None for _, probes in runs):
            continue  # an older results file: no intervals for this row
        row, total = rows[name], None
        for path, probes in runs:
            valid = np.asarray(probes['valid'], dtype=bool)
            values = dict(mAP=100.0 * np.asarray(probes['ap'], dtype=np.float64)[valid],
                          rank1=100.0 * (np.asarray(probes['first_match_rank'])[valid] == 1))
            index = [p for p, v in zip(probes['probe_index'], valid) if v]
            if total is None:
                total, row.probe_index = values, index
            elif index != row.probe_index:
                raise ValueError(f'{path}: its probes differ from those of {runs[0][0]} (same method {name!r})')
            else:
                total = {k: total[k] + values[k] for k in values}
        row.per_probe = {k: v / len(runs) for k, v in total.items()}
    return sorted(rows.values(), key=lambda r: (r.order, r.name))


def pick_baseline(rows: Sequence[Row], baseline: Optional[str]) -> Optional[Row]:
    """The FR-only row: named by ``baseline``, else the one row with ``benchmark.baseline=True``."""
    if baseline is not None:
        found = [r for r in rows if r.name == baseline]
        if not found:
            raise ValueError(f'--baseline {baseline!r} is not a row; rows: {[r.name for r in rows]}')
        return found[0]
    flagged = [r for r in rows if r.baseline]
    if len(flagged) > 1:
        raise ValueError(f'several rows say benchmark.baseline=True: {[r.name for r in flagged]}; pass --baseline')
    return flagged[0] if flagged else None


def _interval(a: Row, b: Row, key: str, num_resamples: int, seed: int) -> Optional[Dict[str, float]]:
    if a.per_probe is None or b.per_probe is None:
        return None
    if a.probe_index != b.probe_index:
        raise ValueError(f'rows {a.name!r} and {b.name!r} were tested on different probes '
                         f'({a.sources[0]}, {b.sources[0]})')
    return paired_bootstrap(a.per_probe[key], b.per_probe[key], num_resamples=num_resamples, seed=seed)


def _signed(ci: Optional[Dict[str, float]]) -> str:
    if ci is None:
        return 'n/a'
    return f'{ci["diff"]:+.1f} [{ci["low"]:+.1f}, {ci["high"]:+.1f}]'


def render(rows: Sequence[Row], baseline: Optional[str] = None, columns: Sequence[str] = COLUMNS,
           markdown: bool = False, title: Optional[str] = None, num_resamples: int = DEFAULT_RESAMPLES,
           seed: int = 0) -> str:
    """The table (mean ± std over seeds, intervals to the FR-only row) and the verdicts in words.

    Args:
        rows (Sequence[Row]): from :func:`load_rows`.
        baseline (str, optional): name of the FR-only row. Defaults to None (the flagged row).
        columns (Sequence[str]): metric names. Defaults to the paper's four.
        markdown (bool): Markdown table. Defaults to False (terminal).
        title (str, optional): terminal table title.
        num_resamples (int): bootstrap resamples. Defaults to 2,000.
        seed (int): bootstrap seed. Defaults to 0.

    Returns:
        str: the table then one line per verdict.
    """
    if not rows:
        raise ValueError('no results to tabulate')
    base = pick_baseline(rows, baseline)
    reference = next((r for r in rows if r.reference), None)
    header = ['Method', 'Seeds'] + [f'{column_title(c)} (%)' for c in columns]
    if base is not None:
        header += [f'Δ{column_title(k)} vs {base.name} [95 % CI]' for k in COMPARED]
    body, notes = [], []
    for row in rows:
        cells = [row.name + (' (FR-only baseline)' if row is base else ''), str(len(row.seeds))]
        for column in columns:
            stats = mean_std(row.figures[column])
            cells.append(f'{stats["mean"]:.1f} ± {stats["std"]:.1f}' if stats['n'] > 1 else f'{stats["mean"]:.1f}')
        if base is not None:
            cis = {k: None if row is base else _interval(row, base, k, num_resamples, seed) for k in COMPARED}
            cells += ['—' if row is base else _signed(cis[k]) for k in COMPARED]
            if row is not base:
                notes.append(f'{row.name} vs {base.name}: ' + '; '.join(
                    f'{column_title(k)} {_verdict(cis[k])}' for k in COMPARED))
        body.append(cells)
    if reference is not None:
        for row in rows:
            if row is reference:
                continue
            cis = {k: _interval(row, reference, k, num_resamples, seed) for k in COMPARED}
            beats = all(ci is not None and ci['low'] > 0 for ci in cis.values())
            notes.append(f'{row.name} {"beats" if beats else "does NOT beat"} the untrained reference '
                         f'({reference.name}): ' + '; '.join(f'{column_title(k)} {_signed(cis[k])}' for k in COMPARED))
    if base is None:
        notes.append('no FR-only baseline row (benchmark.baseline=True or --baseline): no intervals')
    seeds = sorted({len(r.seeds) for r in rows})
    notes.append(f'mean ± sample std over {"/".join(map(str, seeds))} seed(s); intervals: paired bootstrap over '
                 f'probes ({num_resamples} resamples, seed {seed}) of per-probe AP and rank-1 hit, each first '
                 'averaged over the row\'s seeds; "real" = the 95 % interval excludes 0')
    table = make_table(header, body, title=title, markdown=markdown)
    bullet = '- ' if markdown else '  '
    return table + '\n\n' + '\n'.join(bullet + n for n in notes)


def _verdict(ci: Optional[Dict[str, float]]) -> str:
    if ci is None:
        return 'n/a (no per-probe results)'
    real = ci['low'] > 0 or ci['high'] < 0
    return f'{_signed(ci)}: ' + (f'real ({"higher" if ci["diff"] > 0 else "lower"})' if real
                                 else 'within noise (interval contains 0)')


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('results', nargs='+', help='results JSON files from tools/test.py --out (seeds of a '
                        'method are grouped by benchmark.name)')
    parser.add_argument('--names', nargs='+', default=None,
                        help='method name per file (default: the config\'s benchmark.name, else its stem)')
    parser.add_argument('--baseline', default=None, help='name of the FR-only row (default: benchmark.baseline)')
    parser.add_argument('--columns', nargs='+', default=list(COLUMNS),
                        help='metric names, e.g. rank1 rank5 mAP (default: the paper\'s four)')
    parser.add_argument('--prefix', default=None,
                        help='metric prefix when a file holds several (e.g. tinyface)')
    parser.add_argument('--resamples', type=int, default=DEFAULT_RESAMPLES, help='bootstrap resamples')
    parser.add_argument('--title', default=None, help='table title (terminal only)')
    parser.add_argument('--markdown', action='store_true', help='print a Markdown table')
    args = parser.parse_args(argv)
    try:
        rows = load_rows(args.results, args.columns, args.prefix, args.names)
        text = render(rows, args.baseline, args.columns, args.markdown, args.title, args.resamples)
    except (FileNotFoundError, ValueError, KeyError) as e:
        raise SystemExit(f'benchmark_table: {e}') from None
    print(text)


if __name__ == '__main__':
    main(sys.argv[1:])
