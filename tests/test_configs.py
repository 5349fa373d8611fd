"""Every config in ``configs/`` builds and its parts fit together.

For each config (every ``.py`` outside ``_base_``): the file name follows the OpenMMLab convention with the
batch size the loader really uses; the model builds through ``lrfr.registry.MODELS`` (full-size nets on the
meta device, so no memory or time is spent on weights); its train/val/test datasets build on small generated
trees in the official TinyFace and CelebA layouts (demo configs on the real demo builder) and a sample of each
goes through the meta model: the pipeline's image size is what the model takes, the SR output has the HR
target's size, the embedding has the classifier's width. Evaluators, hooks, optimiser and LR schedule build.
Checkpoint chains (``work_dirs/<config>/final.pth`` in ``load_from`` or an ``init_cfg``) name existing configs
whose weights fit, in an order ``run_benchmark.py`` can follow. Two train loaders yield one real batch each,
the CSRI one with its per-branch shares.
"""
import copy
import functools
import importlib.util
import os
import os.path as osp
import re
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.optim import build_optim_wrapper
from mmengine.runner import Runner

from lrfr.datasets.converters.recordio import write_face_rec
from lrfr.registry import DATASETS, HOOKS, METRICS, MODELS, PARAM_SCHEDULERS
from lrfr.structures import BRANCH_NAT, BRANCH_SYN
from lrfr.utils import register_all_modules

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / 'configs'
DEMO_DIR = CONFIG_DIR / 'demo'
#: CPU-sized variants of demo configs that change one thing (e.g. the SR input size), for docs/benchmark.md
ABLATION_DIR = CONFIG_DIR / 'demo_ablations'
CONFIGS = sorted(p for p in CONFIG_DIR.rglob('*.py') if '_base_' not in p.relative_to(CONFIG_DIR).parts)
IDS = [str(p.relative_to(CONFIG_DIR)) for p in CONFIGS]

#: ``{method}_{sr}-{fr}_{N}xb{B}_{data}`` (the ``{sr}-{fr}`` part is absent for FR-only and SR-only configs).
NAME_RE = re.compile(r'^(?P<method>[a-z0-9-]+)(?:_(?P<parts>[a-z0-9-]+))?_(?P<gpus>\d+)xb(?P<batch>\d+)'
                     r'_(?P<data>[a-z0-9-]+)$')
#: A reference to another config's published checkpoint (see lrfr/apis/checkpoint.py).
REF_RE = re.compile(r'^work_dirs/(?P<name>[^/]+)/final\.pth$')

#: Which generated tree each dataset type reads. A new dataset type in a config must be added here.
TREE_OF = {'TinyFaceDataset': 'tinyface', 'CelebADataset': 'celeba', 'DemoTinyFaceDataset': 'demo',
           'DemoHRFaceDataset': 'demo', 'MXFaceDataset': 'rec'}
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')

register_all_modules()


@functools.lru_cache(maxsize=None)
def _load(path: Path) -> Config:
    return Config.fromfile(str(path))


def load(path: Path) -> Config:
    """A private copy of the parsed config (parsing once per file keeps the module fast)."""
    return copy.deepcopy(_load(path))


def stem(path: Path) -> str:
    return path.stem


# -- generated data trees --------------------------------------------------------------------------------------
def _write_jpg(path: str, size: Tuple[int, int], rng: np.random.Generator) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    cv2.imwrite(path, rng.integers(0, 256, (*size, 3), dtype=np.uint8))


def make_tinyface(root: str) -> str:
    """TinyFace's official tree: 3 training ids, 2 test ids, 2 distractors; LR faces of mixed size."""
    rng = np.random.default_rng(0)
    for pid, sizes in {1: [(18, 15), (24, 20)], 4: [(16, 13), (21, 17)], 7: [(30, 24), (14, 12)]}.items():
        for n, size in enumerate(sizes, 1):
            _write_jpg(osp.join(root, 'Training_Set', str(pid), f'{pid}_{n}.jpg'), size, rng)
    for sub, n in (('Probe', 1), ('Gallery_Match', 2)):
        for pid in (10, 12):
            _write_jpg(osp.join(root, 'Testing_Set', sub, f'{pid}_{n}.jpg'), (20, 16), rng)
    for name in ('a.jpg', 'b.jpg'):
        _write_jpg(osp.join(root, 'Testing_Set', 'Gallery_Distractor', name), (19, 15), rng)
    return root


