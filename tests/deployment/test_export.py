"""ONNX / TorchScript export: the exported graph gives the Python API's embeddings on real demo faces."""
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate

from lrfr.apis import extract_embeddings, init_model
from lrfr.apis.export import export_onnx, export_torchscript, file_sha256
from lrfr.apis.inference import _test_pipeline

ort = pytest.importorskip('onnxruntime')
onnx = pytest.importorskip('onnx')

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs', 'demo')
EXPORT_TOOL = osp.join(REPO, 'tools', 'deployment', 'pytorch2onnx.py')
CONFIGS = {
    'fr-only': 'centreface_1xb32_demo-hr-native.py',
    'sr+fr': 'sr-fr-joint_vdsr-centreface_1xb32_demo-pairs-native.py',
    'csri': 'csri_vdsr-centreface_1xb32_demo-pairs-native.py',
}


def pipeline_batch(model, files):
    """The uint8 NCHW batch the config's test pipeline makes of ``files`` (the graph's input)."""
    pipeline = _test_pipeline(model)
    data = pseudo_collate([pipeline(dict(img_path=f, sample_idx=i)) for i, f in enumerate(files)])
    return torch.stack(data['inputs'])


def model_with_checkpoint(config, tmp_path, **cfg_options):
    """A randomly initialised model saved as a checkpoint and loaded back through init_model."""
    torch.manual_seed(0)
    model = init_model(osp.join(DEMO, config), cfg_options=cfg_options or None)
    model.init_weights()
    ckpt = str(tmp_path / 'model.pth')
    torch.save(dict(state_dict=model.state_dict(), meta={}), ckpt)
    return init_model(osp.join(DEMO, config), ckpt, cfg_options=cfg_options or None), ckpt


@pytest.mark.parametrize('kind', sorted(CONFIGS))
def test_onnx_matches_python_api_on_demo_faces(kind, tmp_path, probe_files):
    model, ckpt = model_with_checkpoint(CONFIGS[kind], tmp_path)
    out = str(tmp_path / 'model.onnx')
    meta = export_onnx(model, out, dynamic_batch=True, checkpoint=ckpt, config_name=CONFIGS[kind])
    session = ort.InferenceSession(out, providers=['CPUExecutionProvider'])
    images = pipeline_batch(model, probe_files)
    assert images.dtype == torch.uint8 and images.shape == (len(probe_files), 3, 56, 48)
    got = session.run(None, {'images': images.numpy()})[0]
    expected = extract_embeddings(model, probe_files, batch_size=5).numpy()
    assert got.shape == expected.shape == (len(probe_files), 128)
    assert np.abs(got - expected).max() <= 1e-4
    assert np.abs(expected).max() > 1e-2  # a real signal, not all zeros
    # one face at a time too (dynamic batch)
    single = session.run(None, {'images': images[:1].numpy()})[0]
    assert np.abs(single - expected[:1]).max() <= 1e-4
    stored = session.get_modelmeta().custom_metadata_map
    assert stored == meta
    assert stored['checkpoint_sha256'] == file_sha256(ckpt)
    assert json.loads(stored['input_size']) == [56, 48] and stored['input_dtype'] == 'uint8'
    assert json.loads(stored['mean']) == [127.5] and json.loads(stored['std']) == [128.0]


def test_onnx_fuses_flips_when_the_metric_does(tmp_path, probe_files):
    options = {'model.flip_test': True, 'test_evaluator.flip_fusion': True}
    model, ckpt = model_with_checkpoint(CONFIGS['csri'], tmp_path, **options)
    out = str(tmp_path / 'flip.onnx')
    meta = export_onnx(model, out, dynamic_batch=True, checkpoint=ckpt)
    assert meta['flip_fusion'] == 'true'
    images = pipeline_batch(model, probe_files[:4]).numpy()
    got = ort.InferenceSession(out, providers=['CPUExecutionProvider']).run(None, {'images': images})[0]
    fused = extract_embeddings(model, probe_files[:4], flip_fusion=True).numpy()
    plain = extract_embeddings(model, probe_files[:4], flip_fusion=False).numpy()
    assert np.abs(got - fused).max() <= 1e-4
    assert np.abs(got - plain).max() > 1e-3  # the fusion is really in the graph


def test_static_batch_onnx_rejects_another_batch_size(tmp_path, probe_files):
    model, _ = model_with_checkpoint(CONFIGS['fr-only'], tmp_path)
    out = str(tmp_path / 'static.onnx')
    export_onnx(model, out, dynamic_batch=False)
    session = ort.InferenceSession(out, providers=['CPUExecutionProvider'])
    assert session.get_inputs()[0].shape == [1, 3, 56, 48]
    with pytest.raises(Exception, match='(?i)dimension|shape'):
        session.run(None, {'images': pipeline_batch(model, probe_files[:2]).numpy()})


