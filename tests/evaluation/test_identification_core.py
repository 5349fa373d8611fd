"""evaluate_identification against a literal sort-based port of the official TinyFace evaluation."""
import numpy as np
import pytest
import torch

from lrfr.evaluation.functional import (OFFICIAL_MAX_RANK, evaluate_identification,
                                        precision_recall_curve)
from lrfr.structures import DISTRACTOR_LABEL

# Random cases include probes without a match: the warning is tested on its own below.
pytestmark = pytest.mark.filterwarnings('ignore:.*no true match:UserWarning')


def reference(probe, probe_lbl, gallery, gallery_lbl, ap_mode='official', distance='euclidean'):
    """Per probe: full stable sort of the distances, then compute_AP.m's loop, step by step.

    Returns per-probe AP (NaN where the official script divides 0 by 0), the per-probe CMC
    rows and the ranked hit lists."""
    probe, gallery = np.asarray(probe, np.float64), np.asarray(gallery, np.float64)
    if distance == 'euclidean':
        dist = np.sqrt(((probe[:, None, :] - gallery[None]) ** 2).sum(-1))
    else:
        pn = probe / np.linalg.norm(probe, axis=1, keepdims=True)
        gn = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
        dist = -(pn[:, None, :] * gn[None]).sum(-1)  # elementwise: equal rows score equally
    length = OFFICIAL_MAX_RANK if ap_mode == 'official' else gallery.shape[0]
    aps, cmcs, hits = [], [], []
    for i in range(probe.shape[0]):
        good = set(np.flatnonzero((gallery_lbl == probe_lbl[i])
                                  & (gallery_lbl != DISTRACTOR_LABEL)).tolist())
        index = np.argsort(dist[i], kind='stable')  # MATLAB sort: ties keep gallery order
        cmc = np.zeros(length)
        ngood = len(good)
        old_recall, old_precision, ap, found, counted = 0.0, 1.0, 0.0, 0, 0
        hit_ranks = []
        for n in range(index.size):
            is_good = index[n] in good
            if is_good:
                hit_ranks.append(n + 1)
            if is_good and (ap_mode == 'exact' or n + 1 <= OFFICIAL_MAX_RANK):
                cmc[n:] = 1
                counted += 1
                found += 1
            if ngood == 0:
                ap = np.nan  # 0/0 in MATLAB
                break
            recall, precision = found / ngood, found / (n + 1)
            if ap_mode == 'official':
                ap += (recall - old_recall) * ((old_precision + precision) / 2)
            elif is_good:
                ap += precision / ngood
            old_recall, old_precision = recall, precision
            if counted == ngood:
                break
        aps.append(ap)
        cmcs.append(cmc)
        hits.append(hit_ranks)
    return np.array(aps), np.array(cmcs), hits


def check(probe, probe_lbl, gallery, gallery_lbl, ap_mode, distance='euclidean', **kw):
    res = evaluate_identification(probe, probe_lbl, gallery, gallery_lbl, distance=distance,
                                  ap_mode=ap_mode, **kw)
    aps, cmcs, _ = reference(probe, probe_lbl, gallery, gallery_lbl, ap_mode, distance)
    has = np.array([((gallery_lbl == p) & (gallery_lbl != DISTRACTOR_LABEL)).any()
                    for p in probe_lbl])
    np.testing.assert_allclose(res['ap'][has], aps[has], rtol=0, atol=1e-12)
    np.testing.assert_allclose(res['cmc'], cmcs.mean(0), rtol=0, atol=1e-12)  # 'zero' policy
    assert abs(res['mAP'] - np.where(has, aps, 0).mean()) < 1e-12
    for k in (1, 5, 10, 20, 50):
        assert abs(res[f'rank{k}'] - cmcs.mean(0)[min(k, cmcs.shape[1]) - 1]) < 1e-12
    return res


def random_case(rng, num_probes, num_gallery, dim, num_ids, integer=False, distractors=0.5):
    draw = (lambda *s: rng.integers(-2, 3, s).astype(np.float64)) if integer \
        else (lambda *s: rng.normal(size=s))
    gallery_lbl = rng.integers(0, num_ids, num_gallery)
    gallery_lbl[rng.random(num_gallery) < distractors] = DISTRACTOR_LABEL
    return draw(num_probes, dim), rng.integers(0, num_ids, num_probes), draw(num_gallery, dim), \
        gallery_lbl