#: CelebA image -> (identity, official partition 0/1/2), partitions identity-disjoint as in CelebA.
CELEBA = {'000001.jpg': (2880, 0), '000002.jpg': (2937, 0), '000003.jpg': (2880, 0), '000004.jpg': (10177, 0),
          '000005.jpg': (1, 1), '000006.jpg': (5805, 2), '000007.jpg': (5805, 2)}


def make_celeba(root: str) -> str:
    """CelebA's official tree (Img/img_align_celeba, Anno/identity_CelebA.txt, Eval/list_eval_partition.txt)."""
    rng = np.random.default_rng(1)
    for name in CELEBA:
        _write_jpg(osp.join(root, 'Img', 'img_align_celeba', name), (218, 178), rng)
    for sub, fname, column in (('Anno', 'identity_CelebA.txt', 0), ('Eval', 'list_eval_partition.txt', 1)):
        os.makedirs(osp.join(root, sub), exist_ok=True)
        with open(osp.join(root, sub, fname), 'w') as f:
            f.writelines(f'{name} {values[column]}\n' for name, values in CELEBA.items())
    return root


def make_rec(root: str) -> str:
    """An InsightFace RecordIO set (train.rec/.idx/property): 3 identities of 112x112 aligned faces."""
    rng = np.random.default_rng(2)
    samples = []
    for label in range(3):
        for n in range(2):
            path = osp.join(root, 'faces', str(label), f'{n}.jpg')
            _write_jpg(path, (112, 112), rng)
            samples.append((path, label))
    write_face_rec(samples, root)
    return root


@pytest.fixture(scope='module')
def trees(tmp_path_factory) -> Dict[str, str]:
    base = tmp_path_factory.mktemp('config_data')
    return dict(tinyface=make_tinyface(str(base / 'tinyface')), celeba=make_celeba(str(base / 'celeba')),
                demo=str(base / 'demo_tinyface'),  # the demo datasets build it on first use
                rec=make_rec(str(base / 'rec')))


def retarget(dataset: dict, trees: Dict[str, str]) -> dict:
    """Point every dataset under ``dataset`` (ConcatDataset included) at the generated trees."""
    dataset = copy.deepcopy(dataset)
    if dataset['type'] == 'ConcatDataset':
        dataset['datasets'] = [retarget(d, trees) for d in dataset['datasets']]
        return dataset
    if dataset['type'] not in TREE_OF:
        raise KeyError(f'no generated tree for dataset type {dataset["type"]!r}: add it to TREE_OF')
    dataset['data_root'] = trees[TREE_OF[dataset['type']]]
    return dataset


# -- model helpers ---------------------------------------------------------------------------------------------
def build_meta_model(model_cfg: dict) -> torch.nn.Module:
    """Build a config's model with every weight on the meta device (the data preprocessor stays on the CPU:
    it checks its mean/std values when built)."""
    model_cfg = copy.deepcopy(model_cfg)
    if 'data_preprocessor' in model_cfg:
        model_cfg['data_preprocessor'] = MODELS.build(model_cfg['data_preprocessor'])
    with torch.device('meta'):
        # eval: sizes do not depend on the mode, and an embedding BatchNorm1d (IResNet) refuses one sample in training
        return MODELS.build(model_cfg).eval()


def head_widths(head: Optional[torch.nn.Module]) -> set:
    """``in_channels`` of a classification head (of each member of a CompositeHead)."""
    if head is None:
        return set()
    members = list(getattr(head, 'heads', [])) or [head]
    return {m.in_channels for m in members}


