"""pglib.stats against independent computations: hand loops, textbook full-rank formulas, scipy,
reduced-coordinate versions of the singular case, and calibration by simulation over many seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch

from pglib import stats

# --------------------------------------------------------------------------------------------
# synthetic data
# --------------------------------------------------------------------------------------------

# Score-function-like vectors for a tabular softmax policy: S=4 states, A=3 actions. State s is
# visited with probability VISIT[s] (state 3 never), the action is drawn from PI[s], the "return"
# is C[s, a] plus centered exponential noise (skewed), and the sample is G * (onehot(a) - pi(s)).
# Rows sum to zero, the never-visited state is all zeros: the covariance has rank 3 * 2 = 6 of 12.
VISIT = np.array([1.0, 0.6, 0.3, 0.0])
PI = np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1], [0.4, 0.4, 0.2], [0.3, 0.3, 0.4]])
C = np.array([[1.0, -1.0, 2.0], [0.5, 3.0, -2.0], [2.0, 1.0, 0.0], [1.0, 1.0, 1.0]])


def score_like(rng: np.random.Generator, n: int) -> np.ndarray:
    S, A = PI.shape
    x = np.zeros((n, S, A))
    for s in range(S):
        visited = rng.random(n) < VISIT[s]
        a = (rng.random(n)[:, None] > np.cumsum(PI[s])[None, :]).sum(1)
        G = C[s][a] + rng.exponential(1.0, n) - 1.0
        x[:, s, :] = visited[:, None] * G[:, None] * (np.eye(A)[a] - PI[s])
    return x


def score_like_mean() -> np.ndarray:
    """E[G (e_a - pi)] per state, by enumeration over actions: VISIT[s] sum_a pi_a C[s,a] (e_a - pi)."""
    S, A = PI.shape
    out = np.zeros((S, A))
    for s in range(S):
        for a in range(A):
            out[s] += VISIT[s] * PI[s, a] * C[s, a] * (np.eye(A)[a] - PI[s])
    return out


def rejection_rate(method: str, make, exact, alpha: float, seeds: int) -> tuple[int, float, tuple[float, float]]:
    k = sum(stats.unbiasedness_test(make(np.random.default_rng(seed)), exact, alpha=alpha, method=method).reject
            for seed in range(seeds))
    return k, k / seeds, stats.binomial_interval(k, seeds, 0.99)


# --------------------------------------------------------------------------------------------
# mean, standard error, z
# --------------------------------------------------------------------------------------------


def test_mean_and_se_match_hand_loops():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 2, 3))
    mean, se = stats.mean_and_se(x)
    assert mean.shape == se.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            col = [x[k, i, j] for k in range(7)]
            m = sum(col) / 7
            s2 = sum((c - m) ** 2 for c in col) / 6
            assert mean[i, j] == pytest.approx(m, abs=1e-14)
            assert se[i, j] == pytest.approx(math.sqrt(s2 / 7), abs=1e-14)


def test_mean_and_se_scalar_and_torch():
    mean, se = stats.mean_and_se([1.0, 2.0, 3.0])
    assert isinstance(mean, float) and mean == 2.0
    assert se == pytest.approx(1 / math.sqrt(3))
    t = torch.tensor([[1.0, 4.0], [3.0, 0.0]], dtype=torch.float32, requires_grad=True)
    mean, se = stats.mean_and_se(t)
    np.testing.assert_allclose(mean, [2.0, 2.0])
    np.testing.assert_allclose(se, [1.0, 2.0])


def test_z_scores_hand_formula_and_degenerate_rules():
    x = np.array([[1.0, 5.0, 0.0, 2.0], [2.0, 5.0, 0.0, 2.0], [4.0, 5.0, 0.0, 2.0]])
    exact = np.array([1.5, 5.0, 0.0, 2.5])
    z = stats.z_scores(x, exact)
    m, s = 7 / 3, math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2)
    assert z[0] == pytest.approx((m - 1.5) / (s / math.sqrt(3)), rel=1e-12)
    assert z[1] == 0.0 and z[2] == 0.0  # no variance, no error
    assert z[3] == -math.inf  # no variance, mean 2 below exact 2.5
    assert stats.z_scores([1.0, 2.0, 3.0], 1.0) == pytest.approx(math.sqrt(3))


# --------------------------------------------------------------------------------------------
# Hotelling: against the textbook full-rank formula, scipy, and the reduced singular case
# --------------------------------------------------------------------------------------------


def hotelling_full_rank(x: np.ndarray, mu0: np.ndarray) -> tuple[float, float]:
    """Textbook T^2 = n d' S^{-1} d with an explicit inverse; F(d, n - d)."""
    n, d = x.shape
    diff = x.mean(0) - mu0
    S = np.cov(x, rowvar=False, ddof=1)
    t2 = n * diff @ np.linalg.inv(S) @ diff
    f = (n - d) / (d * (n - 1)) * t2
    return float(t2), float(scipy.stats.f.sf(f, d, n - d))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hotelling_equals_full_rank_formula(seed):
    rng = np.random.default_rng(seed)
    L = rng.normal(size=(5, 5))
    x = rng.normal(size=(40, 5)) @ L.T * np.array([1e-3, 1.0, 10.0, 1e3, 1.0]) + 0.1 * seed
    mu0 = np.full(5, 0.05)
    t2, p = hotelling_full_rank(x, mu0)
    r = stats.unbiasedness_test(x, mu0, alpha=0.05)
    assert r.method == "hotelling" and r.rank == 5 and r.dims == 5 and r.n == 40 and r.df == (5, 35)
    assert r.statistic == pytest.approx(t2, rel=1e-9)
    assert r.p_value == pytest.approx(p, rel=1e-7, abs=1e-300)
    assert r.reject == (p < 0.05)


