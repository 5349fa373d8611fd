"""Search indexes: faiss (flat, IVF, HNSW) and the torch brute force agree with an exact float64 reference."""
import sys

import numpy as np
import pytest
import torch

from lrfr.apis.index import BruteForceIndex, FaissIndex, build_index, exact_search

faiss = pytest.importorskip('faiss')


def clustered(n, dim=32, centres=20, seed=0):
    """Gaussian clusters around random centres (identities with several faces each)."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centres, dim)).astype(np.float32) * 3
    return (c[rng.integers(0, centres, n)] + rng.normal(size=(n, dim)).astype(np.float32)).astype(np.float32)


def reference(gallery, queries, k, distance):
    g, q = torch.from_numpy(gallery).double(), torch.from_numpy(queries).double()
    dist = torch.cdist(q, g) if distance == 'euclidean' else 1 - q @ g.T
    order = torch.sort(dist, dim=1, stable=True).indices[:, :k]
    return dist.gather(1, order).numpy(), order.numpy()


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize('distance', ['euclidean', 'cosine'])
@pytest.mark.parametrize('backend', ['torch', 'faiss'])
def test_exact_backends_match_float64_reference(backend, distance):
    gallery, queries = clustered(500), clustered(40, seed=1)
    if distance == 'cosine':
        gallery, queries = unit(gallery), unit(queries)
    index = build_index(32, distance, backend=backend, **({'block_size': 64} if backend == 'torch' else {}))
    index.add(gallery[:200])
    index.add(gallery[200:])  # two adds: one index, in enrolment order
    dist, idx = index.search(queries, 5)
    ref_d, ref_i = reference(gallery, queries, 5, distance)
    assert dist.shape == idx.shape == (40, 5) and idx.dtype == np.int64
    np.testing.assert_allclose(dist, ref_d, rtol=1e-4, atol=1e-4)
    # indices agree wherever the reference's neighbours are not near-ties
    gaps = np.diff(ref_d, axis=1, append=np.inf) > 1e-3
    gaps &= np.concatenate([np.ones((40, 1), bool), np.diff(ref_d, axis=1) > 1e-3], axis=1)
    assert gaps.mean() > 0.5
    assert (idx[gaps] == ref_i[gaps]).all()


def test_brute_force_keeps_enrolment_order_on_ties_across_blocks():
    base = clustered(10, dim=8)
    gallery = np.concatenate([base, base[[3]], base[[3]], base])  # rows 3, 10, 11, 15 are the same face
    idx = BruteForceIndex(8, block_size=4)
    idx.add(gallery)
    dist, order = idx.search(base[[3]], 4)
    assert order[0].tolist() == [3, 10, 11, 15]
    assert np.allclose(dist[0], 0, atol=1e-3)
    # more equal distances than k inside one block: the earliest enrolled ones are kept, in order
    same = np.concatenate([base[[5]] + 1, np.repeat(base[[5]], 9, axis=0), base[[5]] + 1])
    for block_size in (4, 16):
        idx = BruteForceIndex(8, block_size=block_size)
        idx.add(same)
        assert idx.search(base[[5]], 3)[1][0].tolist() == [1, 2, 3]


def test_faiss_and_brute_force_give_the_same_neighbours_on_random_data():
    rng = np.random.default_rng(3)
    gallery = rng.normal(size=(2000, 64)).astype(np.float32)
    queries = gallery[rng.choice(2000, 50, replace=False)] + 0.01 * rng.normal(size=(50, 64)).astype(np.float32)
    torch_index, faiss_index = build_index(64, backend='torch', block_size=300), build_index(64, backend='faiss')
    torch_index.add(gallery)
    faiss_index.add(gallery)
    d_t, i_t = torch_index.search(queries, 10)
    d_f, i_f = faiss_index.search(queries, 10)
    assert (i_t[:, 0] == i_f[:, 0]).all()
    np.testing.assert_allclose(d_t, d_f, rtol=1e-3, atol=1e-3)


def test_ivf_and_hnsw_recall_against_exact():
    gallery, queries = clustered(4000, centres=50), clustered(100, centres=50, seed=2)
    _, exact = exact_search(gallery, queries, 1)
    ivf = build_index(32, kind='ivf', nlist=32, nprobe=32)  # every cell visited: exact
    ivf.add(gallery)
    assert (ivf.search(queries, 1)[1][:, 0] == exact[:, 0]).mean() >= 0.99
    ivf.index.nprobe = 4
    assert (ivf.search(queries, 1)[1][:, 0] == exact[:, 0]).mean() >= 0.8
    hnsw = build_index(32, kind='hnsw', hnsw_m=16)
    hnsw.add(gallery)
    assert (hnsw.search(queries, 1)[1][:, 0] == exact[:, 0]).mean() >= 0.9


def test_without_faiss_auto_falls_back_and_ivf_says_why(monkeypatch):
    monkeypatch.setitem(sys.modules, 'faiss', None)  # import faiss now raises ImportError
    index = build_index(16)
    assert isinstance(index, BruteForceIndex)
    with pytest.raises(ImportError, match=r"^faiss is not installed: index kind 'ivf' needs faiss-cpu"):
        build_index(16, kind='ivf')
    with pytest.raises(ImportError, match='faiss is not installed'):
        FaissIndex(16)


def test_bad_arguments_raise_clearly():
    with pytest.raises(ValueError, match='backend must be one of'):
        build_index(8, backend='annoy')
    with pytest.raises(ValueError, match='kind must be one of'):
        build_index(8, kind='lsh')
    with pytest.raises(ValueError, match='torch backend does exact search only'):
        build_index(8, backend='torch', kind='hnsw')
    with pytest.raises(ValueError, match='needs at least 64 gallery embeddings'):
        build_index(8, kind='ivf', nlist=64).add(np.zeros((10, 8), np.float32))
    index = build_index(8, backend='torch')
    with pytest.raises(ValueError, match='size 4 do not fit an index of size 8'):
        index.add(np.zeros((3, 4), np.float32))


def test_block_top_k_equals_a_stable_sort_cut_at_k_with_many_ties():
    from lrfr.apis.index import _block_top_k
    gen = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 6, (50, 40), generator=gen).float()  # small integers: ties everywhere
    for k in (1, 3, 7, 40):
        vals, cols = _block_top_k(scores, k)
        ref = torch.sort(scores, dim=1, stable=True)
        assert torch.equal(cols, ref.indices[:, :k]) and torch.equal(vals, ref.values[:, :k])