def check_sample_fits(model: torch.nn.Module, sample: dict, where: str,
                      sr_input_size: Optional[Sequence[int]] = None) -> None:
    """Run one pipeline output through the meta model and check every size on the way.

    ``sr_input_size``: the size an SR head is fed, when a config says so (``ablation.sr_input_size`` in
    configs/demo_ablations/); by default the SR head's output size (the FR input size).
    """
    inputs = sample['inputs']
    assert inputs.dtype == torch.uint8 and inputs.dim() == 3 and inputs.shape[0] == 3, where
    x = torch.empty((2, *inputs.shape), device='meta')  # 2: a BN1d embedding (IResNet) needs a batch in train mode
    data_sample = sample['data_samples']
    sr = getattr(model, 'sr', None)
    if sr is not None:
        sr_out = sr(x)
        assert tuple(sr_out.shape[-2:]) == tuple(sr.output_size), where
        if 'hr_img' in data_sample:
            assert tuple(data_sample.hr_img.shape) == tuple(sr_out.shape[1:]), \
                f'{where}: HR target {tuple(data_sample.hr_img.shape)} vs SR output {tuple(sr_out.shape[1:])}'
        # native faces are resized once to the FR size and synthetic LR is up-sampled back to it (ILR):
        # nothing reaches the SR head shrunk below its output size
        expected = tuple(sr_input_size or sr.output_size)
        assert tuple(inputs.shape[-2:]) == expected, \
            f'{where}: SR input {tuple(inputs.shape[-2:])}, expected {expected}'
    if not hasattr(model, 'backbone'):  # SuperResolver: SR only
        assert 'hr_img' in data_sample, f'{where}: an SR-only model needs LR/HR pairs'
        return
    if sr is None:
        size = tuple(model.backbone.input_size)
        assert tuple(inputs.shape[-2:]) == size, f'{where}: pipeline gives {tuple(inputs.shape[-2:])}, ' \
                                                 f'the backbone takes {size}'
    embedding = model(x, mode='tensor')
    assert embedding.shape == (2, model.backbone.embed_dim), where
    for head in (model.head, getattr(model, 'native_head', None)):
        assert head_widths(head) <= {embedding.shape[1]}, f'{where}: head width vs embedding'


# -- the file name, the batch, the schedule --------------------------------------------------------------------
@pytest.mark.parametrize('path', CONFIGS, ids=IDS)
def test_name_batch_and_schedule(path):
    cfg = load(path)
    match = NAME_RE.match(stem(path))
    assert match, f'{path.name}: not {{method}}_{{sr}}-{{fr}}_{{N}}xb{{B}}_{{data}}.py'
    loader = cfg.get('train_dataloader') or cfg.test_dataloader  # test-only configs: configs/pretrained
    assert int(match['gpus']) == 1 and int(match['batch']) == loader.batch_size, path.name
    if 'train_dataloader' not in cfg:
        assert 'train_cfg' not in cfg and 'optim_wrapper' not in cfg, f'{path.name}: training without data'
        return
    if 'batch_size' in loader.sampler:  # a batch sampler (MultiBranchSampler) must agree with the loader
        assert loader.sampler.batch_size == loader.batch_size
    max_iters = cfg.train_cfg.max_iters
    assert cfg.train_cfg.type == 'IterBasedTrainLoop' and 0 < cfg.train_cfg.val_interval <= max_iters
    for scheduler in cfg.param_scheduler:
        assert max(scheduler.get('milestones', [0])) < max_iters and scheduler.get('end', 0) < max_iters
    if 'benchmark' in cfg:
        assert isinstance(cfg.benchmark.name, str) and cfg.benchmark.name


def test_benchmark_names_unique():
    """The driver labels table rows by these names: no two configs of one family may share a row label."""
    for family in (True, False):
        names = [load(p).benchmark.name for p in CONFIGS if (DEMO_DIR in p.parents) == family
                 and 'benchmark' in load(p)]
        assert names and len(names) == len(set(names)), [n for n, c in Counter(names).items() if c > 1]


def test_the_paper_tables_have_their_rows():
    """Tables 3, 5, 6 and 7 each have their configs (by model type and parts, not by name)."""
    kinds = Counter()
    for path in CONFIGS:
        if DEMO_DIR in path.parents or ABLATION_DIR in path.parents:
            continue
        model = load(path).model
        fr = model.get('backbone', {}).get('type')
        kinds[(model.type, model.get('sr', {}).get('type'), fr, bool(model.get('freeze_sr')))] += 1
    for fr in ('CentreFaceNet', 'SphereFaceNet', 'VGGFace', 'DeepID2'):  # Table 3
        assert kinds[('FaceRecognizer', None, fr, False)] >= 1
    for sr in ('SRCNN', 'VDSR', 'DRRN'):  # Table 5: SR alone, then frozen in front of CentreFace / VGGFace
        assert kinds[('SuperResolver', sr, None, False)] == 1
        for fr in ('CentreFaceNet', 'VGGFace'):
            assert kinds[('SRFaceRecognizer', sr, fr, True)] >= 1
    assert kinds[('SRFaceRecognizer', 'VDSR', 'CentreFaceNet', False)] == 1  # Table 6: joint, stage 1
    assert kinds[('SRFaceRecognizer', 'VDSR', 'CentreFaceNet', True)] == 2  # indep + joint stage 2
    assert kinds[('CSRI', 'VDSR', 'CentreFaceNet', False)] == 1  # Tables 5 and 7


