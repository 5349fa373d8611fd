"""Nearest-neighbour search over gallery embeddings: faiss-cpu when installed, torch brute force otherwise.

Both backends answer ``search(queries, k) -> (distances, indices)`` with the distance of the TinyFace
protocol (``'euclidean'``: L2, not squared) or ``'cosine'`` (``1 - cos`` of unit vectors), closest first.
Kinds (faiss's index families, Johnson, Douze, Jegou, "Billion-scale similarity search with GPUs", 2017):

* ``flat``: exact (``IndexFlatL2`` / ``IndexFlatIP``; or the torch brute force),
* ``ivf``: inverted file over ``nlist`` k-means cells, ``nprobe`` of them visited (approximate),
* ``hnsw``: hierarchical navigable small-world graph with ``hnsw_m`` links (approximate).

The torch backend does exact search only; asking it (or a missing faiss) for ``ivf``/``hnsw`` is one clear
error. It works in blocks of the gallery, so its memory is bounded whatever the gallery size, and keeps
equal distances in enrolment order (the benchmark's stable tie rule).
"""
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch

DISTANCES = ('euclidean', 'cosine')
KINDS = ('flat', 'ivf', 'hnsw')
BACKENDS = ('auto', 'faiss', 'torch')
TORCH_PARAMS = ('block_size', 'max_block_elements')  # BruteForceIndex's; the other params are FaissIndex's


def import_faiss(reason: str) -> Any:
    """The ``faiss`` module, or an ImportError saying what needed it and how to install it."""
    try:
        import faiss
    except ImportError:
        raise ImportError(f'faiss is not installed: {reason} needs faiss-cpu '
                          '(pip install faiss-cpu, or pip install -e ".[deploy]")') from None
    return faiss


def faiss_available() -> bool:
    """Whether ``import faiss`` works here."""
    try:
        import_faiss('the check')
    except ImportError:
        return False
    return True


def _as_float32(x: Any, what: str) -> np.ndarray:
    arr = np.ascontiguousarray(torch.as_tensor(x).detach().cpu().float().numpy())
    if arr.ndim != 2:
        raise ValueError(f'{what} must be a (N, D) matrix, got shape {arr.shape}')
    return arr