def test_hotelling_in_one_dimension_is_the_t_test():
    rng = np.random.default_rng(3)
    x = rng.normal(0.3, 1.0, size=50)
    ref = scipy.stats.ttest_1samp(x, 0.0)
    r = stats.unbiasedness_test(x, 0.0)
    assert r.statistic == pytest.approx(ref.statistic**2, rel=1e-10)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-8)


@pytest.mark.parametrize("seed", [0, 1])
def test_singular_rows_summing_to_zero_equals_test_on_reduced_coordinates(seed):
    """Dropping the last action of every visited state (and the never-visited state) leaves a
    full-rank problem with the same information; the pseudo-inverse test must agree with it."""
    x = score_like(np.random.default_rng(seed), 500)
    exact = score_like_mean()
    assert np.abs(x.sum(-1)).max() < 1e-12  # rows sum to zero: the covariance is singular
    reduced = x[:, :3, :2].reshape(500, -1)
    t2, p = hotelling_full_rank(reduced, exact[:3, :2].reshape(-1))
    r = stats.unbiasedness_test(x, exact)
    assert r.rank == 6 and r.dims == 12 and r.df == (6, 494)
    assert r.statistic == pytest.approx(t2, rel=1e-8)
    assert r.p_value == pytest.approx(p, rel=1e-6)
    assert r.null_bias <= r.null_tolerance


def test_hotelling_is_invariant_to_rescaling_coordinates():
    x = score_like(np.random.default_rng(5), 400)
    exact = score_like_mean() + np.array([0.05, -0.05, 0.0])  # a bias inside the varying subspace
    scale = np.array([[1e-4, 1e-4, 1e-4], [1.0, 1.0, 1.0], [1e4, 1e4, 1e4], [1.0, 1.0, 1.0]])
    a = stats.unbiasedness_test(x, exact)
    b = stats.unbiasedness_test(x * scale, exact * scale)
    assert a.rank == b.rank == 6
    assert b.statistic == pytest.approx(a.statistic, rel=1e-8)


