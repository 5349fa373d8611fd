"""Mean ± std over seeds and the paired bootstrap over probes (lrfr.evaluation.statistics)."""
import numpy as np
import pytest

from lrfr.evaluation.statistics import mean_std, paired_bootstrap


def test_mean_std_known_values():
    out = mean_std([1.0, 2.0, 3.0, 4.0])
    assert out['mean'] == pytest.approx(2.5)
    assert out['std'] == pytest.approx(np.sqrt(5 / 3))  # sample std, ddof=1
    assert mean_std([7.0]) == dict(mean=7.0, std=0.0, n=1)
    with pytest.raises(ValueError, match='mean_std: no values'):
        mean_std([])


def test_constant_difference_gives_a_point_interval():
    a = np.linspace(0, 100, 37)
    out = paired_bootstrap(a + 2.5, a, num_resamples=300)
    assert out['diff'] == pytest.approx(2.5)
    assert out['low'] == pytest.approx(2.5) and out['high'] == pytest.approx(2.5)


def test_interval_of_a_binary_difference_matches_the_normal_approximation():
    # 400 probes, A hits where B misses on 30 % of them: diff 0.3, bootstrap sd sqrt(0.3*0.7/400).
    a = np.zeros(400)
    a[:120] = 1.0
    out = paired_bootstrap(a, np.zeros(400), num_resamples=4000, seed=3)
    half = 1.96 * np.sqrt(0.3 * 0.7 / 400)
    assert out['diff'] == pytest.approx(0.3)
    assert out['low'] == pytest.approx(0.3 - half, abs=0.01)
    assert out['high'] == pytest.approx(0.3 + half, abs=0.01)


def test_same_seed_same_interval_and_blocks_do_not_change_it():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=50), rng.normal(size=50)
    first = paired_bootstrap(a, b, num_resamples=500, seed=7)
    assert paired_bootstrap(a, b, num_resamples=500, seed=7) == first
    assert paired_bootstrap(a, b, num_resamples=500, seed=7, max_block=50 * 3) == first
    assert paired_bootstrap(a, b, num_resamples=500, seed=8) != first


def test_coverage_is_near_nominal():
    # 200 data sets whose true mean difference is 1: about 95 % of the intervals contain it.
    rng = np.random.default_rng(1)
    covered = 0
    for trial in range(200):
        diff = rng.normal(1.0, 3.0, size=60)
        out = paired_bootstrap(diff, np.zeros(60), num_resamples=400, seed=trial)
        covered += out['low'] <= 1.0 <= out['high']
    assert 0.88 <= covered / 200 <= 0.99


def test_pairing_matters():
    # Per-probe difficulty dominates (sd 30) but A beats B by 1 on every probe, with a little noise:
    # the paired interval excludes 0; resampling the two methods independently would not.
    rng = np.random.default_rng(2)
    difficulty = rng.normal(50, 30, size=100)
    b = difficulty
    a = difficulty + 1.0 + rng.normal(0, 0.5, size=100)
    paired = paired_bootstrap(a, b, num_resamples=2000, seed=0)
    assert paired['low'] > 0.5 and paired['high'] < 1.5
    gen = np.random.default_rng(0)
    unpaired = [a[gen.integers(0, 100, 100)].mean() - b[gen.integers(0, 100, 100)].mean()
                for _ in range(2000)]
    low, high = np.percentile(unpaired, [2.5, 97.5])
    assert low < 0 < high


def test_bad_input_is_named():
    with pytest.raises(ValueError, match='same probes'):
        paired_bootstrap(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match='num_resamples must be >= 1'):
        paired_bootstrap(np.zeros(3), np.zeros(3), num_resamples=0)
    with pytest.raises(ValueError, match=r'confidence must be in \(0, 1\)'):
        paired_bootstrap(np.zeros(3), np.zeros(3), confidence=1.0)
