"""A persistent 1:N face gallery: enrol labelled faces once, save it, load it with the same model, query it.

    >>> from lrfr.apis import FaceGallery, init_model
    >>> model = init_model('configs/demo/csri_vdsr-centreface_1xb32_demo-pairs-native.py',
    ...                    'work_dirs/csri_vdsr-centreface_1xb32_demo-pairs-native/final.pth')
    >>> gallery = FaceGallery(model)
    >>> gallery.enrol(['alice_1.jpg', 'bob_1.jpg'], ['alice', 'bob'])
    >>> gallery.identify(['unknown.jpg'], top_k=1)
    [[('alice', 7.31)]]
    >>> gallery.save('faces.gallery')
    >>> gallery = FaceGallery.load('faces.gallery', model)

Embeddings come from :func:`lrfr.apis.inference.iter_embeddings` (the config's test pipeline, the model's
``predict``); search from :mod:`lrfr.apis.index` (faiss when installed, torch brute force otherwise).
``tools/identify.py`` is a thin shell over this class.

The file (:data:`GALLERY_VERSION`) is a ``torch.save`` dict of plain types (readable with
``weights_only=True``): embeddings, labels, file names, distance, index settings and the model's
fingerprint (:func:`model_fingerprint`), written to a temporary file and renamed into place.
"""
import hashlib
import json
import os
import os.path as osp
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

from .export import file_sha256, identification_options
from .index import build_index, faiss_available
from .inference import ImageLike, iter_embeddings

#: Format version of gallery files; bump when the layout changes (older/newer files are refused).
GALLERY_VERSION = 1
GALLERY_MAGIC = 'lrfr-gallery'


def model_fingerprint(model: torch.nn.Module) -> Dict[str, Optional[str]]:
    """What makes a model's embeddings comparable: hashes of its weights and of its embedding config.

    ``weights_sha256`` covers every tensor of the state dict (so two random initialisations differ);
    ``config_sha256`` covers the model config, the test pipeline and the metric's fusion/normalisation.
    ``config`` and ``checkpoint_sha256`` are kept for the error messages.
    """
    digest = hashlib.sha256()
    for key, value in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    cfg = getattr(model, 'cfg', None)
    if cfg is None:
        raise ValueError('the model has no config (build it with lrfr.apis.init_model)')
    loader = cfg.get('test_dataloader') or {}
    embedding_cfg = dict(model=cfg.model.to_dict() if hasattr(cfg.model, 'to_dict') else cfg.model,
                         pipeline=(loader.get('dataset') or {}).get('pipeline'),
                         metric=identification_options(cfg))
    config_text = json.dumps(embedding_cfg, sort_keys=True, default=str)
    checkpoint = getattr(model, 'checkpoint_path', None)
    return dict(weights_sha256=digest.hexdigest(),
                config_sha256=hashlib.sha256(config_text.encode()).hexdigest(),
                config=str(getattr(cfg, 'filename', None) or ''),
                checkpoint=checkpoint,
                checkpoint_sha256=file_sha256(checkpoint) if checkpoint else None)