@pytest.mark.parametrize("method", ["hotelling", "bonferroni"])
def test_bias_where_samples_never_vary_is_rejected(method):
    x = score_like(np.random.default_rng(0), 2000)
    # (1) shift every action of state 0 equally: the rows-sum-to-zero direction, never varies
    off_row = score_like_mean()
    off_row[0] += 1e-3
    # (2) a nonzero exact value at the never-visited state (all samples are 0 there)
    off_state = score_like_mean()
    off_state[3] = [1e-4, -1e-4, 0.0]
    for exact in (off_state,) if method == "bonferroni" else (off_row, off_state):
        r = stats.unbiasedness_test(x, exact, method=method)
        assert r.reject and r.statistic == math.inf and r.p_value == 0.0
        assert r.null_bias > r.null_tolerance
    # the same data against the right mean is fine, including the all-zero state
    assert not stats.unbiasedness_test(x, score_like_mean(), method=method).null_rejected


def test_hotelling_needs_more_samples_than_rank():
    x = np.random.default_rng(0).normal(size=(6, 10))
    with pytest.raises(ValueError, match="samples.*rank"):
        stats.unbiasedness_test(x, np.zeros(10))
    r = stats.unbiasedness_test(x, np.zeros(10), method="bonferroni")  # Bonferroni needs no inverse
    assert r.rank == 10


def test_all_constant_coordinates():
    x = np.ones((10, 3))
    r = stats.unbiasedness_test(x, np.ones(3))
    assert (r.rank, r.statistic, r.p_value, r.reject) == (0, 0.0, 1.0, False)
    assert stats.unbiasedness_test(x, np.array([1.0, 1.0, 1.1])).reject


def test_torch_inputs_agree_with_numpy():
    x = score_like(np.random.default_rng(2), 300)
    exact = score_like_mean()
    a = stats.unbiasedness_test(x, exact)
    b = stats.unbiasedness_test(torch.from_numpy(x), torch.from_numpy(exact))
    assert a == b


def test_float32_inputs_get_a_float32_tolerance():
    x = score_like(np.random.default_rng(4), 2000)
    r = stats.unbiasedness_test(torch.from_numpy(x).float(), torch.from_numpy(score_like_mean()).float())
    assert r.rank == 6 and not r.null_rejected and r.null_tolerance == pytest.approx(1000 * np.finfo(np.float32).eps)


def test_bonferroni_equals_per_coordinate_t_tests():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(60, 4)) + np.array([0.0, 0.1, 0.5, 0.0])
    x[:, 3] = 2.0  # constant and right: not tested
    exact = np.array([0.0, 0.0, 0.0, 2.0])
    p_each = [scipy.stats.ttest_1samp(x[:, j], exact[j]).pvalue for j in range(3)]
    r = stats.unbiasedness_test(x, exact, alpha=0.05, method="bonferroni")
    assert r.rank == 3 and r.df == (59,)
    assert r.p_value == pytest.approx(min(1.0, 3 * min(p_each)), rel=1e-8)
    t_max = max(abs(scipy.stats.ttest_1samp(x[:, j], exact[j]).statistic) for j in range(3))
    assert r.statistic == pytest.approx(t_max, rel=1e-10)


def test_summary_is_rounded_text():
    x = score_like(np.random.default_rng(0), 1000)
    r = stats.unbiasedness_test(x, score_like_mean())
    text = r.summary()
    assert text.startswith(f"Hotelling T²={r.statistic:.3g}, rank 6, n=1000, p={r.p_value:.2g} ")
    assert text == stats.unbiasedness_test(x.copy(), score_like_mean()).summary()


# --------------------------------------------------------------------------------------------
# calibration and power, by simulation
# --------------------------------------------------------------------------------------------

SEEDS = 400
ALPHA = 0.05


def test_hotelling_calibrated_on_score_like_data():
    """False-alarm rate at alpha=0.05 over 400 independent batches of skewed, singular data."""
    k, rate, (low, high) = rejection_rate("hotelling", lambda rng: score_like(rng, 1000), score_like_mean(),
                                          ALPHA, SEEDS)
    print(f"hotelling score-like: {k}/{SEEDS} = {rate:.4f}, 99% CI [{low:.4f}, {high:.4f}]")
    assert low <= ALPHA <= high