class BruteForceIndex:
    """Exact search in torch, over gallery blocks of ``block_size`` rows (bounded memory).

    Euclidean distances come from ``|q|^2 - 2 q.g + |g|^2`` in float32, as faiss's flat index computes them
    (gallery norms computed once, when added; ``|q|^2`` added to the kept neighbours only).

    Args:
        dim (int): embedding size.
        distance (str): ``'euclidean'`` or ``'cosine'``.
        block_size (int, optional): gallery rows compared per step. Defaults to None: as many as keep the
            ``(queries, rows)`` distance block under ``max_block_elements``, at least 1024 (few large steps
            for one query, bounded memory for many).
        max_block_elements (int): bound of the distance block. Defaults to 2**25 (128 MiB of float32).
    """

    backend = 'torch'
    kind = 'flat'

    def __init__(self, dim: int, distance: str = 'euclidean', block_size: Optional[int] = None,
                 max_block_elements: int = 2**25) -> None:
        self.dim = int(dim)
        self.distance = _check_distance(distance)
        self.block_size = int(block_size) if block_size else None
        self.max_block_elements = int(max_block_elements)
        self._blocks: list = []
        self._norms: list = []  # squared norms of the gallery rows, computed once when added
        self._ntotal = 0

    def __len__(self) -> int:
        return self._ntotal

    def add(self, feats: Any) -> None:
        """Append ``(N, dim)`` embeddings (their order is the index order)."""
        arr = _as_float32(feats, 'gallery embeddings')
        _check_dim(arr, self.dim)
        block = torch.from_numpy(arr)
        self._blocks.append(block)
        self._norms.append(torch.einsum('ij,ij->i', block, block))
        self._ntotal += arr.shape[0]

    def search(self, queries: Any, k: int) -> Tuple[np.ndarray, np.ndarray]:
        """The ``k`` closest gallery rows of each query: float32 distances and int64 indices ``(Q, k)``."""
        q = torch.from_numpy(_as_float32(queries, 'queries'))
        _check_dim(q, self.dim)
        k = min(int(k), self._ntotal)
        if len(self._blocks) > 1:  # one contiguous matrix from now on
            self._blocks, self._norms = [torch.cat(self._blocks)], [torch.cat(self._norms)]
        gallery, norms = self._blocks[0], self._norms[0]
        best_d = torch.empty(q.shape[0], 0)
        best_i = torch.empty(q.shape[0], 0, dtype=torch.long)
        rows = self.block_size or max(1024, self.max_block_elements // max(q.shape[0], 1))
        for start in range(0, self._ntotal, rows):
            block = gallery[start:start + rows]
            # ranked by a score that differs from the distance by a per-query constant: |g|^2 - 2 q.g (|q|^2
            # and the square root are applied to the k kept values only), -q.g for cosine; one BLAS call
            if self.distance == 'euclidean':
                score = torch.addmm(norms[start:start + block.shape[0]], q, block.T, alpha=-2)
            else:
                score = -(q @ block.T)
            block_d, block_i = _block_top_k(score, min(k, block.shape[0]))
            # earlier candidates first and a stable sort: equal scores stay in enrolment order
            cand_d = torch.cat([best_d, block_d], 1)
            cand_i = torch.cat([best_i, block_i + start], 1)
            order = torch.sort(cand_d, dim=1, stable=True).indices[:, :k]
            best_d, best_i = cand_d.gather(1, order), cand_i.gather(1, order)
        if self.distance == 'euclidean':
            best_d = (best_d + (q * q).sum(1, keepdim=True)).clamp_min_(0).sqrt_()
        else:
            best_d = best_d + 1
        return best_d.numpy(), best_i.numpy()


def _block_top_k(score: torch.Tensor, k: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` smallest entries of each row, smallest first, equal ones in column order: like a stable sort
    of the whole row cut at ``k``, in one ``topk`` pass. ``topk(k + 1)`` shows which rows have a tie across
    the k-th place (rare: duplicate faces); only those rows are redone exactly, keeping the leftmost."""
    n = score.shape[1]
    vals, cols = torch.topk(score, min(k + 1, n), dim=1, largest=False, sorted=True)
    tied = (vals[:, k - 1] == vals[:, k]).nonzero()[:, 0] if n > k else vals.new_empty(0, dtype=torch.long)
    vals, cols = vals[:, :k], cols[:, :k]
    if len(tied):
        rows = score[tied]
        kth = vals[tied, k - 1:k]
        less, equal = rows < kth, rows == kth
        keep = less | (equal & (equal.cumsum(1) <= k - less.sum(1, keepdim=True)))
        cols = cols.clone()
        cols[tied] = keep.nonzero()[:, 1].reshape(len(tied), k)  # row-major: each row's columns ascending
        vals = score.gather(1, cols)
    # within the kept k: column order first, then a stable sort by value
    by_col = torch.argsort(cols, dim=1)
    vals, cols = vals.gather(1, by_col), cols.gather(1, by_col)
    order = torch.sort(vals, dim=1, stable=True).indices
    return vals.gather(1, order), cols.gather(1, order)


class FaissIndex:
    """faiss-cpu search behind the :class:`BruteForceIndex` API.

    ``ivf`` is trained on the vectors of its first :meth:`add` (which needs at least ``nlist`` of them).

    Args:
        dim (int): embedding size.
        distance (str): ``'euclidean'`` (L2 indexes) or ``'cosine'`` (inner product on unit vectors).
        kind (str): ``'flat'`` (exact), ``'ivf'`` or ``'hnsw'``.
        nlist (int): IVF cells. Defaults to 1024.
        nprobe (int): IVF cells visited per query. Defaults to 16.
        hnsw_m (int): HNSW links per node. Defaults to 32.
        ef_search (int): HNSW candidate list length at query time (recall vs speed). Defaults to 64.
    """

    backend = 'faiss'

    def __init__(self, dim: int, distance: str = 'euclidean', kind: str = 'flat', nlist: int = 1024,
                 nprobe: int = 16, hnsw_m: int = 32, ef_search: int = 64) -> None:
        self.kind = _check_kind(kind)
        faiss = import_faiss(f"the faiss index (kind {kind!r})")
        self.dim = int(dim)
        self.distance = _check_distance(distance)
        self.nlist, self.nprobe = int(nlist), int(nprobe)
        self.hnsw_m, self.ef_search = int(hnsw_m), int(ef_search)
        metric = faiss.METRIC_L2 if self.distance == 'euclidean' else faiss.METRIC_INNER_PRODUCT
        if self.kind == 'flat':
            self.index = faiss.IndexFlatL2(dim) if metric == faiss.METRIC_L2 else faiss.IndexFlatIP(dim)
        elif self.kind == 'ivf':
            quantizer = faiss.IndexFlatL2(dim) if metric == faiss.METRIC_L2 else faiss.IndexFlatIP(dim)
            self.index = faiss.IndexIVFFlat(quantizer, dim, self.nlist, metric)
            self.index.nprobe = self.nprobe
            self._quantizer = quantizer  # faiss does not own it: keep it alive
        else:
            self.index = faiss.IndexHNSWFlat(dim, self.hnsw_m, metric)
            self.index.hnsw.efSearch = self.ef_search

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def add(self, feats: Any) -> None:
        """Append ``(N, dim)`` embeddings; an untrained IVF index is trained on them first."""
        arr = _as_float32(feats, 'gallery embeddings')
        _check_dim(arr, self.dim)
        if not self.index.is_trained:
            if arr.shape[0] < self.nlist:
                raise ValueError(f'an IVF index with nlist={self.nlist} needs at least {self.nlist} gallery '
                                 f'embeddings to train on, got {arr.shape[0]}; lower nlist or use kind="flat"')
            self.index.train(arr)
        self.index.add(arr)

    def search(self, queries: Any, k: int) -> Tuple[np.ndarray, np.ndarray]:
        """As :meth:`BruteForceIndex.search` (IVF/HNSW: approximately; missing neighbours are -1)."""
        q = _as_float32(queries, 'queries')
        _check_dim(q, self.dim)
        scores, idx = self.index.search(q, min(int(k), len(self)))
        if self.distance == 'euclidean':
            dist = np.sqrt(np.maximum(scores, 0))  # faiss returns squared L2
        else:
            dist = 1 - scores
        return dist.astype(np.float32), idx.astype(np.int64)


def build_index(dim: int, distance: str = 'euclidean', backend: str = 'auto', kind: str = 'flat',
                **params: Any) -> Any:
    """An empty search index: ``backend='auto'`` takes faiss when installed, else torch brute force.

    ``params`` go to :class:`FaissIndex` (``nlist``, ``nprobe``, ``hnsw_m``, ``ef_search``) or
    :class:`BruteForceIndex` (``block_size``, ``max_block_elements``). An approximate ``kind`` without
    faiss raises an ImportError that says so.
    """
    if backend not in BACKENDS:
        raise ValueError(f'index backend must be one of {BACKENDS}, got {backend!r}')
    _check_kind(kind)
    if backend == 'auto':
        backend = 'faiss' if faiss_available() else 'torch'
        if backend == 'torch' and kind != 'flat':
            import_faiss(f'index kind {kind!r}')  # raises: the torch fallback is exact search only
    if backend == 'torch':
        if kind != 'flat':
            raise ValueError(f'the torch backend does exact search only (kind="flat"), got kind={kind!r}')
        return BruteForceIndex(dim, distance, **{k: v for k, v in params.items() if k in TORCH_PARAMS})
    return FaissIndex(dim, distance, kind, **{k: v for k, v in params.items() if k not in TORCH_PARAMS})


def index_spec(index: Any) -> Dict[str, Any]:
    """The ``build_index`` arguments that rebuild ``index`` (stored in gallery files)."""
    spec: Dict[str, Any] = dict(backend=index.backend, kind=index.kind)
    if isinstance(index, FaissIndex):
        spec.update(nlist=index.nlist, nprobe=index.nprobe, hnsw_m=index.hnsw_m, ef_search=index.ef_search)
    return spec


def _check_distance(distance: str) -> str:
    if distance not in DISTANCES:
        raise ValueError(f'distance must be one of {DISTANCES}, got {distance!r}')
    return distance


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f'index kind must be one of {KINDS}, got {kind!r}')
    return kind


def _check_dim(arr: Any, dim: int) -> None:
    if arr.shape[1] != dim:
        raise ValueError(f'embeddings of size {arr.shape[1]} do not fit an index of size {dim}')


def exact_search(gallery: Any, queries: Any, k: int, distance: str = 'euclidean',
                 block_size: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
    """One-off exact search with the torch backend (for tests and recall measurements)."""
    index = BruteForceIndex(np.shape(gallery)[1], distance, block_size=block_size)
    index.add(gallery)
    return index.search(queries, k)
