"""Export the whole embedding path of an lrfr model (normalisation, SR head, FR backbone, neck, flip fusion,
L2 normalisation) as one graph: ONNX (for onnxruntime and other runtimes) or TorchScript.

The graph's input is the batch the test pipeline produces, stacked: ``(N, 3, H, W)`` **uint8**, in the
pipeline's channel order (BGR, as OpenCV loads it) and already resized to ``H x W`` by the pipeline's
``ResizeFace``. Its output is the matching feature the config's ``IdentificationMetric`` uses
(``(embedding + embedding_flip) / 2`` when it fuses flips, then L2-normalised when it normalises), so the
exported model and ``tools/test.py`` compare faces the same way. The preprocessing a caller must do is
written into the model (ONNX ``metadata_props``, TorchScript ``_extra_files['lrfr.json']``) by
:func:`export_metadata`.
"""
import hashlib
import json
import os
import os.path as osp
from typing import Any, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

#: Version of the metadata layout written by :func:`export_metadata`.
EXPORT_FORMAT = 1
INPUT_NAME = 'images'
OUTPUT_NAME = 'embeddings'


def file_sha256(path: str) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks (checkpoints can be large)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def identification_options(cfg: Any) -> Dict[str, Any]:
    """``flip_fusion``, ``l2_normalize`` and ``distance`` of the config's (first) ``IdentificationMetric``.

    A config without one (e.g. an SR-only model) gets the metric's defaults: no fusion, raw features,
    Euclidean distance.
    """
    evaluators = cfg.get('test_evaluator') or []
    evaluators = evaluators if isinstance(evaluators, (list, tuple)) else [evaluators]
    metric = next((e for e in evaluators if e.get('type') == 'IdentificationMetric'), {})
    return dict(flip_fusion=bool(metric.get('flip_fusion', False)),
                l2_normalize=bool(metric.get('l2_normalize', False)),
                distance=str(metric.get('distance', 'euclidean')))


def pipeline_input_size(cfg: Any) -> Tuple[int, int]:
    """``(H, W)`` the test pipeline resizes faces to (its last ``ResizeFace``)."""
    loader = cfg.get('test_dataloader')
    if not loader:
        raise ValueError('the config has no test_dataloader: there is no test pipeline to export for')
    sizes = [t['size'] for t in loader['dataset']['pipeline'] if t.get('type') == 'ResizeFace']
    if not sizes:
        raise ValueError('the config\'s test pipeline has no ResizeFace: the input size of the exported '
                         'graph is unknown')
    return int(sizes[-1][0]), int(sizes[-1][1])


class EmbeddingGraph(nn.Module):
    """uint8 ``(N, 3, H, W)`` test-pipeline images -> the metric's matching features ``(N, D)`` float32.

    Composes the model's own parts (its data preprocessor's ``normalize``, ``fr_input`` = identity or SR,
    ``embed_images`` = backbone + neck) so the exported graph cannot drift from ``predict``.

    Args:
        model: an lrfr recogniser (``FaceRecognizer`` and subclasses) in eval mode.
        flip_fusion (bool): average with the embedding of the mirrored FR input, as ``predict`` with
            ``flip_test`` and the metric's ``flip_fusion`` do.
        l2_normalize (bool): unit-length output (after the fusion, as the metric does).
    """

    def __init__(self, model: nn.Module, flip_fusion: bool = False, l2_normalize: bool = False) -> None:
        super().__init__()
        for name in ('fr_input', 'embed_images', 'data_preprocessor'):
            if not hasattr(model, name):
                raise TypeError(f'{type(model).__name__} has no {name}: only face recognisers '
                                '(FaceRecognizer, SRFaceRecognizer, CSRI) can be exported')
        self.model = model
        self.flip_fusion = flip_fusion
        self.l2_normalize = l2_normalize

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        fr_images = self.model.fr_input(self.model.data_preprocessor.normalize(images))
        feats = self.model.embed_images(fr_images)
        if self.flip_fusion:
            feats = (feats + self.model.embed_images(fr_images.flip(-1))) / 2
        if self.l2_normalize:
            feats = F.normalize(feats, dim=1)
        return feats