# -- model, datasets, evaluators, hooks, optimiser -------------------------------------------------------------
@pytest.mark.parametrize('path', CONFIGS, ids=IDS)
def test_config_builds(path, trees):
    cfg = load(path)
    model = build_meta_model(cfg.model)
    assert isinstance(model, MODELS.get(cfg.model.type))

    checked = []
    for key in LOADERS:
        loader = cfg.get(key)
        if loader is None or loader.dataset in checked:  # test_dataloader is often val_dataloader
            continue
        checked.append(loader.dataset)
        dataset = DATASETS.build(retarget(loader.dataset, trees))
        assert len(dataset) > 0, f'{path.name}: {key} is empty'
        parts = getattr(dataset, 'datasets', [dataset])
        for i, part in enumerate(parts):
            offset = sum(len(p) for p in parts[:i])
            check_sample_fits(model, dataset[offset], f'{path.name} {key} source {i}',
                              (cfg.get('ablation') or {}).get('sr_input_size'))

    for key in ('val_evaluator', 'test_evaluator'):
        evaluators = cfg.get(key)
        for evaluator in evaluators if isinstance(evaluators, list) else [evaluators] if evaluators else []:
            METRICS.build(evaluator)
    for hook in cfg.get('custom_hooks', []):
        HOOKS.build(hook)
    for hook in cfg.default_hooks.values():
        assert HOOKS.get(hook['type']) is not None, hook['type']

    if 'optim_wrapper' in cfg:  # test-only configs have none
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
        for scheduler in cfg.param_scheduler:
            PARAM_SCHEDULERS.build(dict(scheduler, optimizer=wrapper))


# -- checkpoint chains -----------------------------------------------------------------------------------------
def checkpoint_refs(cfg: Config) -> List[Tuple[str, str]]:
    """``(where, config name)`` of every ``work_dirs/<name>/final.pth`` in the config."""
    refs = []

    def walk(node, where):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f'{where}.{k}' if where else k)
        elif isinstance(node, (list, tuple)):
            for i, v in enumerate(node):
                walk(v, f'{where}[{i}]')
        elif isinstance(node, str) and node.startswith('work_dirs/'):
            match = REF_RE.match(node)
            assert match, f'{where}: {node!r} is not work_dirs/<config name>/final.pth'
            refs.append((where, match['name']))

    walk(cfg.to_dict(), '')
    return refs


def without_init_cfg(part: dict) -> dict:
    return {k: v for k, v in part.items() if k != 'init_cfg'}


def test_configs_have_unique_names():
    """``work_dirs/<name>`` is keyed by the file name, so names must be unique across folders."""
    names = Counter(stem(p) for p in CONFIGS)
    assert not [n for n, c in names.items() if c > 1]


@pytest.mark.parametrize('path', [p for p in CONFIGS if checkpoint_refs(_load(p))],
                         ids=[i for p, i in zip(CONFIGS, IDS) if checkpoint_refs(_load(p))])
def test_checkpoint_references_fit(path):
    by_name = {stem(p): p for p in CONFIGS}
    cfg = load(path)
    for where, name in checkpoint_refs(cfg):
        assert name in by_name, f'{path.name}: {where} names work_dirs/{name}/, but no config {name}.py exists'
        source_path = by_name[name]
        # The demo runs on its own (README): it must not start from a full-size run, nor the reverse.
        demo_family = (DEMO_DIR, ABLATION_DIR)
        assert any(d in source_path.parents for d in demo_family) == any(d in path.parents for d in demo_family), \
            (path.name, name)
        source = load(source_path).model
        if where == 'load_from':
            # Whole-model initialisation: the network parts must be the same architecture; heads may differ
            # (re-made for another label space) except the synthetic classifier that CSRI carries on.
            assert 'backbone' in source, f'{path.name}: load_from {name} has no FR network'
            assert without_init_cfg(source.backbone) == cfg.model.backbone, (path.name, name)
            if 'sr' in source and 'sr' in cfg.model:
                assert without_init_cfg(source.sr) == without_init_cfg(cfg.model.sr), (path.name, name)
            if cfg.model.type == 'CSRI':
                assert source.head == cfg.model.head, 'CSRI continues the stage-1 synthetic classifier'
        else:
            # An init_cfg loads one part: its prefix must name that part in the source model, same architecture.
            assert where.endswith('.init_cfg.checkpoint'), where
            part = where.split('.')[-3]
            init_cfg = cfg.model[part].init_cfg
            assert init_cfg.type == 'Pretrained' and init_cfg.prefix == f'{part}.', where
            assert without_init_cfg(source[part]) == without_init_cfg(cfg.model[part]), (path.name, name)