@pytest.mark.parametrize('ap_mode', ['official', 'exact'])
@pytest.mark.parametrize('integer', [False, True], ids=['gaussian', 'integer-ties'])
def test_matches_sort_reference(ap_mode, integer):
    # Integer features in {-2..2}^3 collide constantly: exact ties everywhere, which the
    # stable-sort rule must break by gallery order; block sizes force every code path.
    rng = np.random.default_rng(1 if integer else 0)
    for _ in range(6):
        case = random_case(rng, rng.integers(1, 30), rng.integers(1, 400), 3, 8, integer)
        for blocks in (dict(), dict(chunk_size=4, gallery_chunk_size=7),
                       dict(chunk_size=1, gallery_chunk_size=1)):
            check(*case, ap_mode=ap_mode, **blocks)


def test_repeated_features_tie_order():
    # A distractor identical to the match: whichever comes first in the gallery ranks first.
    probe = np.array([[0.0, 0.0]])
    same = np.array([[1.0, 1.0], [1.0, 1.0], [5.0, 5.0]])
    first = evaluate_identification(probe, [7], same, [7, DISTRACTOR_LABEL, DISTRACTOR_LABEL])
    assert first['match_rank'].tolist() == [1] and first['rank1'] == 1.0
    second = evaluate_identification(probe, [7], same, [DISTRACTOR_LABEL, 7, DISTRACTOR_LABEL])
    assert second['match_rank'].tolist() == [2] and second['rank1'] == 0.0
    # Official AP of a single match at rank 2: (1/1) * (0/1 + 1/2) / 2.
    assert second['mAP'] == pytest.approx(0.25, abs=1e-15)
    assert evaluate_identification(probe, [7], same, [DISTRACTOR_LABEL, 7, DISTRACTOR_LABEL],
                                   ap_mode='exact')['mAP'] == pytest.approx(0.5, abs=1e-15)


def test_many_matches_and_repeated_rows():
    rng = np.random.default_rng(2)
    base = rng.normal(size=(5, 4))
    gallery = base[rng.integers(0, 5, 300)]  # every row repeated ~60 times
    gallery_lbl = rng.integers(0, 3, 300)  # three ids, ~100 matches each
    probe = base[rng.integers(0, 5, 12)] + 0.01 * rng.normal(size=(12, 4))
    for ap_mode in ('official', 'exact'):
        check(probe, rng.integers(0, 3, 12), gallery, gallery_lbl, ap_mode,
              chunk_size=5, gallery_chunk_size=64)


def test_cut_off_beyond_rank_1000():
    # 1,300 gallery items; the probe's 3 matches are pushed to ranks ~500, ~1,100 and last.
    rng = np.random.default_rng(3)
    gallery = rng.normal(size=(1300, 4)) * 0.1
    probe = np.zeros((2, 4))
    gallery_lbl = np.full(1300, DISTRACTOR_LABEL)
    order = np.argsort(np.linalg.norm(gallery, axis=1), kind='stable')
    for pos in (499, 1099, 1299):
        gallery_lbl[order[pos]] = 1
    gallery_lbl[order[0]] = 2  # the second probe's match is ranked first
    res = check(probe, np.array([1, 2]), gallery, gallery_lbl, 'official')
    assert res['match_rank'].tolist() == [500, 1001, 1001, 1]  # beyond the cut-off: 1001
    # Only the rank-500 hit counts, with n = 3: (1/3) * (0 + 1/500) / 2.
    assert res['ap'][0] == pytest.approx(1 / 3 * (1 / 500) / 2, abs=1e-15)
    assert res['cmc'].shape == (OFFICIAL_MAX_RANK,)
    assert res['cmc'][498] == 0.5 and res['cmc'][499] == 1.0
    exact = check(probe, np.array([1, 2]), gallery, gallery_lbl, 'exact')
    assert exact['match_rank'].tolist() == [500, 1100, 1300, 1]
    assert exact['ap'][0] == pytest.approx((1 / 500 + 2 / 1100 + 3 / 1300) / 3, abs=1e-15)
    assert exact['cmc'].shape == (1300,)
    # The boundary: a hit at rank 1,000 counts, one at rank 1,001 does not.
    edge_lbl = np.full(1300, DISTRACTOR_LABEL)
    edge_lbl[order[999]] = edge_lbl[order[1000]] = 4
    edge = check(probe[:1], np.array([4]), gallery, edge_lbl, 'official')
    assert edge['match_rank'].tolist() == [1000, 1001]
    # Narrow tiles: finished pairs (count >= 1,000) leave the blocks early, same numbers.
    check(probe, np.array([1, 2]), gallery, gallery_lbl, 'official', gallery_chunk_size=32)
    assert edge['ap'][0] == pytest.approx(0.5 * (0 + 1 / 1000) / 2, abs=1e-15)
    assert edge['cmc'][998] == 0.0 and edge['cmc'][999] == 1.0
    # A probe whose only match is beyond 1,000: official CMC never reaches it, AP is 0.
    lone = evaluate_identification(probe[:1], [3], gallery,
                                   np.where(np.arange(1300) == order[1200], 3, DISTRACTOR_LABEL))
    assert lone['mAP'] == 0.0 and lone['cmc'][-1] == 0.0 and lone['first_match_rank'][0] == 0


