"""tools/analysis_tools/get_flops.py: parameter and multiply-add counts against hand counts, CLI modes."""
import importlib.util
import os.path as osp
import sys

import pytest

import lrfr.models  # noqa: F401
from lrfr.registry import MODELS

TOOL = osp.join(osp.dirname(__file__), '..', '..', 'tools', 'analysis_tools', 'get_flops.py')


@pytest.fixture(scope='module')
def get_flops():
    spec = importlib.util.spec_from_file_location('get_flops', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_deepid2_counts_by_hand(get_flops):
    stats = get_flops.complexity(MODELS.build(dict(type='DeepID2')), (55, 47))
    macs = (3 * 20 * 4 * 4 * 52 * 44  # conv1
            + 20 * 40 * 3 * 3 * 24 * 20  # conv2
            + 40 * 60 * 3 * 3 * 10 * 8  # conv3, locally connected: same MACs as a convolution
            + 60 * 80 * 2 * 2 * 4 * 3  # conv4
            + (60 * 5 * 4 + 80 * 4 * 3) * 160)  # DeepID2 layer
    assert stats['flops'] == macs
    assert stats['params'] == 1018540


def test_default_shape(get_flops):
    assert get_flops.default_shape(MODELS.build(dict(type='DeepID2'))) == (55, 47)
    assert get_flops.default_shape(MODELS.build(dict(type='SRCNN', output_size=(16, 12)))) == (16, 12)
    with pytest.raises(ValueError, match='--shape'):
        get_flops.default_shape(MODELS.build(dict(type='EmbeddingNeck', in_channels=4)))


def test_cli_config_and_model(get_flops, tmp_path, monkeypatch, capsys):
    cfg = tmp_path / 'tiny.py'
    cfg.write_text("model = dict(type='FaceRecognizer', backbone=dict(type='SphereFaceNet', depth=4, "
                   "input_size=(16, 16), width_mult=0.0625, embed_dim=8))\n")
    monkeypatch.setattr(sys, 'argv', ['get_flops.py', str(cfg)])
    get_flops.main()
    out = capsys.readouterr().out
    # 3x3 convs at 8x8, 4x4, 2x2, 1x1 with 3->4->8->16->32 channels, then fc 32 -> 8.
    macs = 9 * (3 * 4 * 64 + 4 * 8 * 16 + 8 * 16 * 4 + 16 * 32 * 1) + 32 * 8
    assert f'FLOPs:   {macs:,}' in out and 'input:   1 x 3 x 16 x 16' in out
    monkeypatch.setattr(sys, 'argv', ['get_flops.py', '--model', 'VDSR', '--model-args', 'num_layers=2',
                                      'mid_channels=4', 'output_size=(8,6)', '--shape', '4', '3'])
    get_flops.main()
    out = capsys.readouterr().out
    assert f'params:  {2 * (3 * 4 * 9) + 4 + 3:,}' in out and 'upsample_bicubic2d' in out


def test_input_size_is_what_the_pipeline_feeds_the_model(get_flops):
    resize = [dict(type='LoadFaceImage'), dict(type='ResizeFace', size=(20, 16)), dict(type='PackFaceInputs')]
    assert get_flops.pipeline_input_shape(resize) == ((20, 16), "the config's test pipeline output")
    lr = [dict(type='LoadFaceImage'), dict(type='BicubicDownsample', size=(10, 8), hr_size=(40, 32)),
          dict(type='PackFaceInputs')]
    assert get_flops.pipeline_input_shape(lr, 'train')[0] == (10, 8)
    native = [dict(type='LoadFaceImage'), dict(type='PackFaceInputs')]
    assert get_flops.pipeline_input_shape(native) == (None, "the test pipeline keeps each image's own size "
                                                            '(no resize)')


@pytest.mark.parametrize('config,shape,source', [
    ('csri_vdsr-centreface_1xb32_demo-pairs-native.py', (56, 48), "the config's test pipeline output"),
    ('vdsr_1xb32_demo-pairs.py', (56, 48), "the config's train pipeline output"),  # SR only: no test loader
])
def test_config_input_shape(get_flops, config, shape, source):
    from lrfr.utils.config_utils import load_config
    cfg = load_config(f'lrfr::demo/{config}')
    model = MODELS.build(cfg.model)
    assert get_flops.input_shape(model, cfg) == (shape, source)
    assert get_flops.input_shape(model, cfg, (7, 5)) == ((7, 5), '--shape')


def test_no_size_anywhere_is_an_error_naming_the_option(get_flops):
    model = MODELS.build(dict(type='EmbeddingNeck', in_channels=4))
    with pytest.raises(get_flops.ConfigError, match=r'declares no input_size; give the image size with --shape '
                                                    r'H W \(no config\)'):
        get_flops.input_shape(model, None)
