"""Tie decisions that depend only on the feature values: slicing, threads and BLAS rounding."""
import math
import threading

import numpy as np
import pytest
import torch

from lrfr.evaluation.functional import _identification_engine as engine
from lrfr.evaluation.functional import _near_ties, evaluate_identification
from lrfr.evaluation.functional.identification import check_identification_options
from lrfr.evaluation.metrics import IdentificationMetric
from test_identification_core import check

pytestmark = pytest.mark.filterwarnings('ignore:.*no true match:UserWarning')


def duplicated_case(seed, dim, num_gallery=300, num_probes=12, dtype=np.float64):
    """Five distinct rows, each repeated ~60 times in the gallery; probes near them."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(5, dim))
    gallery = base[rng.integers(0, 5, num_gallery)].astype(dtype)
    gallery_lbl = rng.integers(0, 3, num_gallery)
    probe = (base[rng.integers(0, 5, num_probes)]
             + 0.01 * rng.normal(size=(num_probes, dim))).astype(dtype)
    return probe, rng.integers(0, 3, num_probes), gallery, gallery_lbl


@pytest.fixture
def threads():
    previous = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(previous)


@pytest.mark.parametrize('distance', ['euclidean', 'cosine'])
def test_duplicates_cut_apart_by_slices(distance, threads):
    # Exact duplicates land in different slices and products of different shapes: they
    # must still tie and follow gallery order, for every block layout and thread count.
    for num_threads in (1, 2):
        threads(num_threads)
        for dim, dtype in ((4, np.float64), (7, np.float32), (33, np.float32)):
            case = duplicated_case(dim, dim, num_gallery=301, num_probes=13, dtype=dtype)
            for blocks in (dict(chunk_size=5, gallery_chunk_size=64),
                           dict(chunk_size=3, gallery_chunk_size=37),
                           dict(chunk_size=13, gallery_chunk_size=1000), dict()):
                for ap_mode in ('official', 'exact'):
                    check(*case, ap_mode=ap_mode, distance=distance, **blocks)
        assert torch.get_num_threads() == num_threads


def perturbing_matmul(seed):
    """A stand-in BLAS: the true product with a random 30 % of its entries moved by
    1..4 ulp either way (a deterministic generator, so a failure reproduces)."""
    gen = torch.Generator().manual_seed(seed)

    def matmul(a, b):
        out = a @ b.T
        hit = torch.rand(out.shape, generator=gen) < 0.3
        steps = torch.randint(1, 5, out.shape, generator=gen) * (
            torch.randint(0, 2, out.shape, generator=gen) * 2 - 1)
        for _ in range(4):
            move = hit & (steps != 0)
            towards = torch.where(steps > 0, math.inf, -math.inf).to(out.dtype)
            out = torch.where(move, torch.nextafter(out, towards), out)
            steps = steps - steps.sign()
        return out

    return matmul


@pytest.mark.parametrize('distance', ['euclidean', 'cosine'])
@pytest.mark.parametrize('dtype', [np.float32, np.float64])
def test_another_blas_gives_the_same_ranks(monkeypatch, distance, dtype):
    # Scores a few ulps off (another BLAS kernel's rounding) change no rank and no AP:
    # the sort-based float64 reference is matched exactly.
    monkeypatch.setattr(engine, '_matmul', perturbing_matmul(0))
    for seed, dim in ((1, 5), (2, 16), (3, 9)):
        case = duplicated_case(seed, dim, dtype=dtype)
        for ap_mode in ('official', 'exact'):
            for blocks in (dict(chunk_size=5, gallery_chunk_size=64), dict()):
                check(*case, ap_mode=ap_mode, distance=distance, **blocks)


def test_perturbation_is_seen_without_the_exact_decision(monkeypatch):
    # Guard for the test above: with the bands switched off, the same perturbation
    # breaks the gallery-order rule, so the test does exercise the near-tie path.
    monkeypatch.setattr(engine, '_matmul', perturbing_matmul(0))
    monkeypatch.setattr(_near_ties, 'score_bound',
                        lambda distance, dim, dtype, p, g, exact_too=True:
                        torch.zeros(torch.broadcast_shapes(p.shape, g.shape), dtype=torch.float64))
    with pytest.raises(AssertionError):
        check(*duplicated_case(1, 5, dtype=np.float32), ap_mode='exact', chunk_size=5,
              gallery_chunk_size=64)


def test_exact_scores_known_values_and_order_independence():
    p = np.array([[1.0, 2.0, 3.0]])
    g = np.array([[0.5, -1.0, 2.0]])
    # ||g||^2 - 2 p.g = 5.25 - 2 * 4.5
    assert _near_ties.exact_scores('euclidean', p, g)[0] == -3.75
    assert _near_ties.exact_scores('cosine', p, g)[0] == pytest.approx(
        -4.5 / (math.sqrt(14) * math.sqrt(5.25)), rel=1e-15)
    # Terms whose float sum depends on the order: fsum of the exact two-products is
    # correctly rounded, so a permutation of the coordinates gives the same value.
    rng = np.random.default_rng(0)
    p = rng.normal(size=(1, 513)) * 10.0 ** rng.integers(-8, 8, (1, 513))
    g = rng.normal(size=(1, 513)) * 10.0 ** rng.integers(-8, 8, (1, 513))
    perm = rng.permutation(513)
    for distance in ('euclidean', 'cosine'):
        assert _near_ties.exact_scores(distance, p, g)[0] == \
            _near_ties.exact_scores(distance, p[:, perm], g[:, perm])[0]


def test_two_product_is_exact():
    from fractions import Fraction
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=200) * 1e5, rng.normal(size=200) * 1e-3
    hi, lo = _near_ties._two_product(a, b)
    for x, y, h, l in zip(a, b, hi, lo):
        assert Fraction(h) + Fraction(l) == Fraction(x) * Fraction(y)


def test_score_bound_and_band():
    # Euclidean, float32, D = 3: gamma_4 2|p||g| + (gamma_4 + gamma64_4) |g|^2 + underflow slack, x 1.001.
    u = 2.0 ** -24
    bound = _near_ties.score_bound('euclidean', 3, torch.float32, torch.tensor([2.0], dtype=torch.float64),
                                   torch.tensor([3.0], dtype=torch.float64), exact_too=False)
    g4, g4_64 = 4 * u / (1 - 4 * u), 4 * 2.0 ** -53 / (1 - 4 * 2.0 ** -53)
    expected = (g4 * 12 + (g4 + g4_64) * 9 + 2 * 7 * torch.finfo(torch.float32).tiny
                + 2 * 7 * torch.finfo(torch.float64).tiny) * 1.001
    assert bound.item() == pytest.approx(expected, rel=1e-12)
    t = torch.tensor([1.0, -3.5, 1e30], dtype=torch.float32)
    delta = torch.tensor([1e-9, 1e-3, 1e20], dtype=torch.float64)
    lo, hi = _near_ties.band(t, delta)
    assert lo.dtype == torch.float32
    assert (lo.double() <= t.double() - delta).all() and (hi.double() >= t.double() + delta).all()
    assert (lo < t).all() and (hi > t).all()


def test_cosine_tiny_norms_refused():
    p = np.ones((1, 3))
    g = np.array([[1.0, 0.0, 0.0], [1e-14, 0.0, 0.0], [0.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match=r"gallery_feats: distance='cosine' needs feature norms"):
        evaluate_identification(p, [0], g, [0, 1, 2], distance='cosine')
    # zero rows are fine: their cosine score is 0
    res = evaluate_identification(p, [0], g[[0, 2]], [0, 1], distance='cosine')
    assert res['match_rank'].tolist() == [1]


class Boom(RuntimeError):
    pass


def test_call_leaves_threads_and_pool_as_it_found_them(monkeypatch, threads):
    case = duplicated_case(2, 6)
    threads(3)
    before = {t.name for t in threading.enumerate()}
    check(*case, ap_mode='exact', chunk_size=4, gallery_chunk_size=64)
    assert torch.get_num_threads() == 3
    assert not [t.name for t in threading.enumerate() if t.name.startswith('lrfr-count')]

    def explode(a, b):
        assert torch.get_num_threads() == 3  # the products get the caller's threads
        raise Boom('matmul failed')

    monkeypatch.setattr(engine, '_matmul', explode)
    with pytest.raises(Boom, match='matmul failed'):
        evaluate_identification(*case, chunk_size=4, gallery_chunk_size=64)
    assert torch.get_num_threads() == 3
    assert {t.name for t in threading.enumerate()} <= before


def test_one_option_checker_for_function_and_metric():
    assert check_identification_options('cosine', 'exact', 'exclude', [5, 1]) == (5, 1)
    for kwargs, match in ((dict(distance='manhattan'),
                           r"distance: expected one of \('euclidean', 'cosine'\)"),
                          (dict(ap_mode='interp'), r"ap_mode: expected one of \('official', 'exact'\)"),
                          (dict(no_match='drop'), r"no_match: expected one of \('zero', 'exclude'\)"),
                          (dict(ranks=(0,)), 'ranks: expected positive ranks'),
                          (dict(ranks=(1, 2000)), 'ranks: the official CMC stops at rank 1000')):
        with pytest.raises(ValueError, match='IdentificationMetric: ' + match):
            IdentificationMetric(**kwargs)
        with pytest.raises(ValueError, match='^' + match):
            evaluate_identification(np.ones((1, 2)), [0], np.ones((2, 2)), [0, 1], **kwargs)
    with pytest.raises(TypeError, match='IdentificationMetric: ranks: expected a sequence'):
        IdentificationMetric(ranks=('a',))



def test_matmul_precision_widens_the_bound():
    # TF32/bfloat16 products (torch.set_float32_matmul_precision) get their own unit roundoff.
    assert _near_ties.unit_roundoff(torch.float32) == 2.0 ** -24
    torch.set_float32_matmul_precision('medium')
    try:
        assert _near_ties.unit_roundoff(torch.float32) == 2.0 ** -8
        assert _near_ties.unit_roundoff(torch.float64) == 2.0 ** -53
    finally:
        torch.set_float32_matmul_precision('highest')