def test_no_match_probes_and_distractor_only_gallery():
    rng = np.random.default_rng(4)
    probe, gallery = rng.normal(size=(6, 3)), rng.normal(size=(50, 3))
    gallery_lbl = np.full(50, DISTRACTOR_LABEL)
    gallery_lbl[:10] = rng.integers(0, 3, 10)
    probe_lbl = np.array([0, 1, 2, 7, 8, DISTRACTOR_LABEL + 1])  # last three have no match
    with pytest.warns(UserWarning, match='no true match'):
        zero = evaluate_identification(probe, probe_lbl, gallery, gallery_lbl)
    with pytest.warns(UserWarning):
        excl = evaluate_identification(probe, probe_lbl, gallery, gallery_lbl, no_match='exclude')
    aps, cmcs, _ = reference(probe, probe_lbl, gallery, gallery_lbl)
    assert np.isnan(aps[3:]).all()  # what the official script would average
    assert zero['num_probes_without_match'] == 3
    assert zero['mAP'] == pytest.approx(np.nansum(aps) / 6, abs=1e-12)
    assert excl['mAP'] == pytest.approx(np.nanmean(aps), abs=1e-12)
    np.testing.assert_allclose(zero['cmc'], cmcs.mean(0), atol=1e-12)
    np.testing.assert_allclose(excl['cmc'], cmcs[:3].mean(0), atol=1e-12)
    for res in (zero, excl):
        assert np.isfinite(res['ap']).all() and np.isfinite(res['cmc']).all()
    # Labels absent from the probes are distractors too; an all-distractor gallery gives 0s.
    with pytest.warns(UserWarning):
        none = evaluate_identification(probe, [0, 1, 2, 3, 4, 5], gallery, np.full(50, 9))
    assert none['mAP'] == 0.0 and none['rank50'] == 0.0 and none['match_rank'].size == 0
    with pytest.warns(UserWarning):
        empty = evaluate_identification(probe, [0] * 6, gallery, gallery_lbl * 0 + DISTRACTOR_LABEL,
                                        no_match='exclude')
    assert empty['mAP'] == 0.0 and empty['rank1'] == 0.0


def test_cosine_float32_torch_and_blocks():
    rng = np.random.default_rng(5)
    case = random_case(rng, 20, 300, 6, 5)
    res64 = check(*case, ap_mode='exact', distance='cosine', chunk_size=3, gallery_chunk_size=50)
    probe, probe_lbl, gallery, gallery_lbl = case
    res32 = evaluate_identification(torch.from_numpy(probe).float(), torch.from_numpy(probe_lbl),
                                    torch.from_numpy(gallery).float(), torch.from_numpy(gallery_lbl),
                                    distance='cosine', ap_mode='exact')
    # float32 may swap near-ties only; random features have none at this size.
    assert res32['match_rank'].tolist() == res64['match_rank'].tolist()
    assert abs(res32['mAP'] - res64['mAP']) < 1e-12


def test_gallery_order_and_no_sort(monkeypatch):
    # Distractors first (every match after them), then the same gallery reversed: ranks
    # follow the gallery order rule, and no torch sort is called at any point.
    rng = np.random.default_rng(6)
    probe, probe_lbl, gallery, gallery_lbl = random_case(rng, 15, 200, 2, 4, integer=True)
    first = np.argsort(gallery_lbl != DISTRACTOR_LABEL, kind='stable')

    def forbidden(*args, **kwargs):
        raise AssertionError('evaluate_identification must not sort the gallery')

    for name in ('sort', 'argsort', 'topk', 'kthvalue', 'msort'):
        monkeypatch.setattr(torch, name, forbidden)
        monkeypatch.setattr(torch.Tensor, name, forbidden)
    for perm in (first, first[::-1]):
        check(probe, probe_lbl, gallery[perm], gallery_lbl[perm], 'official', gallery_chunk_size=16)


