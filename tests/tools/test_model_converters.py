"""tools/model_converters: arcface_torch iresnet and AdaFace ir checkpoints in, lrfr checkpoints out, exactly.

The public layouts are restated here from the published sources (InsightFace
``recognition/arcface_torch/backbones/iresnet.py``; AdaFace ``net.py``): key names, shapes, unit counts per
depth, where the shortcut convolutions are. Small depths get random values (BN running statistics too) and
lrfr's forward on the converted weights is compared with a functional restatement of each published
forward, written with ``torch.nn.functional`` from the source's state dict, never through lrfr. Every
depth's table is checked on meta tensors; wrong family, wrong depth and stray keys must fail with the keys.
"""
import os.path as osp
import sys
from typing import Dict, Tuple

import pytest
import torch
import torch.nn.functional as F

from lrfr.apis import load_checkpoint_strict
from lrfr.registry import MODELS
from lrfr.utils import register_all_modules

TOOLS = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'tools', 'model_converters')
sys.path.insert(0, TOOLS)
import _convert  # noqa: E402
import adaface_ir  # noqa: E402
import insightface_iresnet  # noqa: E402

register_all_modules()

#: Units per stage of each published depth (arcface_torch iresnet*, AdaFace get_blocks; ir_101 has 100).
UNITS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 14, 3), 100: (3, 13, 30, 3), 200: (6, 26, 60, 6)}
WIDTHS = (64, 128, 256, 512)
EMBED = 512
FC_IN = 512 * 7 * 7  # 112x112 input, four stride-2 stages


def _bn(prefix: str, c: int, affine: bool = True) -> Dict[str, Tuple[int, ...]]:
    keys = {f'{prefix}.running_mean': (c,), f'{prefix}.running_var': (c,), f'{prefix}.num_batches_tracked': ()}
    if affine:
        keys.update({f'{prefix}.weight': (c,), f'{prefix}.bias': (c,)})
    return keys


def arcface_layout(depth: int) -> Dict[str, Tuple[int, ...]]:
    """arcface_torch ``iresnet{depth}``'s state dict: names and shapes."""
    keys = {'conv1.weight': (64, 3, 3, 3), 'prelu.weight': (64,), **_bn('bn1', 64)}
    cin = 64
    for s, (n, c) in enumerate(zip(UNITS[depth], WIDTHS), 1):
        for j in range(n):
            p, i = f'layer{s}.{j}', cin if j == 0 else c
            keys.update({**_bn(f'{p}.bn1', i), f'{p}.conv1.weight': (c, i, 3, 3), **_bn(f'{p}.bn2', c),
                         f'{p}.prelu.weight': (c,), f'{p}.conv2.weight': (c, c, 3, 3), **_bn(f'{p}.bn3', c)})
            if j == 0:  # stride 2 in every stage's first unit: always a 1x1 conv + BN shortcut
                keys.update({f'{p}.downsample.0.weight': (c, i, 1, 1), **_bn(f'{p}.downsample.1', c)})
        cin = c
    keys.update({**_bn('bn2', 512), 'fc.weight': (EMBED, FC_IN), 'fc.bias': (EMBED,), **_bn('features', EMBED)})
    return keys


def adaface_layout(depth: int, classes: int = 7) -> Dict[str, Tuple[int, ...]]:
    """AdaFace ``ir_{depth}``'s Lightning ``state_dict``: ``model.`` backbone and ``head.`` AdaFace head."""
    keys = {'input_layer.0.weight': (64, 3, 3, 3), **_bn('input_layer.1', 64), 'input_layer.2.weight': (64,)}
    cin, k = 64, 0
    for n, c in zip(UNITS[depth], WIDTHS):
        for j in range(n):
            i = cin if j == 0 else c
            p = f'body.{k}'
            keys.update({**_bn(f'{p}.res_layer.0', i), f'{p}.res_layer.1.weight': (c, i, 3, 3),
                         **_bn(f'{p}.res_layer.2', c), f'{p}.res_layer.3.weight': (c,),
                         f'{p}.res_layer.4.weight': (c, c, 3, 3), **_bn(f'{p}.res_layer.5', c)})
            if i != c:  # width changes: conv + BN; otherwise MaxPool2d(1, stride), no tensors
                keys.update({f'{p}.shortcut_layer.0.weight': (c, i, 1, 1), **_bn(f'{p}.shortcut_layer.1', c)})
            k += 1
        cin = c
    keys.update({**_bn('output_layer.0', 512), 'output_layer.3.weight': (EMBED, FC_IN),
                 'output_layer.3.bias': (EMBED,), **_bn('output_layer.4', EMBED, affine=False)})
    out = {f'model.{key}': shape for key, shape in keys.items()}
    out.update({'head.kernel': (EMBED, classes), 'head.t': (1,), 'head.batch_mean': (1,),
                'head.batch_std': (1,)})
    return out


