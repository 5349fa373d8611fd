"""lrfr.compat: each fix for a known trap of this stack, checked on its own."""
import io
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

import lrfr  # noqa: F401  (applies the fixes)
from lrfr import compat


def _run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, 'PYTHONWARNINGS': 'default'})


def test_mmengine_checkpoint_contents_load_weights_only():
    from mmengine.logging import HistoryBuffer, MessageHub
    hub = MessageHub.get_instance('test_compat_hub')
    hub.update_scalar('train/loss', 1.5)
    hub.update_scalar('train/lr', np.float64(0.1))
    hub.update_info('iter', 3)
    state = {'message_hub': hub.state_dict(), 'meta': {'seed': np.int64(3), 'arr': np.arange(3, dtype=np.int32)},
             'state_dict': {'w': torch.ones(2)}}
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    loaded = torch.load(buf)  # torch >= 2.6: weights_only=True by default
    buffer = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer) and buffer.current() == 1.5
    assert buffer.mean() == 1.5  # statistics methods came back through the restricted getattr
    assert loaded['meta']['arr'].dtype == np.int32 and loaded['meta']['seed'] == 3


class _Evil:
    def __reduce__(self):
        return (os.system, ('echo pwned',))


def test_arbitrary_code_is_still_refused():
    buf = io.BytesIO()
    torch.save({'x': _Evil()}, buf)
    buf.seek(0)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(buf)


def test_checkpoint_loads_in_a_fresh_process(tmp_path):
    """The statistics names must be known before any HistoryBuffer exists in the loading process."""
    path = tmp_path / 'hub.pth'
    code = ('import torch, lrfr\n'
            'from mmengine.logging import MessageHub\n'
            "hub = MessageHub.get_instance('fresh')\n"
            "hub.update_scalar('train/loss', 2.0)\n"
            f"torch.save({{'message_hub': hub.state_dict()}}, {str(path)!r})\n")
    assert _run_python(code).returncode == 0
    result = _run_python(f"import torch, lrfr\nprint(torch.load({str(path)!r})['message_hub']['log_scalars']"
                         "['train/loss'].min())\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '2.0'


def test_getattr_only_resolves_history_buffer_statistics():
    from mmengine.logging import HistoryBuffer
    assert compat._history_buffer_getattr(HistoryBuffer, 'mean') is HistoryBuffer.mean
    with pytest.raises(pickle.UnpicklingError, match='refusing getattr'):
        compat._history_buffer_getattr(HistoryBuffer, '__init__')
    with pytest.raises(pickle.UnpicklingError):
        compat._history_buffer_getattr(os, 'system')


def test_config_bases_and_hub_without_pkg_resources(tmp_path):
    cfg_file = tmp_path / 'cfg.py'
    cfg_file.write_text("_base_ = 'mmpretrain::_base_/default_runtime.py'\nx = 1\n")
    code = (
        "import sys; sys.modules['pkg_resources'] = None\n"  # as on setuptools >= 82
        'import lrfr\n'
        'from mmengine.config import Config\n'
        f"cfg = Config.fromfile({str(cfg_file)!r})\n"
        "assert cfg.default_scope == 'mmpretrain' and cfg.x == 1\n"
        'from mmengine.utils import get_installed_path, is_installed\n'
        "assert is_installed('mmpretrain') and not is_installed('surely-not-a-package-xyz')\n"
        "import os; assert os.path.isdir(os.path.join(get_installed_path('mmpretrain'), '.mim'))\n"
        "print('ok')\n")
    result = _run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith('ok')


def test_package2module_maps_distribution_to_module():
    assert compat.package2module('mmcv-lite') == 'mmcv'
    assert compat.package2module('mmengine') == 'mmengine'


def test_known_import_noise_is_silenced_but_real_warnings_show():
    result = _run_python("import lrfr, mmpretrain.models, warnings\nwarnings.warn('a real warning')\n")
    assert result.returncode == 0, result.stderr
    assert 'MultiScaleDeformableAttention' not in result.stderr
    assert 'a real warning' in result.stderr


def test_distributed_patches_are_applied_once():
    import mmengine.dist.utils as dist_utils
    from mmengine.model.wrappers.distributed import MMDistributedDataParallel
    first = dist_utils._init_dist_pytorch
    compat.patch_distributed()
    assert dist_utils._init_dist_pytorch is first and first.__lrfr_patched__
    assert MMDistributedDataParallel.__init__.__lrfr_patched__


def test_single_process_gloo_ddp_on_cpu(tmp_path, monkeypatch):
    """init_dist + MMDistributedDataParallel on CPU (2-process training is tested in tests/test_tools.py)."""
    if torch.cuda.is_available():
        pytest.skip('checks the CPU path')
    code = (
        'import os, torch, lrfr\n'
        "os.environ.update(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1', MASTER_PORT='29533')\n"
        'from mmengine.dist import init_dist\n'
        "init_dist('pytorch', backend='nccl')\n"
        'import torch.distributed as dist\n'
        "assert dist.get_backend() == 'gloo'\n"
        'from mmengine.model import MMDistributedDataParallel\n'
        'm = MMDistributedDataParallel(module=torch.nn.Linear(2, 2), device_ids=[0])\n'
        'assert m.device_ids is None\n'
        "print('ok')\n")
    result = _run_python(code)
    assert result.returncode == 0, result.stderr
    assert 'ok' in result.stdout


def test_mmengine_deprecation_log_noise_is_filtered_but_other_lines_pass():
    from mmengine.logging import MMLogger
    logger = MMLogger.get_instance('test_compat_noise', logger_name='test_compat_noise')
    seen = []

    class Collect(__import__('logging').Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    logger.addHandler(Collect())
    logger.warning('"FileClient" will be deprecated in future. Please use io functions in ...')
    logger.warning('"HardDiskBackend" is the alias of "LocalBackend" and the former will be deprecated in future.')
    logger.warning('a real problem')
    assert seen == ['a real problem']