def test_precision_recall_curve_matches_ranked_lists():
    rng = np.random.default_rng(8)
    case = random_case(rng, 10, 120, 3, 3)
    res = evaluate_identification(*case, ap_mode='exact')
    _, _, hits = reference(*case, ap_mode='exact')
    curve = precision_recall_curve(res, max_rank=120)
    valid = [h for h in hits if h]
    for n in (1, 7, 60, 120):
        found = [sum(r <= n for r in h) for h in valid]
        assert curve['precision'][n - 1] == pytest.approx(np.mean([f / n for f in found]), abs=1e-12)
        assert curve['recall'][n - 1] == pytest.approx(
            np.mean([f / len(h) for f, h in zip(found, valid)]), abs=1e-12)
    assert curve['recall'][-1] == pytest.approx(1.0)


def test_bad_inputs():
    p, g = np.zeros((2, 3)), np.ones((4, 3))
    with pytest.raises(ValueError, match='dim'):
        evaluate_identification(p, [0, 1], np.ones((4, 2)), [0, 1, 2, 3])
    with pytest.raises(ValueError, match='gallery_labels'):
        evaluate_identification(p, [0, 1], g, [0, 1])
    with pytest.raises(ValueError, match='distractor label'):
        evaluate_identification(p, [DISTRACTOR_LABEL, 1], g, [0, 1, 2, 3])
    with pytest.raises(ValueError, match='NaN'):
        evaluate_identification(p, [0, 1], np.full((4, 3), np.nan), [0, 1, 2, 3])
    with pytest.raises(ValueError, match='NaN'):
        evaluate_identification(np.full((2, 3), np.inf), [0, 1], g, [0, 1, 2, 3])
    with pytest.raises(ValueError, match='distance'):
        evaluate_identification(p, [0, 1], g, [0, 1, 2, 3], distance='manhattan')
    with pytest.raises(ValueError, match='ap_mode'):
        evaluate_identification(p, [0, 1], g, [0, 1, 2, 3], ap_mode='interpolated')
    with pytest.raises(ValueError, match='ranks'):
        evaluate_identification(p, [0, 1], g, [0, 1, 2, 3], ranks=(1, 2000))
    with pytest.raises(ValueError, match='chunk_size'):
        evaluate_identification(p, [0, 1], g, [0, 1, 2, 3], chunk_size=0)
    with pytest.raises(TypeError, match='integer labels'):
        evaluate_identification(p, [0.5, 1], g, [0, 1, 2, 3])
    with pytest.raises(TypeError, match='numpy array or a torch tensor'):
        evaluate_identification([[0.0, 0.0, 0.0]], [0], g, [0, 1, 2, 3])


def test_official_early_exit(monkeypatch):
    # Official mode stops following a pair once 1,000 items rank before it; the blocks are
    # rebuilt from the unfinished pairs (and probes). Same numbers as the reference, and
    # the same ranks as exact mode wherever they are within the cut-off.
    from lrfr.evaluation.functional import _identification_engine as engine
    rebuilds = []
    original = engine._PairCounter.subset
    monkeypatch.setattr(engine._PairCounter, 'subset',
                        lambda self, *a: rebuilds.append(1) or original(self, *a))
    rng = np.random.default_rng(9)
    case = random_case(rng, 25, 2600, 2, 5, distractors=0.7)
    res = check(*case, ap_mode='official', chunk_size=7, gallery_chunk_size=64)
    assert rebuilds, 'the early-exit path was not exercised'
    exact = evaluate_identification(*case, ap_mode='exact', chunk_size=7, gallery_chunk_size=64)
    within = exact['match_rank'] <= OFFICIAL_MAX_RANK
    assert within.any() and (~within).any()
    np.testing.assert_array_equal(res['match_rank'][within], exact['match_rank'][within])
    assert (res['match_rank'][~within] == OFFICIAL_MAX_RANK + 1).all()


def test_products_cut_in_count_slices(monkeypatch):
    # On CPU each matrix product is counted in narrower slices: force several slices per
    # product (and a product width that is not a multiple of the slice) on small data.
    from lrfr.evaluation.functional import _identification_engine as engine
    monkeypatch.setattr(engine, '_CPU_COUNT_WIDTH', 16)
    rng = np.random.default_rng(10)
    check(*random_case(rng, 20, 300, 2, 5, integer=True), ap_mode='exact', gallery_chunk_size=50)
    check(*random_case(rng, 20, 2300, 2, 4, distractors=0.8), ap_mode='official', chunk_size=6,
          gallery_chunk_size=100)


def test_counting_shared_by_threads():
    # With several intra-op threads allowed, the comparisons are shared by pool threads
    # (disjoint rows and pairs): same numbers, and the caller's thread count is restored.
    rng = np.random.default_rng(11)
    case = random_case(rng, 40, 600, 2, 6, integer=True)
    previous = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        for ap_mode in ('official', 'exact'):
            check(*case, ap_mode=ap_mode, chunk_size=16, gallery_chunk_size=64)
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(previous)