def test_torchscript_matches_python_api(tmp_path, probe_files):
    model, ckpt = model_with_checkpoint(CONFIGS['csri'], tmp_path)
    out = str(tmp_path / 'model.pt')
    meta = export_torchscript(model, out, checkpoint=ckpt)
    extra = {'lrfr.json': ''}
    scripted = torch.jit.load(out, _extra_files=extra)
    assert json.loads(extra['lrfr.json']) == meta
    with torch.no_grad():
        got = scripted(pipeline_batch(model, probe_files)).numpy()
    expected = extract_embeddings(model, probe_files).numpy()
    assert np.abs(got - expected).max() <= 1e-4


def run_tool(*args):
    env = {**os.environ, 'PYTHONPATH': REPO, 'OMP_NUM_THREADS': '1'}
    return subprocess.run([sys.executable, EXPORT_TOOL, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env=env)


def test_export_tool_writes_and_verifies(tmp_path):
    out = tmp_path / 'csri.onnx'
    proc = run_tool(osp.join(DEMO, CONFIGS['csri']), '--random-init', '--out', str(out), '--dynamic-batch',
                    '--verify')
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert out.is_file() and 'max abs difference from PyTorch' in proc.stdout
    bad = run_tool(osp.join(DEMO, CONFIGS['csri']), str(tmp_path / 'missing.pth'), '--out', str(out))
    assert bad.returncode != 0 and 'checkpoint not found' in bad.stderr


def test_documented_pillow_resize_reproduces_the_pipeline_input(probe_files):
    """docs/deployment.md tells callers without lrfr to resize with Pillow's bicubic: the same pixels."""
    import cv2
    from PIL import Image
    model = init_model(osp.join(DEMO, CONFIGS['csri']))
    meta_size = (56, 48)
    for f in probe_files[:4]:
        face = np.asarray(Image.fromarray(cv2.imread(f)).resize(meta_size[::-1], Image.BICUBIC))
        assert np.array_equal(face.transpose(2, 0, 1), pipeline_batch(model, [f])[0].numpy())


def test_onnx_upsamples_lr_input_inside_the_graph_like_torch(tmp_path, probe_files):
    """The paper's SR configs feed 20x16 faces: the SR head's bicubic up-sampling is exported too."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(DEMO, CONFIGS['csri']))
    for step in cfg.test_dataloader.dataset.pipeline:
        if step['type'] == 'ResizeFace':
            step['size'] = (20, 16)
    torch.manual_seed(0)
    model = init_model(cfg)
    model.init_weights()
    out = str(tmp_path / 'lr.onnx')
    meta = export_onnx(model, out, dynamic_batch=True)
    assert json.loads(meta['input_size']) == [20, 16]
    images = pipeline_batch(model, probe_files)
    assert images.shape[-2:] == (20, 16)
    got = ort.InferenceSession(out, providers=['CPUExecutionProvider']).run(None, {'images': images.numpy()})[0]
    assert np.abs(got - extract_embeddings(model, probe_files).numpy()).max() <= 1e-4


def test_onnx_of_a_pretrained_style_config_rgb_flip_fusion_and_unit_length(tmp_path, probe_files):
    """configs/pretrained: BGR->RGB and (x - 127.5) / 127.5 in the graph, flip fusion, L2 normalisation."""
    config = osp.join(REPO, 'configs', 'pretrained', 'arcface-torch_iresnet50_1xb128_tinyface.py')
    torch.manual_seed(0)
    model = init_model(config, cfg_options={'model.backbone.depth': 18})
    model.init_weights()
    out = str(tmp_path / 'ir18.onnx')
    meta = export_onnx(model, out, dynamic_batch=True)
    assert (meta['flip_fusion'], meta['l2_normalize'], meta['distance']) == ('true', 'true', 'cosine')
    assert 'BGR->RGB' in meta['normalisation'] and json.loads(meta['std']) == [127.5]
    files = probe_files[:3]
    images = pipeline_batch(model, files)
    assert images.shape[-2:] == (112, 112)
    got = ort.InferenceSession(out, providers=['CPUExecutionProvider']).run(None, {'images': images.numpy()})[0]
    expected = extract_embeddings(model, files, l2_normalize=True).numpy()  # flip_test: fused
    assert np.abs(got - expected).max() <= 1e-4
    assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)