def test_hotelling_uses_the_f_distribution_in_small_samples():
    """Gaussian data, n=25, rank 8 (of 10 coordinates): F(8, 17) is exact here, while the
    chi-square approximation T² ~ χ²(8) would reject 28% of the time."""
    mix = np.random.default_rng(99).normal(size=(10, 8))

    def make(rng):
        return rng.normal(size=(25, 8)) @ mix.T + 1.0

    k, rate, (low, high) = rejection_rate("hotelling", make, np.ones(10), ALPHA, SEEDS)
    print(f"hotelling gaussian n=25 rank 8: {k}/{SEEDS} = {rate:.4f}, 99% CI [{low:.4f}, {high:.4f}]")
    assert low <= ALPHA <= high


def test_bonferroni_false_alarm_rate_at_most_alpha():
    k, rate, (low, high) = rejection_rate("bonferroni", lambda rng: score_like(rng, 1000), score_like_mean(),
                                          ALPHA, SEEDS)
    print(f"bonferroni score-like: {k}/{SEEDS} = {rate:.4f}, 99% CI [{low:.4f}, {high:.4f}]")
    assert low <= ALPHA


@pytest.mark.parametrize("method", ["hotelling", "bonferroni"])
def test_power_against_a_shifted_mean(method):
    """A bias of 0.15 in one action of state 0 (and -0.15 in another, so rows still sum to zero):
    about 4 standard errors at n=1000."""
    shifted = score_like_mean()
    shifted[0, :2] += [0.15, -0.15]
    k, rate, _ = rejection_rate(method, lambda rng: score_like(rng, 1000), shifted, ALPHA, 50)
    print(f"{method} power: {k}/50")
    assert rate >= 0.8


# --------------------------------------------------------------------------------------------
# variance ratio
# --------------------------------------------------------------------------------------------


def test_variance_ratio_is_the_ratio_of_covariance_traces():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 2, 3)) * 2.0
    b = rng.normal(size=(80, 2, 3))
    r = stats.variance_ratio(a, b)
    tr_a = np.trace(np.cov(a.reshape(50, -1), rowvar=False))
    tr_b = np.trace(np.cov(b.reshape(80, -1), rowvar=False))
    assert r.ratio == pytest.approx(tr_a / tr_b, rel=1e-12)
    assert (r.var_a, r.var_b) == (pytest.approx(tr_a), pytest.approx(tr_b))
    assert not r.paired and r.low < r.ratio < r.high and r.confidence == 0.99


def test_variance_ratio_of_a_scaled_copy_is_exact_when_paired():
    x = np.random.default_rng(1).normal(size=(100, 4))
    r = stats.variance_ratio(2 * x, x)
    assert r.paired
    assert r.ratio == pytest.approx(4.0) and r.low == pytest.approx(4.0) and r.high == pytest.approx(4.0)
    r = stats.variance_ratio(2 * x, x, paired=False)
    assert r.low < 3.5 and r.high > 4.5  # ignoring the pairing throws the information away


def test_variance_ratio_interval_by_hand():
    """Independent delta method, written out: se^2 = s_u^2/(N ubar^2) + s_v^2/(M vbar^2)."""
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(40,)), rng.normal(size=(30,)) * 3
    u = [(ai - sum(a) / 40) ** 2 for ai in a]
    v = [(bi - sum(b) / 30) ** 2 for bi in b]
    ub, vb = sum(u) / 40, sum(v) / 30
    su2 = sum((ui - ub) ** 2 for ui in u) / 39
    sv2 = sum((vi - vb) ** 2 for vi in v) / 29
    se = math.sqrt(su2 / (40 * ub**2) + sv2 / (30 * vb**2))
    ratio = (sum(u) / 39) / (sum(v) / 29)
    z = scipy.stats.norm.ppf(0.95)
    r = stats.variance_ratio(a, b, confidence=0.9)
    assert (r.ratio, r.low, r.high) == (pytest.approx(ratio), pytest.approx(ratio * math.exp(-z * se)),
                                        pytest.approx(ratio * math.exp(z * se)))


