"""lrfr.compat: each fix for a known trap of this stack, its version guard, and the contract that importing lrfr
changes nothing while ``apply()`` (once or twice) applies exactly the fixes whose guard holds.

The test process has the fixes applied (tests/conftest.py calls ``compat.apply()``, as the tools do through
``register_all_modules``); what a bare ``import lrfr`` does is checked in fresh subprocesses.
"""
import importlib.machinery
import inspect
import io
import os
import pickle
import subprocess
import sys
import textwrap
import types

import mmengine
import numpy as np
import pytest
import torch

from lrfr import compat


def _run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=180,
                          env={**os.environ, 'PYTHONWARNINGS': 'default'})


def _stack_state() -> dict:
    """Everything lrfr.compat may touch in mmengine, torch, ``warnings`` and the environment (by identity)."""
    import os
    import warnings

    import mmengine.config.config as config_module
    import mmengine.dist as dist
    import mmengine.dist.utils as dist_utils
    import mmengine.hub.hub as hub_module
    import mmengine.utils as utils_module
    import mmengine.utils.package_utils as package_utils
    import torch
    from mmengine.logging import MMLogger
    from mmengine.model.wrappers.distributed import MMDistributedDataParallel

    helpers = {f'{module.__name__}.{name}': getattr(module, name)
               for module in (package_utils, utils_module, config_module, hub_module)
               for name in ('is_installed', 'get_installed_path', 'package2module') if hasattr(module, name)}
    return dict(
        logger_init=MMLogger.__init__,
        logger_filters={name: list(logger.filters) for name, logger in MMLogger._instance_dict.items()},
        warning_filters=list(warnings.filters),
        safe_globals=set(torch.serialization.get_safe_globals()),
        torch_load=(torch.load, inspect.signature(torch.load).parameters['weights_only'].default),
        init_dist=(dist.init_dist, dist_utils.init_dist, dist_utils._init_dist_pytorch,
                   dist_utils._init_dist_slurm),
        ddp_init=MMDistributedDataParallel.__init__,
        set_device=torch.cuda.set_device,
        package_helpers=helpers,
        environ=dict(os.environ),
        threads=torch.get_num_threads(),
    )


def test_import_lrfr_changes_nothing_and_apply_only_what_the_guards_allow():
    """A fresh process: importing every lrfr package leaves mmengine/torch/warnings as they were; ``apply()``
    on a stack whose versions lack the traps changes nothing either; on this stack it patches."""
    code = textwrap.dedent(inspect.getsource(_stack_state)) + textwrap.dedent('''
        import inspect, importlib
        import mmengine, mmpretrain.models, torch  # third-party import effects happen before the snapshot
        from mmengine.logging import MMLogger
        MMLogger.get_instance('before_lrfr')
        before = _stack_state()
        for name in ('lrfr', 'lrfr.registry', 'lrfr.structures', 'lrfr.compat', 'lrfr.utils',
                     'lrfr.utils.config_utils', 'lrfr.datasets', 'lrfr.models', 'lrfr.evaluation', 'lrfr.engine',
                     'lrfr.apis'):
            importlib.import_module(name)
        after = _stack_state()
        changed = sorted(k for k in before if before[k] != after[k])
        assert not changed, f'importing lrfr changed {changed}'
        from lrfr import compat
        assert compat.applied() == ()

        real = torch.__version__, mmengine.__version__
        torch.__version__, mmengine.__version__ = '2.5.1', '0.11.0'  # a stack without the traps
        names = compat.apply()
        assert set(names) <= {'mmcv_ops_warning'}, names  # the only guard that does not read these versions
        after = _stack_state()
        changed = sorted(k for k in before if before[k] != after[k] and k != 'warning_filters')
        assert not changed, f'apply() on a fixed stack changed {changed}'

        torch.__version__, mmengine.__version__ = real
        names = compat.apply()
        assert {'checkpoint_allow_list', 'cpu_distributed', 'log_noise'} <= set(names), names
        after = _stack_state()
        assert after['ddp_init'] is not before['ddp_init'] and after['safe_globals'] > before['safe_globals']
        print('ok')
    ''')
    result = _run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith('ok')


def test_apply_twice_equals_once():
    from mmengine.logging import MMLogger
    logger = MMLogger.get_instance('test_compat_twice', logger_name='test_compat_twice')
    needed = [patch for patch in compat.PATCHES if patch.needed()]
    compat.apply()
    for patch in needed:  # pytest resets warnings.filters per test: put this test's state in place once
        patch.fix()
    once = _stack_state()
    assert compat.apply() == compat.applied()
    for patch in needed:  # each fix is idempotent on its own, not only through apply()'s record
        patch.fix()
    assert _stack_state() == once
    assert sum(isinstance(f, compat.KnownNoiseFilter) for f in logger.filters) == 1


def test_apply_runs_each_needed_fix_once_and_skips_the_others(monkeypatch):
    calls = []
    fake = (compat.Patch('needed', lambda: True, lambda: calls.append('needed'), 'x'),
            compat.Patch('not_needed', lambda: False, lambda: calls.append('not_needed'), 'y'))
    monkeypatch.setattr(compat, 'PATCHES', fake)
    monkeypatch.setattr(compat, '_applied', [])
    assert compat.apply() == ('needed',)
    assert compat.apply() == ('needed',)
    assert calls == ['needed']
    assert compat.guards() == {'needed': True, 'not_needed': False}


def test_docs_list_exactly_the_patches_of_the_code():
    """docs/compat.md's table has one row per fix, named as in ``PATCHES``; each fix names its upstream source."""
    doc = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'docs', 'compat.md')
    with open(doc, encoding='utf-8') as f:
        rows = [line.split('|')[1].strip().strip('`') for line in f if line.startswith('| `')]
    assert rows == [p.name for p in compat.PATCHES]
    assert all('mmengine' in p.upstream or 'mmcv' in p.upstream for p in compat.PATCHES)


