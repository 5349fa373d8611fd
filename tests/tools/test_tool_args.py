"""tools/_tool_args.py: the options train.py and test.py share, and what acting on them changes."""
import argparse
import importlib.util
import os
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(REPO, 'tools')


def _module():
    spec = importlib.util.spec_from_file_location('_tool_args', osp.join(TOOLS, '_tool_args.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _parse(argv):
    tool_args = _module()
    parser = argparse.ArgumentParser()
    tool_args.add_common_args(parser)
    return tool_args, parser.parse_args(argv)


def test_cfg_options_are_parsed_into_typed_overrides():
    _, args = _parse(['--cfg-options', 'train_cfg.max_iters=7', 'model.flip_test=True', '--launcher', 'pytorch'])
    assert args.cfg_options == {'train_cfg.max_iters': 7, 'model.flip_test': True}
    assert args.launcher == 'pytorch' and args.trust_checkpoint is False and args.local_rank == 0


def test_unknown_launcher_is_refused(capsys):
    with pytest.raises(SystemExit):
        _parse(['--launcher', 'kubernetes'])
    assert "invalid choice: 'kubernetes'" in capsys.readouterr().err


def test_finish_args_exports_local_rank_without_overriding_torchrun(monkeypatch):
    tool_args, args = _parse(['--local-rank', '3'])
    monkeypatch.setenv('LOCAL_RANK', 'recorded')  # so that monkeypatch restores the original state
    monkeypatch.delenv('LOCAL_RANK')
    tool_args.finish_args(args)
    assert os.environ['LOCAL_RANK'] == '3'
    monkeypatch.setenv('LOCAL_RANK', '1')  # torchrun's environment wins over the argument
    tool_args.finish_args(args)
    assert os.environ['LOCAL_RANK'] == '1'


def test_trust_checkpoint_is_opt_in(monkeypatch):
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', 'recorded')  # restored after the test
    monkeypatch.delenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD')
    tool_args, args = _parse([])
    tool_args.finish_args(args)
    assert 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD' not in os.environ
    tool_args, args = _parse(['--trust-checkpoint'])
    with pytest.warns(UserWarning, match='only do this for files you trust'):
        tool_args.finish_args(args)
    assert os.environ['TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'] == '1'


@pytest.mark.parametrize('tool', ['train.py', 'test.py'])
def test_tools_find_the_helper_when_run_as_scripts(tool):
    """``python tools/<tool> --help`` from another folder: the script's folder puts ``_tool_args`` in reach."""
    env = {**os.environ, 'PYTHONPATH': REPO}
    proc = subprocess.run([sys.executable, osp.join(TOOLS, tool), '--help'], cwd='/', env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert '--trust-checkpoint' in proc.stdout and '--cfg-options' in proc.stdout


def test_cfg_options_without_equals_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as info:
        _parse(['--cfg-options', 'a.b=1', 'train_cfg.max_iters'])
    assert info.value.code == 2
    assert ("--cfg-options 'train_cfg.max_iters': expected KEY=VALUE, e.g. train_cfg.max_iters=1"
            in capsys.readouterr().err)
    with pytest.raises(SystemExit):
        _parse(['--cfg-options', '=3'])


def test_report_errors_one_line_debug_and_bugs(capsys):
    from lrfr.errors import CheckpointError, ConfigError
    tool_args = _module()

    def fails(exc):
        def main():
            raise exc
        return main

    with pytest.raises(SystemExit) as info:
        tool_args.report_errors(fails(ConfigError('a.py: model: bad\nhint line')), argv=[])
    assert info.value.code == 2
    assert capsys.readouterr().err == 'error: a.py: model: bad | hint line\n'
    with pytest.raises(SystemExit):
        tool_args.report_errors(fails(FileNotFoundError('config file not found: x.py')), argv=[])
    assert capsys.readouterr().err == 'error: config file not found: x.py\n'
    # A dataloader worker's error carries the worker's traceback; only its last line is the message.
    from lrfr.datasets.transforms.loading import FaceImageError
    worker = FaceImageError('Caught FaceImageError in DataLoader worker process 0.\nOriginal Traceback (most '
                            'recent call last):\n  File "x.py", line 1\nlrfr.FaceImageError: cannot decode a.jpg\n')
    with pytest.raises(SystemExit):
        tool_args.report_errors(fails(worker), argv=[])
    assert capsys.readouterr().err == 'error: cannot decode a.jpg\n'
    with pytest.raises(CheckpointError, match='cut'):  # --debug: the exception itself, with its traceback
        tool_args.report_errors(fails(CheckpointError('cut')), argv=['--debug'])
    with pytest.raises(ZeroDivisionError):  # a bug is not a user error: it keeps its traceback
        tool_args.report_errors(fails(ZeroDivisionError('bug')), argv=[])