@pytest.mark.parametrize("paired", [True, False])
def test_variance_ratio_coverage(paired):
    """Over 300 seeds, the 90% interval must cover the true ratio a fraction of times whose 99%
    Clopper-Pearson interval contains 0.9. Heavy-ish tails (Student t, 8 df)."""
    scale = np.array([1.0, 2.0, 1.0])
    true = (3 * 8 / 6 + 3 * 0.09) / ((1 + 4 + 1) * 8 / 6)  # Var t_8 = 8/6
    covered = 0
    for seed in range(300):
        rng = np.random.default_rng(seed)
        z = rng.standard_t(8, size=(1000, 3))
        a = z + 0.3 * rng.normal(size=(1000, 3))
        b = z * scale if paired else rng.standard_t(8, size=(700, 3)) * scale
        r = stats.variance_ratio(a, b, confidence=0.9, paired=paired)
        covered += r.low <= true <= r.high
    low, high = stats.binomial_interval(covered, 300, 0.99)
    print(f"variance_ratio coverage paired={paired}: {covered}/300, 99% CI [{low:.4f}, {high:.4f}]")
    assert low <= 0.9 <= high


def test_variance_ratio_summary():
    x = np.random.default_rng(3).normal(size=(200, 2))
    r = stats.variance_ratio(0.5 * x + 0.1 * np.random.default_rng(4).normal(size=(200, 2)), x)
    assert r.summary() == "Var(a)/Var(b)={}, 99% CI [{}, {}] (paired, n=200)".format(
        *stats.fmt_interval(r.ratio, r.low, r.high))
    assert stats.fmt_interval(0.39287, 0.38731, 0.39854) == ("0.393", "0.387", "0.399")


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def test_effective_sample_size():
    assert stats.effective_sample_size([1, 1, 2]) == pytest.approx(16 / 6)
    assert stats.effective_sample_size(np.full(7, 0.3)) == pytest.approx(7.0)
    assert stats.effective_sample_size([0.0, 5.0, 0.0]) == pytest.approx(1.0)
    assert stats.effective_sample_size(torch.tensor([1e200, 1e200], dtype=torch.float64)) == pytest.approx(2.0)  # no overflow


@pytest.mark.parametrize("k, n", [(0, 10), (3, 10), (10, 10), (10, 200), (190, 200)])
def test_binomial_interval_is_clopper_pearson(k, n):
    """The defining tail equations: P(X >= k | low) = a/2 and P(X <= k | high) = a/2."""
    low, high = stats.binomial_interval(k, n, 0.99)
    if k == 0:
        assert low == 0.0
    else:
        assert scipy.stats.binom.sf(k - 1, n, low) == pytest.approx(0.005, rel=1e-6)
    if k == n:
        assert high == 1.0
    else:
        assert scipy.stats.binom.cdf(k, n, high) == pytest.approx(0.005, rel=1e-6)
    assert low <= k / n <= high


def test_cosine_similarity():
    assert stats.cosine_similarity([1, 0], [1, 1]) == pytest.approx(1 / math.sqrt(2))
    assert stats.cosine_similarity(np.eye(2), -np.eye(2)) == pytest.approx(-1.0)
    assert stats.cosine_similarity(torch.ones(2, 3), np.ones(6)) == pytest.approx(1.0)


# --------------------------------------------------------------------------------------------
# bad inputs: ValueError naming the argument
# --------------------------------------------------------------------------------------------