def read_gallery_file(path: str) -> Dict[str, Any]:
    """The checked contents of a gallery file: raises FileNotFoundError, or ValueError (one line naming the
    file) for a file that is not a gallery or is of another format version."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'gallery file not found: {path}')
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:
        raise ValueError(f'{path}: not an lrfr gallery file ({type(e).__name__}: {e})'.splitlines()[0]) from None
    if not isinstance(state, dict) or state.get('format') != GALLERY_MAGIC:
        raise ValueError(f'{path}: not an lrfr gallery file (no {GALLERY_MAGIC!r} header)')
    version = state.get('version')
    if version != GALLERY_VERSION:
        age = 'an older' if isinstance(version, int) and version < GALLERY_VERSION else 'a newer'
        raise ValueError(f'{path}: gallery format version {version} is {age} one than this lrfr reads '
                         f'(version {GALLERY_VERSION}); enrol the gallery again with this lrfr')
    return state


class FaceGallery:
    """A 1:N gallery: enrol labelled faces, then rank them for each query face (closest first).

    Args:
        model: a model from :func:`~lrfr.apis.init_model`.
        distance (str, optional): ``'euclidean'`` or ``'cosine'`` (``1 - cos``). Defaults to the distance of
            the config's ``IdentificationMetric`` (Euclidean, the TinyFace protocol, when it names none).
            Embeddings are L2-normalised for cosine or when that metric normalises them, and flip-fused when
            the model's ``flip_test`` is set: the gallery ranks faces as the benchmark did.
        batch_size (int): images per forward pass. Defaults to 32.
        backend (str): ``'auto'`` (faiss when installed), ``'faiss'`` or ``'torch'``.
        index (str): ``'flat'`` (exact, default), ``'ivf'`` or ``'hnsw'`` (faiss only).
        **index_params: ``nlist``, ``nprobe``, ``hnsw_m``, ``ef_search`` (faiss) or ``block_size``,
            ``max_block_elements`` (torch).
    """

    def __init__(self, model: torch.nn.Module, distance: Optional[str] = None, batch_size: int = 32,
                 backend: str = 'auto', index: str = 'flat', **index_params: Any) -> None:
        cfg = getattr(model, 'cfg', None)
        metric = identification_options(cfg) if cfg is not None else dict(distance='euclidean', l2_normalize=False)
        distance = distance or metric['distance']
        if distance not in ('euclidean', 'cosine'):
            raise ValueError(f"distance must be 'euclidean' or 'cosine', got {distance!r}")
        self.model = model
        self.distance = distance
        self.l2_normalize = distance == 'cosine' or metric['l2_normalize']
        self.batch_size = batch_size
        self.index_cfg = dict(backend=backend, kind=index, **index_params)
        build_index(1, distance, backend, index, **index_params)  # fail now on a bad backend/kind/faiss
        self.feats = torch.empty(0)
        self.labels: List[Any] = []
        self.files: List[Optional[str]] = []
        self._index: Any = None

    def __len__(self) -> int:
        return len(self.labels)

    # -- enrolment ---------------------------------------------------------
    def enrol(self, images: Sequence[ImageLike], labels: Sequence[Any], skip_bad: bool = False,
              progress: Optional[Callable[[int], None]] = None) -> int:
        """Add faces with their identities (any hashable labels; str/int to save; an identity may have
        several faces). Streams in batches of ``batch_size``.

        Args:
            images: file paths or HWC uint8 BGR arrays.
            labels: one identity per image.
            skip_bad (bool): leave unreadable files out instead of raising (the count is returned).
            progress (callable, optional): called with the number of images done after each batch.

        Returns:
            int: the number of images skipped as unreadable.
        """
        if len(images) != len(labels):
            raise ValueError(f'enrol: {len(images)} images but {len(labels)} labels')
        # nothing is added until every batch is embedded: a failed enrol leaves the gallery as it was
        chunks, new_labels, new_files = [], [], []
        for kept, feats in iter_embeddings(self.model, images, self.batch_size,
                                           l2_normalize=self.l2_normalize, skip_bad=skip_bad):
            chunks.append(feats)
            new_labels.extend(labels[i] for i in kept)
            new_files.extend(images[i] if isinstance(images[i], str) else None for i in kept)
            if progress is not None:
                progress(len(kept))
        skipped = len(images) - len(new_labels)
        if chunks:
            new = torch.cat(chunks)
            self.feats = new if self.feats.numel() == 0 else torch.cat([self.feats, new])
            self.labels.extend(new_labels)
            self.files.extend(new_files)
            self._index = None
        return skipped

    # -- search ------------------------------------------------------------
    def _search_index(self) -> Any:
        if self._index is None:
            self._index = build_index(self.feats.shape[1], self.distance, **self.index_cfg)
            self._index.add(self.feats)
        return self._index

    def search_embeddings(self, queries: torch.Tensor, top_k: int = 5) -> List[List[Dict[str, Any]]]:
        """For query embeddings ``(Q, D)``, the ``top_k`` closest enrolled faces as dicts with ``label``,
        ``distance``, ``file`` and ``index`` (enrolment position), closest first."""
        if len(self) == 0:
            raise RuntimeError('identify: the gallery is empty; enrol faces first')
        if top_k < 1:
            raise ValueError(f'top_k must be >= 1, got {top_k}')
        dist, idx = self._search_index().search(queries, min(top_k, len(self)))
        return [[dict(label=self.labels[j], distance=float(d), file=self.files[j], index=int(j))
                 for d, j in zip(drow, irow) if j >= 0] for drow, irow in zip(dist, idx)]

    def search(self, images: Sequence[ImageLike], top_k: int = 5) -> List[List[Dict[str, Any]]]:
        """Embed query faces (an unreadable one raises, naming the file) and :meth:`search_embeddings`."""
        if len(self) == 0:
            raise RuntimeError('identify: the gallery is empty; enrol faces first')
        queries = torch.cat([f for _, f in iter_embeddings(self.model, images, self.batch_size,
                                                            l2_normalize=self.l2_normalize)])
        return self.search_embeddings(queries, top_k)

    def identify(self, images: Sequence[ImageLike], top_k: int = 5) -> List[List[Tuple[Any, float]]]:
        """For each query face, the ``top_k`` closest enrolled faces as ``(label, distance)``, closest first."""
        return [[(m['label'], m['distance']) for m in row] for row in self.search(images, top_k)]

    # -- persistence -------------------------------------------------------
    def save(self, path: str) -> None:
        """Write the gallery to ``path`` atomically (a temporary file in the same folder, then a rename)."""
        bad = [label for label in self.labels if not isinstance(label, (str, int))]
        if bad:
            raise TypeError(f'{path}: only str or int labels can be saved, got {type(bad[0]).__name__} '
                            f'({bad[0]!r})')
        state = dict(format=GALLERY_MAGIC, version=GALLERY_VERSION, embeddings=self.feats.contiguous(),
                     labels=list(self.labels), files=list(self.files), distance=self.distance,
                     index=dict(self.index_cfg), model=model_fingerprint(self.model))
        folder = osp.dirname(osp.abspath(path))
        os.makedirs(folder, exist_ok=True)
        tmp = osp.join(folder, f'.{osp.basename(path)}.tmp{os.getpid()}')
        try:
            torch.save(state, tmp)
            os.replace(tmp, path)
        finally:
            if osp.exists(tmp):
                os.remove(tmp)

    @classmethod
    def load(cls, path: str, model: torch.nn.Module, check_model: bool = True,
             **index_overrides: Any) -> 'FaceGallery':
        """Read a gallery saved by :meth:`save` for ``model``.

        Refuses (ValueError, one line naming the file) a file of another format version or one enrolled with
        another model (other weights or another embedding config), unless ``check_model=False``.
        ``index_overrides`` (``backend``, ``index``, ``nprobe``, ...) replace the saved index settings.
        """
        return cls.from_state(read_gallery_file(path), model, path, check_model, **index_overrides)

    @classmethod
    def from_state(cls, state: Dict[str, Any], model: torch.nn.Module, path: str = '<gallery>',
                   check_model: bool = True, **index_overrides: Any) -> 'FaceGallery':
        """:meth:`load` from the dict :func:`read_gallery_file` returned (``path`` names it in errors)."""
        if check_model:
            saved, current = state['model'], model_fingerprint(model)
            for key, what in (('weights_sha256', 'weights'), ('config_sha256', 'embedding config')):
                if saved[key] != current[key]:
                    raise ValueError(
                        f'{path}: enrolled with another model ({what} differ: gallery made with config '
                        f'{saved["config"] or "?"}, checkpoint {saved["checkpoint"] or "random-init"}; this '
                        f'model is {current["config"] or "?"}, {current["checkpoint"] or "random-init"}); '
                        'load the model it was enrolled with or enrol again')
        index_cfg = dict(state['index'])
        kind = index_cfg.pop('kind', 'flat')
        if 'index' in index_overrides:
            kind = index_overrides.pop('index')
        index_cfg.update(index_overrides)
        gallery = cls(model, distance=state['distance'], index=kind, **index_cfg)
        gallery.feats = state['embeddings']
        gallery.labels = list(state['labels'])
        gallery.files = list(state['files'])
        return gallery

    def describe(self) -> Dict[str, Any]:
        """Size, identities, embedding size, distance and index settings (the backend ``auto`` resolves to)."""
        backend = self.index_cfg['backend']
        if backend == 'auto':
            backend = 'faiss' if faiss_available() else 'torch'
        return dict(faces=len(self), identities=len(set(self.labels)),
                    embed_dim=int(self.feats.shape[1]) if self.feats.numel() else 0,
                    distance=self.distance, **dict(self.index_cfg, backend=backend))