def random_state(layout: Dict[str, Tuple[int, ...]], seed: int = 0) -> Dict[str, torch.Tensor]:
    """Random tensors of a layout, scaled so activations stay O(1) through the net."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in layout.items():
        if key.endswith('num_batches_tracked'):
            state[key] = torch.tensor(int(torch.randint(1, 1000, (), generator=g)))
        elif key.endswith('running_var'):
            state[key] = 0.5 + torch.rand(shape, generator=g)
        elif key.endswith('running_mean') or key.endswith('bias'):
            state[key] = 0.1 * torch.randn(shape, generator=g)
        elif len(shape) >= 2:  # conv / fc weights: unit gain
            fan_in = int(torch.tensor(shape[1:]).prod())
            state[key] = torch.randn(shape, generator=g) / fan_in ** 0.5
        elif key.endswith(('prelu.weight', 'input_layer.2.weight', 'res_layer.3.weight')):  # PReLU slopes
            state[key] = 0.25 + 0.05 * torch.randn(shape, generator=g)
        else:  # BN scales
            state[key] = 1 + 0.1 * torch.randn(shape, generator=g)
    return state


def meta_state(layout: Dict[str, Tuple[int, ...]]) -> Dict[str, torch.Tensor]:
    return {k: torch.empty(shape, device='meta') for k, shape in layout.items()}


# -- functional restatements of the published forwards ---------------------------------------------------------
def _f_bn(x: torch.Tensor, sd: Dict[str, torch.Tensor], p: str) -> torch.Tensor:
    return F.batch_norm(x, sd[f'{p}.running_mean'], sd[f'{p}.running_var'], sd.get(f'{p}.weight'),
                        sd.get(f'{p}.bias'), training=False, eps=1e-5)


def arcface_forward(sd: Dict[str, torch.Tensor], x: torch.Tensor, depth: int) -> torch.Tensor:
    """arcface_torch ``IResNet.forward`` in eval mode: stem, IBasicBlocks, BN2d-flatten-FC-BN1d."""
    x = F.prelu(_f_bn(F.conv2d(x, sd['conv1.weight'], padding=1), sd, 'bn1'), sd['prelu.weight'])
    for s, n in enumerate(UNITS[depth], 1):
        for j in range(n):
            p, stride = f'layer{s}.{j}', 2 if j == 0 else 1
            y = F.conv2d(_f_bn(x, sd, f'{p}.bn1'), sd[f'{p}.conv1.weight'], padding=1)
            y = F.prelu(_f_bn(y, sd, f'{p}.bn2'), sd[f'{p}.prelu.weight'])
            y = _f_bn(F.conv2d(y, sd[f'{p}.conv2.weight'], stride=stride, padding=1), sd, f'{p}.bn3')
            if f'{p}.downsample.0.weight' in sd:
                x = _f_bn(F.conv2d(x, sd[f'{p}.downsample.0.weight'], stride=stride), sd, f'{p}.downsample.1')
            x = y + x
    x = torch.flatten(_f_bn(x, sd, 'bn2'), 1)
    return _f_bn(F.linear(x, sd['fc.weight'], sd['fc.bias']), sd, 'features')


def adaface_forward(sd: Dict[str, torch.Tensor], x: torch.Tensor, depth: int) -> Tuple[torch.Tensor, ...]:
    """AdaFace ``Backbone.forward`` in eval mode: returns ``(x / |x|, |x|)`` as AdaFace does."""
    m = {k[len('model.'):]: v for k, v in sd.items() if k.startswith('model.')}
    x = F.prelu(_f_bn(F.conv2d(x, m['input_layer.0.weight'], padding=1), m, 'input_layer.1'),
                m['input_layer.2.weight'])
    k = 0
    for n in UNITS[depth]:
        for j in range(n):
            p, stride = f'body.{k}', 2 if j == 0 else 1
            y = F.conv2d(_f_bn(x, m, f'{p}.res_layer.0'), m[f'{p}.res_layer.1.weight'], padding=1)
            y = F.prelu(_f_bn(y, m, f'{p}.res_layer.2'), m[f'{p}.res_layer.3.weight'])
            y = _f_bn(F.conv2d(y, m[f'{p}.res_layer.4.weight'], stride=stride, padding=1), m, f'{p}.res_layer.5')
            if f'{p}.shortcut_layer.0.weight' in m:
                x = _f_bn(F.conv2d(x, m[f'{p}.shortcut_layer.0.weight'], stride=stride), m,
                          f'{p}.shortcut_layer.1')
            else:  # MaxPool2d(kernel 1, stride): every stride-th pixel
                x = x[:, :, ::stride, ::stride]
            x = y + x
            k += 1
    x = torch.flatten(_f_bn(x, m, 'output_layer.0'), 1)
    x = _f_bn(F.linear(x, m['output_layer.3.weight'], m['output_layer.3.bias']), m, 'output_layer.4')
    norm = torch.norm(x, 2, 1, True)
    return x / norm, norm


def _close(ours: torch.Tensor, ref: torch.Tensor) -> None:
    scale = float(ref.abs().max())
    assert scale > 1e-3  # a net that outputs ~0 would compare equal trivially
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5 * scale)


# -- exact conversion at depth 18 --------------------------------------------------------------------------------
def _face_model(backbone: dict) -> torch.nn.Module:
    return MODELS.build(dict(type='FaceRecognizer', backbone=backbone)).eval()


def test_arcface_iresnet18_converts_exactly(tmp_path):
    sd = random_state(arcface_layout(18), seed=1)
    src, out = str(tmp_path / 'backbone.pth'), str(tmp_path / 'r18.pth')
    torch.save(sd, src)
    meta = insightface_iresnet.convert(src, out, 18)
    assert meta['source'] == 'arcface_torch iresnet18' and meta['source_file'] == 'backbone.pth'
    assert meta['sha256'] == _convert.file_sha256(src) and len(meta['sha256']) == 64
    model = _face_model(meta['backbone'])
    checkpoint = load_checkpoint_strict(model, out)  # what tools/test.py does
    assert checkpoint['meta']['sha256'] == meta['sha256']
    x = torch.randn(2, 3, 112, 112)
    _close(model.tensor(x), arcface_forward(sd, x, 18))


def test_adaface_ir18_converts_exactly(tmp_path):
    sd = random_state(adaface_layout(18), seed=2)
    src, out = str(tmp_path / 'adaface_ir18.ckpt'), str(tmp_path / 'ir18.pth')
    torch.save({'epoch': 3, 'global_step': 10, 'state_dict': sd}, src)
    meta = adaface_ir.convert(src, out, 18)
    assert meta['source'] == 'AdaFace ir18'
    assert meta['dropped_keys'] == ['head.batch_mean', 'head.batch_std', 'head.kernel', 'head.t']
    model = _face_model(meta['backbone'])
    load_checkpoint_strict(model, out)
    x = torch.randn(2, 3, 112, 112)
    emb = model.tensor(x)
    ref, norm = adaface_forward(sd, x, 18)
    _close(emb, ref * norm)  # lrfr keeps the un-normalised embedding: AdaFace's output times its norm
    _close(F.normalize(emb, dim=1), ref)


# -- every published depth, on meta tensors ----------------------------------------------------------------------
@pytest.mark.parametrize('depth', insightface_iresnet.DEPTHS)
def test_arcface_depth_tables(depth):
    layout = arcface_layout(depth)
    mapped = _convert.map_state(meta_state(layout), insightface_iresnet.backbone_cfg(depth),
                                insightface_iresnet.to_source, depth, 'x', 'f')
    assert {k: tuple(v.shape) for k, v in mapped.items()} == layout
    assert _convert.guess_layout(layout) == ('arcface_torch iresnet', depth)


@pytest.mark.parametrize('depth', adaface_ir.DEPTHS)
def test_adaface_depth_tables(depth):
    layout = adaface_layout(depth)
    state, dropped = adaface_ir.extract(meta_state(layout), 'f')
    assert len(dropped) == 4
    mapped = _convert.map_state(state, adaface_ir.backbone_cfg(depth), adaface_ir.to_source, depth, 'x', 'f')
    assert len(mapped) == len(layout) - 4
    assert sum(v.numel() for v in mapped.values()) == sum(
        int(torch.tensor(s).prod()) for k, s in layout.items() if k.startswith('model.'))
    # what arcface_torch has and AdaFace not: the first unit's shortcut conv, the embedding BN's scale/shift
    assert set(arcface_layout(depth)) - set(mapped) == {
        'layer1.0.downsample.0.weight', *_bn('layer1.0.downsample.1', 64), 'features.weight', 'features.bias'}
    assert set(mapped) <= set(arcface_layout(depth))
    assert _convert.guess_layout(layout) == ('AdaFace ir', depth)


# -- bad input -----------------------------------------------------------------------------------------------------
def test_wrong_depth_names_the_keys_and_the_depth(tmp_path):
    src = str(tmp_path / 'r50.pth')
    torch.save(meta_state(arcface_layout(50)), src)
    # iresnet100 has 25 more units than iresnet50, of 18 tensors each
    with pytest.raises(_convert.ConversionError,
                       match=r'r50\.pth does not fit arcface_torch iresnet100: 450 expected keys missing '
                             r'\(first: layer2\.4\.bn1\.weight \(128,\).*it looks like arcface_torch iresnet50: '
                             r'use tools/model_converters/insightface_iresnet\.py --depth 50'):
        insightface_iresnet.convert(src, str(tmp_path / 'out.pth'), 100)
    assert not osp.exists(tmp_path / 'out.pth')


def test_other_family_is_named(tmp_path):
    ada, arc = str(tmp_path / 'ada.ckpt'), str(tmp_path / 'arc.pth')
    torch.save({'state_dict': meta_state(adaface_layout(50))}, ada)
    torch.save(meta_state(arcface_layout(100)), arc)
    with pytest.raises(_convert.ConversionError,
                       match=r'ada\.ckpt: expected a plain state dict of tensors .*\[\'state_dict\'\]'):
        insightface_iresnet.convert(ada, str(tmp_path / 'o.pth'), 50)
    torch.save(meta_state({k[6:]: s for k, s in adaface_layout(50).items() if k.startswith('model.')}), ada)
    with pytest.raises(_convert.ConversionError,
                       match=r'does not fit arcface_torch iresnet50: \d+ expected keys missing \(first: '
                             r'conv1\.weight \(64, 3, 3, 3\).*unexpected keys \(first: input_layer\.0\.weight.*'
                             r'it looks like AdaFace ir50: use tools/model_converters/adaface_ir\.py --depth 50'):
        insightface_iresnet.convert(ada, str(tmp_path / 'o.pth'), 50)
    with pytest.raises(_convert.ConversionError,
                       match=r'arc\.pth does not fit AdaFace ir100: .*unexpected keys \(first: conv1\.weight.*'
                             r'it looks like arcface_torch iresnet100: use '
                             r'tools/model_converters/insightface_iresnet\.py --depth 100'):
        adaface_ir.convert(arc, str(tmp_path / 'o.pth'), 100)


def test_shape_mismatch_and_stray_keys(tmp_path):
    layout = adaface_layout(18)
    layout['model.output_layer.3.weight'] = (EMBED, 512 * 14 * 14)  # a 224x224 variant
    layout['model.extra.weight'] = (3,)
    src = str(tmp_path / 'x.ckpt')
    torch.save({'state_dict': meta_state(layout)}, src)
    with pytest.raises(_convert.ConversionError,
                       match=r'1 unexpected keys \(first: extra\.weight\); 1 shape mismatches \(first: '
                             r'output_layer\.3\.weight file \(512, 100352\) vs expected \(512, 25088\)\)'):
        adaface_ir.convert(src, str(tmp_path / 'o.pth'), 18)


def test_unknown_layout_and_pickles(tmp_path):
    src = str(tmp_path / 'x.pth')
    torch.save({'w': torch.zeros(2)}, src)
    with pytest.raises(_convert.ConversionError, match=r'match neither arcface_torch iresnet .* nor AdaFace ir'):
        insightface_iresnet.convert(src, str(tmp_path / 'o.pth'), 18)
    torch.save({'state_dict': {}, 'hparams': _Opaque()}, src)
    with pytest.raises(_convert.ConversionError, match=r'x\.pth: holds Python objects .*pass --allow-pickle'):
        adaface_ir.convert(src, str(tmp_path / 'o.pth'), 18)
    with pytest.raises(_convert.ConversionError, match=r'--depth must be one of \(18, 34, 50, 100\) '
                                                         r'\(100 for ir_101\), got 101'):
        adaface_ir.convert(src, str(tmp_path / 'o.pth'), 101)


class _Opaque:
    """Stands for a Lightning hyper-parameter object that tensors-only loading refuses."""


def test_command_line(tmp_path):
    """The documented command: converts, and a wrong depth exits with the message, no traceback."""
    import subprocess
    src = str(tmp_path / 'backbone.pth')
    torch.save(random_state(arcface_layout(18)), src)
    script = osp.join(TOOLS, 'insightface_iresnet.py')
    done = subprocess.run([sys.executable, script, src, str(tmp_path / 'o.pth'), '--depth', '18'],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert 'arcface_torch iresnet18 from backbone.pth (sha256 ' in done.stdout
    failed = subprocess.run([sys.executable, script, src, str(tmp_path / 'p.pth'), '--depth', '34'],
                            capture_output=True, text=True)
    assert failed.returncode == 1 and 'Traceback' not in failed.stderr
    assert 'error: backbone.pth does not fit arcface_torch iresnet34' in failed.stderr
