"""Configs shipped inside the package: ``lrfr::<folder>/<file>.py`` as a tool argument and as a ``_base_``,
resolved through ``lrfr/.mim/configs`` (mmengine's place for a package's configs)."""
import os.path as osp

import pytest
from mmengine.config import Config

from lrfr.utils import register_all_modules
from lrfr.utils.config_utils import load_config, package_config_root, resolve_config_path

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_package_configs_are_the_checkout_configs():
    root = package_config_root()
    assert root == osp.join(REPO, 'lrfr', '.mim', 'configs')
    assert osp.samefile(root, osp.join(REPO, 'configs'))  # the link an editable install reads through
    assert resolve_config_path('lrfr::demo/centreface_1xb32_demo-hr.py') == osp.join(
        root, 'demo', 'centreface_1xb32_demo-hr.py')
    with pytest.raises(FileNotFoundError, match=r'config file not found: lrfr::demo/nope.py \(no .*nope.py'):
        resolve_config_path('lrfr::demo/nope.py')


def test_package_base_from_a_folder_outside_the_checkout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'mine.py').write_text("_base_ = 'lrfr::demo/csri_vdsr-centreface_1xb32_demo-pairs-native.py'\n"
                                      "optim_wrapper = dict(optimizer=dict(lr=0.5))\n")
    register_all_modules()
    cfg = Config.fromfile('mine.py')  # mmengine's own resolution, once register_all_modules() ran
    assert cfg.model.type == 'CSRI' and cfg.optim_wrapper.optimizer.lr == 0.5
    cfg = load_config('lrfr::demo/csri_vdsr-centreface_1xb32_demo-pairs-native.py', {'model.type': 'X'})
    assert cfg.model.type == 'X'
    assert cfg.work_dir == osp.join('./work_dirs', 'csri_vdsr-centreface_1xb32_demo-pairs-native')


def test_custom_imports_next_to_the_config(tmp_path, monkeypatch):
    import sys
    monkeypatch.setattr(sys, 'path', list(sys.path))  # restored after the test
    monkeypatch.chdir('/')
    folder = tmp_path / 'proj'
    folder.mkdir()
    (folder / 'lrfr_test_plugin_mod.py').write_text('VALUE = 7\n')
    (folder / 'c.py').write_text("custom_imports = dict(imports=['lrfr_test_plugin_mod'])\nmodel = dict()\n")
    load_config(str(folder / 'c.py'))
    assert sys.path[-1] == str(folder) and sys.modules['lrfr_test_plugin_mod'].VALUE == 7
    del sys.modules['lrfr_test_plugin_mod']
    other = tmp_path / 'other'
    other.mkdir()
    (other / 'plain.py').write_text('model = dict()\n')
    path_before = list(sys.path)
    load_config(str(other / 'plain.py'))
    assert sys.path == path_before  # no custom_imports: the path is left alone