def export_metadata(model: nn.Module, checkpoint: Optional[str] = None,
                    config_name: Optional[str] = None) -> Dict[str, str]:
    """What a caller of the exported graph must know, as string key/values (ONNX ``metadata_props``).

    Keys: ``lrfr_export_format``, ``input_layout`` (``NCHW``), ``input_dtype`` (``uint8``),
    ``input_size`` (``[H, W]``), ``colour_order`` (``BGR``: what ``LoadFaceImage`` decodes),
    ``normalisation`` (done inside the graph: ``(x - mean) / std``, with ``to_rgb``), ``mean``, ``std``,
    ``resize`` (the pipeline's ``ResizeFace`` as JSON), ``flip_fusion``, ``l2_normalize``, ``distance``,
    ``embed_dim``, ``config``, ``checkpoint_sha256``.
    """
    cfg = model.cfg
    opts = identification_options(cfg)
    pre = model.data_preprocessor
    resize = [t for t in cfg.test_dataloader['dataset']['pipeline'] if t.get('type') == 'ResizeFace'][-1]
    return {
        'lrfr_export_format': str(EXPORT_FORMAT),
        'input_layout': 'NCHW',
        'input_dtype': 'uint8',
        'input_size': json.dumps(list(pipeline_input_size(cfg))),
        'colour_order': 'BGR',  # LoadFaceImage decodes with OpenCV
        'normalisation': 'inside the graph: (x - mean) / std' + (', BGR->RGB first' if pre.to_rgb else ''),
        'mean': json.dumps(pre.mean.flatten().tolist()),
        'std': json.dumps(pre.std.flatten().tolist()),
        # ResizeFace's default filter, and its implementation (not OpenCV's: Pillow's filters anti-alias)
        'resize': json.dumps(dict(dict(interpolation='bicubic'), **dict(resize),
                                  implementation='Pillow Image.resize on the HWC uint8 image')),
        'flip_fusion': json.dumps(opts['flip_fusion']),
        'l2_normalize': json.dumps(opts['l2_normalize']),
        'distance': opts['distance'],
        'embed_dim': str(int(getattr(model.backbone, 'embed_dim', 0)) or ''),
        'config': config_name or str(getattr(cfg, 'filename', '') or ''),
        'checkpoint_sha256': file_sha256(checkpoint) if checkpoint else 'random-init',
    }


def _graph_and_example(model: nn.Module, batch: int) -> Tuple[EmbeddingGraph, torch.Tensor]:
    opts = identification_options(model.cfg)
    graph = EmbeddingGraph(model.eval(), opts['flip_fusion'], opts['l2_normalize']).eval()
    height, width = pipeline_input_size(model.cfg)
    example = torch.randint(0, 256, (batch, 3, height, width), dtype=torch.uint8)
    return graph, example


def _atomic_target(out: str) -> str:
    folder = osp.dirname(osp.abspath(out))
    os.makedirs(folder, exist_ok=True)
    return osp.join(folder, f'.{osp.basename(out)}.tmp{os.getpid()}')


def export_onnx(model: nn.Module, out: str, dynamic_batch: bool = False, opset: int = 17,
                checkpoint: Optional[str] = None, config_name: Optional[str] = None) -> Dict[str, str]:
    """Write the model's embedding graph (:class:`EmbeddingGraph`) to ``out`` as ONNX, with the
    preprocessing metadata of :func:`export_metadata`; returns that metadata.

    Uses torch's TorchScript-based exporter (``dynamo=False``): it needs only ``onnx``, and the models are
    plain convolution stacks it handles. ``dynamic_batch`` makes the batch axis symbolic (else it is 1).
    """
    import onnx  # the [deploy] extra; imported here so lrfr.apis works without it

    graph, example = _graph_and_example(model, batch=2 if dynamic_batch else 1)
    metadata = export_metadata(model, checkpoint, config_name)
    tmp = _atomic_target(out)
    try:
        with torch.no_grad():
            torch.onnx.export(graph, (example,), tmp, dynamo=False, opset_version=opset,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_axes={INPUT_NAME: {0: 'batch'}, OUTPUT_NAME: {0: 'batch'}}
                              if dynamic_batch else None)
        proto = onnx.load(tmp)
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(proto)
        onnx.save(proto, tmp)
        os.replace(tmp, out)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    return metadata


def export_torchscript(model: nn.Module, out: str, checkpoint: Optional[str] = None,
                       config_name: Optional[str] = None) -> Dict[str, str]:
    """Trace the embedding graph to TorchScript at ``out`` (any batch size: the models have no
    batch-dependent control flow); the metadata goes in the archive as ``lrfr.json``
    (``torch.jit.load(out, _extra_files={'lrfr.json': ''})``). Returns the metadata."""
    graph, example = _graph_and_example(model, batch=2)
    metadata = export_metadata(model, checkpoint, config_name)
    tmp = _atomic_target(out)
    try:
        with torch.no_grad():
            traced = torch.jit.trace(graph, (example,), check_trace=False)
        torch.jit.save(traced, tmp, _extra_files={'lrfr.json': json.dumps(metadata)})
        os.replace(tmp, out)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    return metadata
