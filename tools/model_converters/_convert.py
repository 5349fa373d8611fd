"""What the pretrained-model converters share: reading a foreign checkpoint safely, checking it key by key
against the lrfr backbone it should fill, naming what does not fit (and what the file looks like instead),
and writing an lrfr checkpoint that ``tools/test.py`` loads strictly.

A family module gives the lrfr backbone config for a depth and the source's name of every lrfr key
(``lrfr -> source`` is a total function, so the expected file layout is derived from lrfr's own module tree
and never written twice). The comparison is done in the source's names, the ones the user sees in the file.
"""
import hashlib
import os
import os.path as osp
import pickle
import re
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import torch

from lrfr.models.backbones import AdaFaceIR, IResNet
from lrfr.registry import MODELS
from lrfr.utils import register_all_modules

#: ``(lrfr key, depth) -> the source checkpoint's name of that tensor``.
KeyMap = Callable[[str, int], str]


class ConversionError(ValueError):
    """A checkpoint that does not fit the family/depth asked for (the message names the first keys)."""


def file_sha256(path: str) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks (recorded in the converted checkpoint's meta)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def load_source(path: str, allow_pickle: bool = False) -> dict:
    """Read a PyTorch checkpoint as a dict on the CPU.

    Tensors-only loading (``weights_only=True``) first: a checkpoint is a pickle and can run code. Lightning
    checkpoints may also hold hyper-parameter objects that only full unpickling restores; that needs
    ``allow_pickle`` (``--allow-pickle``), for files the user trusts.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    try:
        obj = torch.load(path, map_location='cpu', weights_only=not allow_pickle)
    except pickle.UnpicklingError as e:
        raise ConversionError(
            f'{path}: holds Python objects besides tensors ({str(e).splitlines()[0]}); if you trust the file, '
            'pass --allow-pickle') from None
    if not isinstance(obj, dict):
        raise ConversionError(f'{path}: expected a dict of tensors or a checkpoint dict, got {type(obj).__name__}')
    return obj


def strip_prefix(state: Dict[str, torch.Tensor], prefix: str) -> Dict[str, torch.Tensor]:
    """Drop ``prefix`` from the keys when every key has it (DDP's ``module.``)."""
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items()}
    return state


def target_shapes(backbone_cfg: dict) -> Dict[str, Tuple[int, ...]]:
    """Key -> shape of the lrfr backbone's state dict, built on the meta device (no memory, any depth)."""
    register_all_modules()
    with torch.device('meta'):
        model = MODELS.build(backbone_cfg)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


# -- what does a file look like? -------------------------------------------------------------------------------
def _count_units(keys: Iterable[str], pattern: str) -> Dict[int, set]:
    found: Dict[int, set] = {}
    for key in keys:
        match = re.match(pattern, key)
        if match:
            found.setdefault(int(match.group(1)), set()).add(int(match.group(2)))
    return found


def guess_layout(keys: Iterable[str]) -> Optional[Tuple[str, Optional[int]]]:
    """``(family, depth)`` a state dict's keys look like, or None.

    InsightFace's IResNet names its stages ``layer1..4`` (depth from the units per stage); AdaFace's IR net
    numbers its units in one ``body`` sequence (depth from their count). ``depth`` is None when the counts
    match no published net.
    """
    keys = [re.sub(r'^(module\.|model\.)', '', k) for k in keys]
    stages = _count_units(keys, r'^layer(\d)\.(\d+)\.')
    if stages and 'conv1.weight' in keys:
        units = tuple(len(stages.get(i, ())) for i in range(1, 5))
        depth = {v: k for k, v in IResNet.arch_settings.items()}.get(units)
        return 'arcface_torch iresnet', depth
    body = {int(m.group(1)) for m in (re.match(r'^body\.(\d+)\.', k) for k in keys) if m}
    if body and any(k.startswith('input_layer.') for k in keys):
        depth = {sum(v): k for k, v in AdaFaceIR.arch_settings.items()}.get(len(body))
        return 'AdaFace ir', depth
    return None


#: How to convert a file of each family (for the hint in errors).
CONVERTERS = {'arcface_torch iresnet': 'tools/model_converters/insightface_iresnet.py',
              'AdaFace ir': 'tools/model_converters/adaface_ir.py'}


def describe_guess(keys: Iterable[str]) -> str:
    """A sentence on what the file looks like, for an error message ('' when nothing is recognised)."""
    guess = guess_layout(keys)
    if guess is None:
        return ('; its keys match neither arcface_torch iresnet (conv1 / layer1..4 / fc / features) nor '
                'AdaFace ir (input_layer / body / output_layer)')
    family, depth = guess
    if depth is None:
        return f'; it looks like an {family} checkpoint of a depth not published (unit counts unknown)'
    return f'; it looks like {family}{depth}: use {CONVERTERS[family]} --depth {depth}'


# -- the check and the conversion --------------------------------------------------------------------------------
def _first(items: List[str], n: int = 3) -> str:
    return ', '.join(items[:n]) + (', ...' if len(items) > n else '')


def map_state(state: Dict[str, torch.Tensor], backbone_cfg: dict, to_source: KeyMap, depth: int,
              what: str, source_file: str) -> Dict[str, torch.Tensor]:
    """Check ``state`` (source names) against the lrfr backbone and return it under lrfr's names.

    Every lrfr key must be in the file under its source name with the same shape, and the file must hold
    nothing else. Otherwise a :class:`ConversionError` names the file, what was asked for, the first missing
    keys with their expected shapes, the first unexpected keys, the first shape mismatches, and the family
    and depth the file looks like.

    Args:
        state: the file's tensors in the source's names (prefixes and head already handled).
        backbone_cfg: the lrfr backbone the file should fill.
        to_source: lrfr key -> the source's name of it, for ``depth``.
        depth: the depth asked for.
        what: e.g. ``'arcface_torch iresnet50'``, for messages.
        source_file: the file name, for messages.
    """
    expected = {to_source(k, depth): (k, shape) for k, shape in target_shapes(backbone_cfg).items()}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != expected[k][1]]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f'{len(missing)} expected keys missing (first: '
                         + _first([f'{k} {expected[k][1]}' for k in missing]) + ')')
        if unexpected:
            parts.append(f'{len(unexpected)} unexpected keys (first: {_first(unexpected)})')
        if wrong:
            parts.append(f'{len(wrong)} shape mismatches (first: '
                         + _first([f'{k} file {tuple(state[k].shape)} vs expected {expected[k][1]}'
                                   for k in wrong]) + ')')
        raise ConversionError(f'{source_file} does not fit {what}: ' + '; '.join(parts)
                              + describe_guess(state))
    return {lrfr_key: state[src].detach().clone() for src, (lrfr_key, _) in expected.items()}