def _run_benchmark_module():
    spec = importlib.util.spec_from_file_location(
        'run_benchmark', REPO / 'tools' / 'analysis_tools' / 'run_benchmark.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_driver_orders_every_folder(tmp_path, monkeypatch):
    """``run_benchmark.py`` orders each folder's configs plus the ones they start from, producers first."""
    monkeypatch.chdir(tmp_path)  # no work_dirs/ here: every dependency must be among the configs given
    driver = _run_benchmark_module()
    by_name = {stem(p): p for p in CONFIGS}
    for folder in sorted({p.parent for p in CONFIGS}):
        todo = [p for p in CONFIGS if p.parent == folder]
        closure, i = list(todo), 0
        while i < len(closure):  # add what the folder's configs start from, transitively
            for _, name in checkpoint_refs(_load(closure[i])):
                if by_name[name] not in closure:
                    closure.append(by_name[name])
            i += 1
        order = [stem(Path(p)) for p in driver.order_by_dependency([str(p) for p in closure])]
        assert sorted(order) == sorted(stem(p) for p in closure)
        for path in closure:
            for _, name in checkpoint_refs(_load(path)):
                assert order.index(name) < order.index(stem(path)), (name, stem(path))


# -- a real batch through the loaders --------------------------------------------------------------------------
def first_batch(path: Path, trees: Dict[str, str]) -> Tuple[Config, dict]:
    cfg = load(path)
    loader = ConfigDict(cfg.train_dataloader, num_workers=0, persistent_workers=False, prefetch_factor=None)
    loader.dataset = retarget(loader.dataset, trees)
    return cfg, next(iter(Runner.build_dataloader(loader, seed=0)))


@pytest.mark.parametrize('name', ['csri/csri_vdsr-centreface_1xb256_celeba-tinyface.py',
                                  'demo/csri_vdsr-centreface_1xb32_demo-pairs-native.py',
                                  'csri/csri_vdsr-iresnet50-adaface_1xb256_ms1mv2-tinyface.py',
                                  'iresnet/csri_vdsr-iresnet-adaface_1xb32_cpu-rec-demo.py'])
def test_csri_batches_share_the_branches(name, trees):
    cfg, batch = first_batch(CONFIG_DIR / name, trees)
    samples = batch['data_samples']
    batch_size = cfg.train_dataloader.batch_size
    assert len(batch['inputs']) == len(samples) == batch_size
    branches = [s.metainfo['branch'] for s in samples]
    assert Counter(branches) == {BRANCH_SYN: batch_size // 2, BRANCH_NAT: batch_size // 2}
    sr_size = tuple(cfg.model.sr.output_size)
    for img, sample in zip(batch['inputs'], samples):
        assert tuple(img.shape[-2:]) == sr_size  # both branches reach the SR head at the FR input size
        if sample.metainfo['branch'] == BRANCH_SYN:
            assert tuple(sample.hr_img.shape[-2:]) == sr_size  # the synthetic branch carries its HR target
        else:
            assert 'hr_img' not in sample  # the native branch has none
    # the real preprocessor stacks the batch and normalises inputs and HR targets
    data = MODELS.build(cfg.model.data_preprocessor)(batch, training=True)
    assert data['inputs'].shape == (batch_size, 3, *sr_size) and data['inputs'].dtype == torch.float32
    assert data['inputs'].abs().max() <= 1.0
    syn = [s for s in data['data_samples'] if s.metainfo['branch'] == BRANCH_SYN]
    assert all(s.hr_img.dtype == torch.float32 and tuple(s.hr_img.shape) == (3, *sr_size) for s in syn)


def test_fr_pretraining_batch_is_hr_at_the_fr_size(trees):
    cfg, batch = first_batch(CONFIG_DIR / 'centreface' / 'centreface_1xb256_celeba.py', trees)
    assert len(batch['inputs']) == 256
    assert {tuple(img.shape) for img in batch['inputs']} == {(3, 112, 96)}
    labels = {int(s.gt_label) for s in batch['data_samples']}
    assert labels <= set(range(5)) and len(labels) > 1  # the 5 identities of the generated CelebA (all splits)


def test_size_checks_catch_parts_that_do_not_fit(trees):
    """The checks above fail on a backbone sized for another input and on an SR head with another output."""
    cfg = load(CONFIG_DIR / 'centreface' / 'centreface_1xb256_celeba.py')
    cfg.model.backbone.input_size = (56, 48)
    sample = DATASETS.build(retarget(cfg.train_dataloader.dataset, trees))[0]
    with pytest.raises(AssertionError, match='the backbone takes'):
        check_sample_fits(build_meta_model(cfg.model), sample, 'wrong input size')
    cfg = load(CONFIG_DIR / 'sr_fr' / 'vdsr_1xb64_celeba-pairs.py')
    cfg.model.sr.output_size = (56, 48)
    sample = DATASETS.build(retarget(cfg.train_dataloader.dataset, trees))[0]
    with pytest.raises(AssertionError, match='HR target'):
        check_sample_fits(build_meta_model(cfg.model), sample, 'wrong SR output')


# -- recipes ---------------------------------------------------------------------------------------------------
def centreface_heads(cfg: Config) -> Dict[str, dict]:
    """``{'head': ..., 'native_head': ...}`` of a model whose FR network is CentreFace (else empty)."""
    model = cfg.model
    if model.get('backbone', {}).get('type') != 'CentreFaceNet':
        return {}
    return {key: model[key] for key in ('head', 'native_head') if model.get(key) is not None}


@pytest.mark.parametrize('path', CONFIGS, ids=IDS)
def test_centreface_is_softmax_plus_centre_loss_everywhere(path):
    """Demo and full configs train CentreFace with one loss family: softmax + CenterLoss(0.003, 0.5)."""
    for key, head in centreface_heads(load(path)).items():
        assert head['type'] == 'CompositeHead', f'{path.name}: {key} is {head["type"]}'
        softmax, centre = head['heads']
        assert softmax['type'] == 'SoftmaxHead' and centre['type'] == 'CenterLoss', f'{path.name}: {key}'
        assert centre['loss_weight'] == 0.003 and centre['alpha'] == 0.5, f'{path.name}: {key}'
        assert softmax['num_classes'] == centre['num_classes'], f'{path.name}: {key}'


def test_demo_heads_match_the_demo_identity_sets(trees):
    """Auxiliary heads have the HR set's identities, native heads the native training set's."""
    counts = {
        'aux': DATASETS.build(dict(type='DemoHRFaceDataset', data_root=trees['demo'], pipeline=[])).metainfo,
        'nat': DATASETS.build(dict(type='DemoTinyFaceDataset', data_root=trees['demo'], split='train',
                                   pipeline=[])).metainfo,
    }
    counts = {k: v['num_classes'] for k, v in counts.items()}
    assert counts == dict(aux=14, nat=10)
    seen = set()
    for path in sorted(DEMO_DIR.glob('*.py')):
        cfg = load(path)
        # FR-only fine-tuning and its untrained reference (the same model, not trained) have native heads
        fine_tune = ('native' in path.stem or (cfg.get('benchmark') or {}).get('reference')) and cfg.model.type != 'CSRI'
        for key, head in centreface_heads(cfg).items():
            branch = 'nat' if fine_tune or key == 'native_head' else 'aux'
            assert head['heads'][0]['num_classes'] == counts[branch], f'{path.name}: {key}'
            seen.add(branch)
    assert seen == {'aux', 'nat'}


@pytest.mark.parametrize('path', CONFIGS, ids=IDS)
def test_sgd_recipes_warm_up_and_clip_as_a_safety_net(path):
    """Every SGD schedule starts with a linear warm-up from <= 10 % of the rate; clipping, where set, is >= 10."""
    cfg = load(path)
    if 'optim_wrapper' not in cfg or cfg.optim_wrapper.optimizer.type != 'SGD':  # test-only configs: no recipe
        return
    warmups = [s for s in cfg.param_scheduler if s.type == 'LinearLR' and s.get('begin', 0) == 0]
    assert warmups and warmups[0].start_factor <= 0.1, path.name
    clip = cfg.optim_wrapper.get('clip_grad')
    assert clip is None or clip.max_norm >= 10, path.name
