"""Print results in the layout of the paper's Tables 3 and 5 (Method, Rank-1, Rank-20, Rank-50, mAP).

Reads the JSON files that ``tools/test.py --out`` writes
(``{"metrics": {...}, "config": "...", "checkpoint": "...", "date": "..."}``, metric values
in percent, keys like ``tinyface/rank1``) and prints one row per file, as a terminal table
or as Markdown for docs/benchmark.md.

Examples::

    python tools/analysis_tools/benchmark_table.py work_dirs/centreface/results.json \\
        work_dirs/csri/results.json --names CentreFace CSRI
    python tools/analysis_tools/benchmark_table.py work_dirs/*/results.json --markdown
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional, Sequence

from lrfr.evaluation.reporting import find_metric, load_results_json, make_table

COLUMNS = ('rank1', 'rank20', 'rank50', 'mAP')


def column_title(key: str) -> str:
    return f'Rank-{key[4:]}' if key.startswith('rank') else key


def build_rows(paths: Sequence[str], names: Optional[Sequence[str]], columns: Sequence[str],
               prefix: Optional[str]) -> List[List[str]]:
    """One row per results file: method name then the columns, one decimal as in the paper."""
    if names and len(names) != len(paths):
        raise SystemExit(f'--names: got {len(names)} names for {len(paths)} result files')
    rows = []
    for i, path in enumerate(paths):
        record = load_results_json(path)
        name = names[i] if names else osp.splitext(osp.basename(str(record.get('config') or path)))[0]
        rows.append([name] + [f'{find_metric(record["metrics"], c, prefix, source=path):.1f}'
                              for c in columns])
    return rows


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('results', nargs='+', help='results JSON files from tools/test.py --out')
    parser.add_argument('--names', nargs='+', default=None,
                        help='method names, one per file (default: the config file stem)')
    parser.add_argument('--columns', nargs='+', default=list(COLUMNS),
                        help='metric names, e.g. rank1 rank5 mAP (default: the paper\'s four)')
    parser.add_argument('--prefix', default=None,
                        help='metric prefix when a file holds several (e.g. tinyface)')
    parser.add_argument('--title', default=None, help='table title (terminal only)')
    parser.add_argument('--markdown', action='store_true', help='print a Markdown table')
    args = parser.parse_args(argv)
    try:
        rows = build_rows(args.results, args.names, args.columns, args.prefix)
    except (FileNotFoundError, ValueError, KeyError) as e:
        raise SystemExit(f'benchmark_table: {e}') from None
    header = ['Method'] + [f'{column_title(c)} (%)' for c in args.columns]
    print(make_table(header, rows, title=args.title, markdown=args.markdown))


if __name__ == '__main__':
    main(sys.argv[1:])
