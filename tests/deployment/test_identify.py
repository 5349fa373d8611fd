"""tools/identify.py end to end on the demo: enrol a face-folder tree or a list file, search from the shell,
and one clear line for each kind of bad input."""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
import torch

from lrfr.apis import FaceGallery, init_model

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'identify.py')
CONFIG = osp.join(REPO, 'configs', 'demo', 'csri_vdsr-centreface_1xb32_demo-pairs-native.py')


def run(*args, check=True):
    env = {**os.environ, 'PYTHONPATH': REPO, 'OMP_NUM_THREADS': '1'}
    proc = subprocess.run([sys.executable, TOOL, *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope='module')
def workspace(tmp_path_factory, demo_root):
    """A face-folder gallery (the demo's matches, one folder per person), queries and a checkpoint."""
    root = tmp_path_factory.mktemp('identify')
    match = osp.join(demo_root, 'Testing_Set', 'Gallery_Match')
    names = sorted(os.listdir(match))[:12]
    for name in names:
        person = name.rsplit('_', 1)[0]
        os.makedirs(root / 'gallery' / person, exist_ok=True)
        shutil.copy(osp.join(match, name), root / 'gallery' / person / name)
    os.makedirs(root / 'queries')
    for name in names[:3]:
        shutil.copy(osp.join(match, name), root / 'queries' / name)
    torch.manual_seed(0)
    model = init_model(CONFIG)
    model.init_weights()
    torch.save(dict(state_dict=model.state_dict(), meta={}), root / 'model.pth')
    return root


def test_enrol_then_search_prints_table_and_json(workspace):
    index = str(workspace / 'faces.gallery')
    proc = run('enrol', CONFIG, str(workspace / 'model.pth'), '--gallery', str(workspace / 'gallery'),
               '--index', index, '--batch-size', '5')
    assert 'enrolled 12 faces of' in proc.stdout and osp.isfile(index)
    assert 'enrol' in proc.stderr  # the tqdm progress bar
    proc = run('search', '--index', index, '--query', str(workspace / 'queries'), '--top-k', '3', '--json')
    results = json.loads(proc.stdout)
    assert [osp.basename(r['query']) for r in results] == sorted(os.listdir(workspace / 'queries'))
    for r in results:  # each query is itself in the gallery: rank 1, distance ~0, its own file
        best = r['matches'][0]
        assert best['rank'] == 1 and best['distance'] == pytest.approx(0, abs=1e-3)
        assert osp.basename(best['file']) == osp.basename(r['query'])
        assert best['identity'] == osp.basename(r['query']).rsplit('_', 1)[0]
        assert len(r['matches']) == 3
    table = run('search', '--index', index, '--query', results[0]['query']).stdout
    assert 'gallery file' in table and table.count(osp.basename(results[0]['query'])) >= 2
    # the API reads what the tool wrote and answers the same
    model = init_model(CONFIG, str(workspace / 'model.pth'))
    api = FaceGallery.load(index, model).search([results[1]['query']], top_k=3)[0]
    assert [m['file'] for m in api] == [m['file'] for m in results[1]['matches']]


def test_list_file_and_unreadable_images(workspace):
    listing = workspace / 'gallery.txt'
    files = sorted(str(p.relative_to(workspace)) for p in (workspace / 'gallery').rglob('*.jpg'))
    (workspace / 'broken.jpg').write_bytes(b'not an image')
    listing.write_text(''.join(f'{f} {i % 4}\n' for i, f in enumerate(files)) + 'broken.jpg 9\n')
    index = str(workspace / 'list.gallery')
    bad = run('enrol', CONFIG, str(workspace / 'model.pth'), '--gallery', str(listing), '--index', index,
              '--no-progress', check=False)
    assert bad.returncode != 0 and not osp.exists(index)
    assert bad.stderr.strip().splitlines()[-1].startswith('lrfr-identify: error:')
    assert 'broken.jpg' in bad.stderr.strip().splitlines()[-1]
    ok = run('enrol', CONFIG, str(workspace / 'model.pth'), '--gallery', str(listing), '--index', index,
             '--no-progress', '--skip-bad')
    assert 'skipped 1 unreadable image(s) of 13' in ok.stderr and 'enrolled 12 faces of 4 identities' in ok.stdout


def test_bad_input_gives_one_clear_line(workspace):
    index = str(workspace / 'faces.gallery')
    if not osp.isfile(index):
        pytest.skip('needs the gallery of test_enrol_then_search_prints_table_and_json')
    not_image = workspace / 'notes.jpg'
    not_image.write_text('hello')
    proc = run('search', '--index', index, '--query', str(not_image), check=False)
    assert proc.returncode != 0 and 'lrfr-identify: error:' in proc.stderr and 'notes.jpg' in proc.stderr
    torch.manual_seed(1)
    other = init_model(CONFIG)
    other.init_weights()
    torch.save(dict(state_dict=other.state_dict(), meta={}), workspace / 'other.pth')
    proc = run('search', '--index', index, '--query', str(workspace / 'queries'), '--config', CONFIG,
               '--checkpoint', str(workspace / 'other.pth'), check=False)
    assert proc.returncode != 0 and 'enrolled with another model' in proc.stderr
    proc = run('search', '--index', str(workspace / 'missing.gallery'), '--query', index, check=False)
    assert 'gallery file not found' in proc.stderr
    proc = run('enrol', CONFIG, str(workspace / 'model.pth'), '--gallery', str(workspace / 'gallery'), '--index',
               str(workspace / 'ivf.gallery'), '--kind', 'ivf', '--nlist', '64', '--no-progress', check=False)
    assert proc.returncode != 0 and not osp.exists(workspace / 'ivf.gallery')
    assert proc.stderr.strip().splitlines()[-1] == ('lrfr-identify: error: --kind ivf --nlist 64 needs at least '
                                                    '64 gallery faces, got 12; lower --nlist or use --kind flat')
