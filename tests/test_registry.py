"""Registries: lrfr scope, the register_all_modules entry point, mmpretrain modules by scope prefix, third-party
plugins through custom_imports."""
import sys
import textwrap

import pytest
import torch
from mmengine.config import Config

from mmengine import DefaultScope

from lrfr import compat
from lrfr.registry import DATASETS, HOOKS, METRICS, MODELS, TRANSFORMS
from lrfr.utils import register_all_modules


def test_registries_are_children_of_mmengine_roots():
    for registry in (MODELS, DATASETS, TRANSFORMS, METRICS, HOOKS):
        assert registry.scope == 'lrfr'
        assert registry.parent is not None and registry.parent.scope == 'mmengine'


def test_register_all_modules_registers_sets_the_scope_and_applies_the_fixes():
    scopes_before = list(DefaultScope._instance_dict)
    try:
        DefaultScope.get_instance('test_registry_other', scope_name='mmpretrain')
        with pytest.warns(UserWarning, match='default scope was \'mmpretrain\'; switching to "lrfr"'):
            register_all_modules()
        assert DefaultScope.get_current_instance().scope_name == 'lrfr'
        for registry, name in ((MODELS, 'CentreFaceNet'), (DATASETS, 'TinyFaceDataset'),
                               (TRANSFORMS, 'BicubicDownsample'), (METRICS, 'IdentificationMetric'),
                               (HOOKS, 'EpochSeedHook')):
            assert name in registry.module_dict, (registry.name, name)
        assert set(compat.applied()) == {name for name, needed in compat.guards().items() if needed}
        DefaultScope.get_instance('test_registry_other_2', scope_name='mmpretrain')
        register_all_modules(init_default_scope=False)
        assert DefaultScope.get_current_instance().scope_name == 'mmpretrain'
    finally:  # the current scope is process-global: leave it as this test found it
        for name in list(DefaultScope._instance_dict):
            if name not in scopes_before:
                del DefaultScope._instance_dict[name]


def test_mmpretrain_module_by_scope_prefix():
    register_all_modules()
    backbone = MODELS.build(dict(type='mmpretrain.ResNet', depth=18, out_indices=(3,)))
    backbone.eval()
    out = backbone(torch.randn(1, 3, 32, 32))
    assert out[-1].shape[1] == 512


def test_plugin_from_custom_imports(tmp_path, monkeypatch):
    plugin = tmp_path / 'my_lrfr_plugin.py'
    plugin.write_text(textwrap.dedent('''
        """A third-party backbone living in its own file."""
        import torch
        from lrfr.registry import MODELS


        @MODELS.register_module()
        class PluginMeanNet(torch.nn.Module):
            embed_dim = 3

            def forward(self, x):
                return x.mean(dim=(2, 3))
    '''))
    cfg_file = tmp_path / 'plugin_cfg.py'
    cfg_file.write_text(textwrap.dedent('''
        custom_imports = dict(imports=['my_lrfr_plugin'], allow_failed_imports=False)
        model = dict(type='FaceRecognizer', backbone=dict(type='PluginMeanNet'))
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = Config.fromfile(str(cfg_file))  # imports the plugin, registering PluginMeanNet
    model = MODELS.build(cfg.model)
    x = torch.randn(2, 3, 4, 4)
    assert torch.allclose(model(x, mode='tensor'), x.mean(dim=(2, 3)))
    sys.modules.pop('my_lrfr_plugin', None)


def test_unknown_type_and_key_typo_raise_clearly():
    with pytest.raises(KeyError, match='NoSuchNet'):
        MODELS.build(dict(type='FaceRecognizer', backbone=dict(type='NoSuchNet')))
    with pytest.raises(TypeError, match='backbnoe'):
        MODELS.build(dict(type='FaceRecognizer', backbnoe=dict(type='mmpretrain.ResNet', depth=18)))