def strict_load(backbone_cfg: dict, state: Dict[str, torch.Tensor]) -> torch.nn.Module:
    """Build the lrfr backbone on the CPU and load ``state`` into it strictly (the proof it fits)."""
    register_all_modules()
    model = MODELS.build(backbone_cfg)
    model.load_state_dict(state, strict=True)
    return model.eval()


def save_checkpoint(state: Dict[str, torch.Tensor], out: str, meta: dict) -> None:
    """Write ``{'state_dict': backbone.* keys, 'meta': meta}``, what ``FaceRecognizer`` without a head holds."""
    if osp.dirname(out):
        os.makedirs(osp.dirname(out), exist_ok=True)
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in state.items()}, 'meta': meta}, out)


def convert_file(src: str, out: str, depth: int, what: str, backbone_cfg: dict, to_source: KeyMap,
                 extract: Callable[[dict, str], Tuple[Dict[str, torch.Tensor], List[str]]],
                 converter: str, allow_pickle: bool = False) -> dict:
    """Read ``src``, check and rename its backbone tensors, load them strictly, write ``out``; return meta.

    ``extract(checkpoint, src)`` returns the backbone tensors in the source's names and the keys it dropped
    (e.g. a classifier head).
    """
    checkpoint = load_source(src, allow_pickle)
    state, dropped = extract(checkpoint, src)
    mapped = map_state(state, backbone_cfg, to_source, depth, what, osp.basename(src))
    strict_load(backbone_cfg, mapped)
    meta = dict(source=what, source_file=osp.basename(src), sha256=file_sha256(src), converter=converter,
                backbone=backbone_cfg, dropped_keys=dropped)
    save_checkpoint(mapped, out, meta)
    return meta


def run_converter(convert: Callable[[str, str, int, bool], dict], parser) -> None:
    """The command line every converter shares: parse ``src out --depth --allow-pickle``, convert, print one line.

    A :class:`ConversionError` (wrong family, depth or file) ends the tool with ``error: <message>``.
    """
    args = parser.parse_args()
    try:
        meta = convert(args.src, args.out, args.depth, args.allow_pickle)
    except ConversionError as e:
        raise SystemExit(f'error: {e}') from None
    print(f"wrote {args.out}: {meta['source']} from {meta['source_file']} (sha256 {meta['sha256'][:12]}...)")
