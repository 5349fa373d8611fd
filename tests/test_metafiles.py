"""The model zoo's metadata: model-index.yml imports one metafile per method folder, every config a metafile
names exists and builds, every config of a folder is named, and every folder has its README."""
import os
import os.path as osp

import pytest
import yaml
from mmengine.config import Config

from lrfr.registry import MODELS
from lrfr.utils import register_all_modules

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
RANKS = ('Rank-1', 'Rank-5', 'Rank-10', 'Rank-20', 'Rank-50')


def method_folders():
    root = osp.join(REPO, 'configs')
    return sorted(d for d in os.listdir(root) if osp.isdir(osp.join(root, d)) and not d.startswith('_'))


def load_yaml(path):
    with open(osp.join(REPO, path), encoding='utf-8') as f:
        return yaml.safe_load(f)


def metafile_models():
    return [(path, model) for path in load_yaml('model-index.yml')['Import']
            for model in load_yaml(path)['Models']]


def test_every_method_folder_has_a_metafile_and_readme_in_the_index():
    imports = load_yaml('model-index.yml')['Import']
    assert sorted(imports) == sorted(f'configs/{d}/metafile.yml' for d in method_folders())
    for folder in method_folders():
        assert osp.isfile(osp.join(REPO, 'configs', folder, 'README.md')), f'configs/{folder} has no README.md'


@pytest.mark.parametrize('folder', method_folders())
def test_metafile_names_every_config_of_its_folder_once(folder):
    meta = load_yaml(f'configs/{folder}/metafile.yml')
    collections = {c['Name'] for c in meta['Collections']}
    configs = [m['Config'] for m in meta['Models']]
    on_disk = sorted(f'configs/{folder}/{f}' for f in os.listdir(osp.join(REPO, 'configs', folder))
                     if f.endswith('.py'))
    assert sorted(configs) == on_disk
    for model in meta['Models']:
        assert model['Name'] == osp.splitext(osp.basename(model['Config']))[0]
        assert model['In Collection'] in collections
        for result in model.get('Results', []):
            m = result['Metrics']
            assert set(m) <= {*RANKS, 'mAP'} and 'Rank-1' in m and result['Dataset']
            assert all(0 < v < 100 for v in m.values())
            # ranks of a CMC never decrease; mAP is below the deepest rank given
            ranks = [m[r] for r in RANKS if r in m]
            assert ranks == sorted(ranks) and m.get('mAP', 0) <= ranks[-1]
            # every figure says where it comes from, and that lrfr did not measure it
            assert 'paper' in result['Source'] or 'published' in result['Source']
            assert 'not reproduced by lrfr' in result['Source'] or 'not measured by lrfr' in result['Source']


@pytest.mark.parametrize('config', sorted({m['Config'] for _, m in metafile_models()}))
def test_every_named_config_builds(config):
    register_all_modules()
    cfg = Config.fromfile(osp.join(REPO, config))
    model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 0