@pytest.mark.parametrize('version,expected', [('2.14.1+cu130', (2, 14, 1)), ('2.6.0a0', (2, 6, 0)),
                                              ('0.10.7', (0, 10, 7)), ('1', (1,))])
def test_release_reads_the_numeric_part(version, expected):
    assert compat.release(version) == expected


def test_release_rejects_a_version_without_numbers():
    with pytest.raises(ValueError, match="version 'dev'"):
        compat.release('dev')


@pytest.mark.parametrize('version,needed', [('2.5.1', False), ('2.6.0', True), ('2.14.1+cu130', True),
                                            ('1.13.1', False)])
def test_checkpoint_guard_is_torch_2_6(monkeypatch, version, needed):
    monkeypatch.setattr(torch, '__version__', version)
    assert compat.torch_loads_weights_only() is needed


def _fake_pkg_resources(monkeypatch, present: bool) -> None:
    if present:
        module = types.ModuleType('pkg_resources')
        module.__spec__ = importlib.machinery.ModuleSpec('pkg_resources', None)
        monkeypatch.setitem(sys.modules, 'pkg_resources', module)
    else:
        monkeypatch.setitem(sys.modules, 'pkg_resources', None)  # as on setuptools >= 82


@pytest.mark.parametrize('version,present,needed', [('0.10.7', False, True), ('0.10.3', False, True),
                                                    ('0.10.8', False, False), ('0.11.0', False, False),
                                                    ('0.10.7', True, False)])
def test_package_helpers_guard(monkeypatch, version, present, needed):
    monkeypatch.setattr(mmengine, '__version__', version)
    _fake_pkg_resources(monkeypatch, present)
    assert compat.mmengine_needs_pkg_resources() is needed


@pytest.mark.parametrize('version,needed', [('0.10.0', True), ('0.10.7', True), ('0.9.1', False),
                                            ('0.11.0', False), ('1.0.0', False)])
def test_distributed_and_log_guards_are_mmengine_0_10(monkeypatch, version, needed):
    monkeypatch.setattr(mmengine, '__version__', version)
    assert compat.mmengine_0_10() is needed
    by_name = {p.name: p for p in compat.PATCHES}
    assert by_name['cpu_distributed'].needed() is needed
    assert by_name['log_noise'].needed() is needed


@pytest.mark.parametrize('compiled', [False, True])
def test_mmcv_guard_looks_for_the_compiled_extension(monkeypatch, tmp_path, compiled):
    (tmp_path / '__init__.py').write_text('')
    if compiled:
        (tmp_path / '_ext.cpython-311-x86_64-linux-gnu.so').write_bytes(b'')
    fake = types.ModuleType('mmcv')
    fake.__spec__ = importlib.machinery.ModuleSpec('mmcv', None, is_package=True)
    fake.__spec__.submodule_search_locations = [str(tmp_path)]
    monkeypatch.setitem(sys.modules, 'mmcv', fake)
    assert compat.mmcv_without_compiled_ops() is not compiled


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
    with pytest.raises(pickle.UnpicklingError, match='system'):
        torch.load(buf)


def test_checkpoint_loads_in_a_fresh_process(tmp_path):
    """The statistics names must be known before any HistoryBuffer exists in the loading process."""
    path = tmp_path / 'hub.pth'
    code = ('import torch\n'
            'from mmengine.logging import MessageHub\n'
            "hub = MessageHub.get_instance('fresh')\n"
            "hub.update_scalar('train/loss', 2.0)\n"
            f"torch.save({{'message_hub': hub.state_dict()}}, {str(path)!r})\n")
    assert _run_python(code).returncode == 0
    result = _run_python(f"import torch, lrfr.compat\nlrfr.compat.apply()\n"
                         f"print(torch.load({str(path)!r})['message_hub']['log_scalars']['train/loss'].min())\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '2.0'


def test_getattr_only_resolves_history_buffer_statistics():
    from mmengine.logging import HistoryBuffer
    assert compat._history_buffer_getattr(HistoryBuffer, 'mean') is HistoryBuffer.mean
    with pytest.raises(pickle.UnpicklingError, match='refusing getattr'):
        compat._history_buffer_getattr(HistoryBuffer, '__init__')
    with pytest.raises(pickle.UnpicklingError, match='refusing getattr'):
        compat._history_buffer_getattr(os, 'system')


def test_config_bases_and_hub_without_pkg_resources(tmp_path):
    cfg_file = tmp_path / 'cfg.py'
    cfg_file.write_text("_base_ = 'mmpretrain::_base_/default_runtime.py'\nx = 1\n")
    code = (
        "import sys; sys.modules['pkg_resources'] = None\n"  # as on setuptools >= 82
        'from lrfr.utils import register_all_modules\n'
        'register_all_modules()\n'
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
    with pytest.raises(ValueError, match='surely-not-installed-xyz'):
        compat.package2module('surely-not-installed-xyz')


def test_known_import_noise_is_silenced_after_apply_but_real_warnings_show():
    result = _run_python('from lrfr import compat\ncompat.apply()\n'
                         "import mmpretrain.models, warnings\nwarnings.warn('a real warning')\n")
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


def test_single_process_gloo_ddp_on_cpu():
    """init_dist + MMDistributedDataParallel on CPU (2-process training is tested in tests/test_tools.py)."""
    if torch.cuda.is_available():
        pytest.skip('checks the CPU path')
    code = (
        'import os, torch\n'
        'from lrfr.utils import register_all_modules\n'
        'register_all_modules()\n'
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