GOOD = np.random.default_rng(0).normal(size=(20, 3))
NAN = GOOD.copy()
NAN[3, 1] = np.nan


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: stats.mean_and_se(np.ones((1, 3))), "samples"),
        (lambda: stats.mean_and_se(3.0), "samples"),
        (lambda: stats.mean_and_se(NAN), "samples"),
        (lambda: stats.z_scores(GOOD, np.zeros(4)), "exact"),
        (lambda: stats.z_scores(GOOD, np.array([0.0, np.inf, 0.0])), "exact"),
        (lambda: stats.unbiasedness_test(GOOD, np.zeros((3, 1))), "exact"),
        (lambda: stats.unbiasedness_test(NAN, np.zeros(3)), "samples"),
        (lambda: stats.unbiasedness_test(GOOD, np.zeros(3), alpha=0.0), "alpha"),
        (lambda: stats.unbiasedness_test(GOOD, np.zeros(3), alpha=1.5), "alpha"),
        (lambda: stats.unbiasedness_test(GOOD, np.zeros(3), alpha="x"), "alpha"),
        (lambda: stats.unbiasedness_test(GOOD, np.zeros(3), method="wald"), "method"),
        (lambda: stats.unbiasedness_test(["a", "b"], np.zeros(())), "samples"),
        (lambda: stats.variance_ratio(GOOD, np.ones((20, 4))), "b"),
        (lambda: stats.variance_ratio(GOOD, GOOD[:10], paired=True), "paired"),
        (lambda: stats.variance_ratio(GOOD, GOOD, paired="yes"), "paired"),
        (lambda: stats.variance_ratio(GOOD, GOOD, confidence=1.0), "confidence"),
        (lambda: stats.variance_ratio(np.ones((5, 3)), GOOD), "a"),
        (lambda: stats.variance_ratio(GOOD[:1], GOOD), "a"),
        (lambda: stats.effective_sample_size([1.0, -0.5]), "importance_weights"),
        (lambda: stats.effective_sample_size([0.0, 0.0]), "importance_weights"),
        (lambda: stats.effective_sample_size([1.0, np.nan]), "importance_weights"),
        (lambda: stats.effective_sample_size(np.ones((2, 2))), "importance_weights"),
        (lambda: stats.binomial_interval(11, 10), "k"),
        (lambda: stats.binomial_interval(2.5, 10), "k"),
        (lambda: stats.binomial_interval(1, 0), "n"),
        (lambda: stats.binomial_interval(1, 10, confidence=0.0), "confidence"),
        (lambda: stats.cosine_similarity([0.0, 0.0], [1.0, 2.0]), "a"),
        (lambda: stats.cosine_similarity([1.0, 0.0], [1.0, 2.0, 3.0]), "b"),
    ],
)
def test_bad_inputs_name_the_argument(call, name):
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert message.startswith(name) or f" {name} " in message or f"{name}=" in message, message
    assert "got" in message


def test_cut_off_decisions_have_a_margin():
    """Every cut-off decision of the test (constant column, null direction) is made at least
    DECISION_MARGIN away from its cut-off, or refused: a last-bit change cannot move it."""
    rng = np.random.default_rng(0)
    base = rng.normal(size=(2000, 2))
    # a coordinate whose spread is 1e-9 of its magnitude: right at NULL_RTOL
    nearly_constant = np.column_stack([base, 1.0 + 1e-9 * rng.normal(size=2000)])
    with pytest.raises(ValueError, match="within a factor 10 of its cut-off"):
        stats.unbiasedness_test(nearly_constant, np.array([0.0, 0.0, 1.0]))
    # two coordinates correlated to within RANK_RTOL: a principal direction at the rank cut-off
    x = base[:, 0]
    nearly_collinear = np.column_stack([x, x + 1e-5 * rng.normal(size=2000), base[:, 1]])
    with pytest.raises(ValueError, match="principal direction"):
        stats.unbiasedness_test(nearly_collinear, np.zeros(3))
    # clear of the margins on both sides: decided
    clear = np.column_stack([x, x + 1e-2 * rng.normal(size=2000), np.ones(2000)])
    assert stats.unbiasedness_test(clear, np.array([0.0, 0.0, 1.0])).rank == 2
    exact_null = np.column_stack([x, -x, base[:, 1]])  # rows of a softmax score: a true null direction
    assert stats.unbiasedness_test(exact_null, np.zeros(3)).rank == 2
