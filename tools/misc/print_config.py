"""Print a config as the tools see it: bases merged, ``--cfg-options`` applied, ``work_dir`` filled.

    python tools/misc/print_config.py CONFIG [--cfg-options KEY=VALUE ...]

CONFIG is a file or a config shipped with lrfr (``lrfr::demo/centreface_1xb32_demo-hr.py``). The output is
Python (mmengine's ``Config.pretty_text``), so it can be saved and used as a config of its own.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # tools/, for _tool_args

from _tool_args import add_cfg_options, add_debug, report_errors  # noqa: E402
from lrfr.utils import register_all_modules  # noqa: E402
from lrfr.utils.config_utils import load_config  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Print the whole config (bases merged, overrides applied)')
    parser.add_argument('config', help='config file, or a shipped config: lrfr::demo/centreface_1xb32_demo-hr.py')
    add_cfg_options(parser)
    add_debug(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    register_all_modules()  # mmpretrain:: and lrfr:: bases need it
    cfg = load_config(args.config, args.cfg_options)
    print(cfg.pretty_text)


if __name__ == '__main__':
    report_errors(main)
