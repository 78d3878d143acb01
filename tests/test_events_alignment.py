"""Tests of wDTW-CD, the DTW baselines and the trend metrics (equipipe.events)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from dtaidistance import dtw as dtaidistance_dtw

from equipipe.errors import ConfigError
from equipipe.events.alignment import (
    Alignment,
    ddtw,
    derivative,
    dtw,
    wdtw,
    wdtw_cd,
    wdtw_cd_distance,
    xcorr_lag,
)
from equipipe.events.metrics import trend_metrics

# ---------------------------------------------------------------------------
# Independent pure-Python references (no numpy broadcasting, no shared helpers)
# ---------------------------------------------------------------------------


def reference_derivative(values):
    n = len(values)
    estimate = [0.0] * n
    for i in range(1, n - 1):
        estimate[i] = ((values[i] - values[i - 1]) + (values[i + 1] - values[i - 1]) / 2) / 2
    estimate[0] = estimate[1]
    estimate[-1] = estimate[-2]
    return estimate


def reference_wdtw_cd_cost(x, y, k, c):
    dx = reference_derivative(x)
    dy = reference_derivative(y)
    return [
        [
            math.sqrt(abs(x[i] - y[j]) * abs(dx[i] - dy[j]))
            + 1.0 / (1.0 + math.exp(k * (c - abs(i - j))))
            for j in range(len(y))
        ]
        for i in range(len(x))
    ]


def all_warping_paths(n, m):
    """Yield every monotone, continuous path from (0, 0) to (n-1, m-1)."""

    def extend(path):
        i, j = path[-1]
        if (i, j) == (n - 1, m - 1):
            yield list(path)
            return
        for di, dj in ((1, 0), (0, 1), (1, 1)):
            if i + di < n and j + dj < m:
                path.append((i + di, j + dj))
                yield from extend(path)
                path.pop()

    yield from extend([(0, 0)])


def brute_force_min_cost(cost):
    n, m = len(cost), len(cost[0])
    return min(sum(cost[i][j] for i, j in path) for path in all_warping_paths(n, m))


def reference_accumulate(cost):
    n, m = len(cost), len(cost[0])
    total = [[math.inf] * m for _ in range(n)]
    for i in range(n):
        for j in range(m):
            if i == 0 and j == 0:
                total[i][j] = cost[0][0]
                continue
            candidates = []
            if i > 0:
                candidates.append(total[i - 1][j])
            if j > 0:
                candidates.append(total[i][j - 1])
            if i > 0 and j > 0:
                candidates.append(total[i - 1][j - 1])
            total[i][j] = cost[i][j] + min(candidates)
    return total


def cost_total(cost):
    return reference_accumulate(cost)[-1][-1]


def path_cost(alignment):
    return float(sum(alignment.cost[i, j] for i, j in alignment.path))


def bump(n_slots, centre, width=4.0):
    t = np.arange(n_slots, dtype=float)
    values = np.exp(-((t - centre) ** 2) / (2 * width**2))
    return values / values.sum()


# ---------------------------------------------------------------------------
# Derivative
# ---------------------------------------------------------------------------


def test_derivative_hand_computed():
    # Interior: ((x_i - x_{i-1}) + (x_{i+1} - x_{i-1}) / 2) / 2
    # i=1: (1 + 3/2)/2 = 1.25, i=2: (2 + 5/2)/2 = 2.25, i=3: (3 + 7/2)/2 = 3.25
    estimate = derivative([1.0, 2.0, 4.0, 7.0, 11.0])
    np.testing.assert_allclose(estimate, [1.25, 1.25, 2.25, 3.25, 3.25])


def test_derivative_of_line_is_slope():
    np.testing.assert_allclose(derivative(3.0 - 2.0 * np.arange(6)), np.full(6, -2.0))


def test_derivative_three_points():
    # Only i=1 is interior: ((5 - 1) + (3 - 1)/2)/2 = 2.5, copied to both endpoints.
    np.testing.assert_allclose(derivative([1.0, 5.0, 3.0]), [2.5, 2.5, 2.5])


# ---------------------------------------------------------------------------
# wDTW-CD against references
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "m", "seed"),
    [(3, 3, 0), (3, 5, 1), (5, 3, 2), (4, 4, 3), (5, 5, 4), (5, 6, 5)],
    ids=["3x3", "3x5", "5x3", "4x4", "5x5", "5x6"],
)
@pytest.mark.parametrize(("k", "c"), [(1.0, 2.0), (3.0, 0.5)], ids=["k1c2", "k3c05"])
def test_wdtw_cd_equals_brute_force(n, m, seed, k, c):
    rng = np.random.default_rng(seed)
    x = rng.random(n)
    y = rng.random(m)
    expected = brute_force_min_cost(reference_wdtw_cd_cost(list(x), list(y), k, c))

    alignment = wdtw_cd(x, y, k=k, c=c)

    assert alignment.distance == pytest.approx(expected / (n + m), rel=1e-12)
    assert path_cost(alignment) == pytest.approx(expected, rel=1e-12)


def test_wdtw_cd_matrices_match_reference():
    rng = np.random.default_rng(7)
    x = rng.random(23)
    y = rng.random(17)
    cost = reference_wdtw_cd_cost(list(x), list(y), 0.7, 4.0)

    alignment = wdtw_cd(x, y, k=0.7, c=4.0)

    np.testing.assert_allclose(alignment.cost, cost, rtol=1e-12)
    np.testing.assert_allclose(alignment.accumulated, reference_accumulate(cost), rtol=1e-12)
    assert alignment.distance == pytest.approx(cost_total(cost) / 40, rel=1e-12)


def test_wdtw_cd_distance_matches_full():
    rng = np.random.default_rng(8)
    x = rng.random(40)
    y = rng.random(55)
    assert wdtw_cd_distance(x, y, k=2.0, c=3.0) == pytest.approx(
        wdtw_cd(x, y, k=2.0, c=3.0).distance, rel=1e-12
    )


def test_wdtw_cd_symmetric():
    rng = np.random.default_rng(9)
    x = rng.random(30)
    y = rng.random(25)
    forward = wdtw_cd(x, y)
    backward = wdtw_cd(y, x)
    assert forward.distance == pytest.approx(backward.distance, rel=1e-12)
    np.testing.assert_allclose(forward.cost, backward.cost.T)


def test_wdtw_cd_identical_series_penalty_floor():
    x = bump(50, 20.0)
    k, c = 1.0, 10.0
    alignment = wdtw_cd(x, x, k=k, c=c)
    # The value-derivative term is 0 on the diagonal, and each of the n diagonal
    # cells costs the zero-lag penalty, the smallest cost any cell can have.
    floor = 1.0 / (1.0 + math.exp(k * c))
    np.testing.assert_array_equal(alignment.path, np.stack([np.arange(50)] * 2, axis=1))
    assert alignment.distance == pytest.approx(50 * floor / 100, rel=1e-12)


def test_wdtw_cd_identical_series_zero():
    # With k * c = 40 the zero-lag penalty is exp(-40) ~ 4e-18, so the distance is 0
    # to double precision.
    x = bump(50, 20.0)
    assert wdtw_cd(x, x, k=1.0, c=40.0).distance == pytest.approx(0.0, abs=1e-15)
    assert dtw(x, x).distance == 0.0
    assert ddtw(x, x).distance == 0.0
    assert wdtw(x, x).distance == 0.0


def test_wdtw_cd_large_kc_no_overflow():
    x = bump(20, 8.0)
    with np.errstate(over="raise"):
        alignment = wdtw_cd(x, x[::-1], k=200.0, c=50.0)
    assert np.all(np.isfinite(alignment.cost))


# ---------------------------------------------------------------------------
# Baselines
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "m", "seed"), [(30, 30, 0), (40, 25, 1), (7, 60, 2)])
def test_dtw_squared_matches_dtaidistance(n, m, seed):
    # dtaidistance sums squared differences along the path and returns the square
    # root, so compare it with sqrt(D) of our DTW with the squared local cost.
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = rng.normal(size=m)
    expected = dtaidistance_dtw.distance(x, y)

    alignment = dtw(x, y, metric="squared")

    assert math.sqrt(alignment.accumulated[-1, -1]) == pytest.approx(expected, rel=1e-10)
    assert alignment.distance == pytest.approx(expected**2 / (n + m), rel=1e-10)


def test_dtw_absolute_matches_brute_force():
    rng = np.random.default_rng(3)
    x = rng.random(5)
    y = rng.random(4)
    cost = [[abs(a - b) for b in y] for a in x]
    assert dtw(x, y).distance == pytest.approx(brute_force_min_cost(cost) / 9, rel=1e-12)


def test_ddtw_squared_matches_dtaidistance_on_derivatives():
    rng = np.random.default_rng(4)
    x = rng.normal(size=35)
    y = rng.normal(size=28)
    expected = dtaidistance_dtw.distance(
        np.array(reference_derivative(list(x))), np.array(reference_derivative(list(y)))
    )
    alignment = ddtw(x, y, metric="squared")
    assert math.sqrt(alignment.accumulated[-1, -1]) == pytest.approx(expected, rel=1e-10)


def test_wdtw_matches_reference():
    rng = np.random.default_rng(5)
    x = rng.random(12)
    y = rng.random(9)
    g, w_max, half = 0.3, 2.0, 12 / 2
    cost = [
        [w_max / (1 + math.exp(-g * (abs(i - j) - half))) * (x[i] - y[j]) ** 2 for j in range(9)]
        for i in range(12)
    ]
    alignment = wdtw(x, y, g, w_max=w_max)
    np.testing.assert_allclose(alignment.cost, cost, rtol=1e-12)
    assert alignment.distance == pytest.approx(cost_total(cost) / 21, rel=1e-12)


def test_wdtw_zero_g_is_scaled_squared_dtw():
    rng = np.random.default_rng(6)
    x = rng.random(20)
    y = rng.random(15)
    expected = dtw(x, y, metric="squared").distance / 2
    assert wdtw(x, y, 0.0).distance == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("shift", [-7, -2, 0, 3, 9])
def test_xcorr_lag_recovers_shift(shift):
    rng = np.random.default_rng(11)
    walk = np.cumsum(rng.normal(size=120))
    x = walk[20:100]
    y = walk[20 - shift : 100 - shift]  # y[t] = x[t - shift]: x leads when shift > 0
    assert xcorr_lag(x, y) == shift
    assert xcorr_lag(y, x) == -shift


def test_xcorr_lag_max_lag_limits_search():
    x = bump(60, 20.0)
    y = bump(60, 30.0)
    assert xcorr_lag(x, y) == 10
    assert abs(xcorr_lag(x, y, max_lag=4)) <= 4


# ---------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "align",
    [wdtw_cd, dtw, ddtw, wdtw, lambda x, y: wdtw_cd(x, y, k=0.2, c=0.0)],
    ids=["wdtw_cd", "dtw", "ddtw", "wdtw", "wdtw_cd_c0"],
)
@pytest.mark.parametrize(("n", "m"), [(3, 3), (10, 31), (31, 10), (50, 50)])
def test_path_is_valid_warping_path(align, n, m):
    rng = np.random.default_rng(n * 100 + m)
    alignment = align(rng.random(n), rng.random(m))
    path = alignment.path
    steps = np.diff(path, axis=0)

    assert path.dtype == np.int64
    assert tuple(path[0]) == (0, 0)
    assert tuple(path[-1]) == (n - 1, m - 1)
    assert np.all((steps >= 0) & (steps <= 1))
    assert np.all(steps.sum(axis=1) >= 1)
    assert max(n, m) <= len(path) <= n + m - 1
    assert alignment.accumulated[-1, -1] == pytest.approx(path_cost(alignment), rel=1e-10)


def test_path_enumeration_count():
    # Delannoy number D(3, 3) = 63 paths on a 4 x 4 grid: checks the brute force itself.
    assert sum(1 for _ in all_warping_paths(4, 4)) == 63


# ---------------------------------------------------------------------------
# Trend metrics
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("shift", [-5, -3, -1, 1, 2, 5])
def test_shift_gives_lead_and_leader(shift):
    x = bump(90, 40.0)
    y = bump(90, 40.0 + shift)  # y peaks `shift` slots later: weibo leads when > 0
    metrics = trend_metrics(x, y, wdtw_cd(x, y), names=("weibo", "zhihu"))

    assert metrics["lead_slots"] == shift
    assert metrics["leader"] == ("weibo" if shift > 0 else "zhihu")
    if shift > 0:
        assert metrics["warping_degree_b_leads"] == pytest.approx(0.0, abs=1e-3)
        assert metrics["warping_degree_a_leads"] > 0
    else:
        assert metrics["warping_degree_a_leads"] == pytest.approx(0.0, abs=1e-3)
        assert metrics["warping_degree_b_leads"] > 0


def test_shift_beyond_c_is_limited():
    # A lead well beyond c costs more in penalty than it saves, so wDTW-CD reports
    # less than the true lead unless c is raised. Plain DTW has no such limit.
    x = bump(90, 40.0)
    y = bump(90, 52.0)
    assert trend_metrics(x, y, wdtw_cd(x, y, c=4.0))["lead_slots"] < 12
    assert trend_metrics(x, y, wdtw_cd(x, y, c=25.0))["lead_slots"] == 12
    assert trend_metrics(x, y, dtw(x, y))["lead_slots"] == 12


def test_identical_series_metrics():
    x = bump(40, 15.0)
    metrics = trend_metrics(x, x, wdtw_cd(x, x))
    assert metrics["lead"] == 0.0
    assert metrics["leader"] == "neither"
    assert metrics["time_irrelevant_similarity"] == 1.0
    assert metrics["warping_degree"] == 0.0
    assert metrics["overall_similarity"] == 1.0


def test_metrics_hand_computed():
    x = np.array([0.0, 1.0, 0.0, 0.0])
    y = np.array([0.0, 0.0, 1.0, 0.0])
    path = np.array([[0, 0], [0, 1], [1, 2], [2, 3], [3, 3]], dtype=np.int64)
    alignment = Alignment(0.0, path, np.zeros((4, 4)), np.zeros((4, 4)), method="hand")
    metrics = trend_metrics(x, y, alignment, names=("weibo", "zhihu"))

    # Only step (1, 2) has popularity mass (|1| + |1|), so it carries all the weight:
    # lead = 2 - 1 = 1 slot, a-leads degree = 1 / (max lag 3), b-leads degree = 0.
    assert metrics["lead"] == pytest.approx(1.0)
    assert metrics["leader"] == "weibo"
    assert metrics["warping_degree_a_leads"] == pytest.approx(1.0 / 3.0)
    assert metrics["warping_degree_b_leads"] == 0.0
    # Every matched pair has equal values (0 with 0, 1 with 1), so v_k = 0.
    assert metrics["time_irrelevant_similarity"] == pytest.approx(1.0)
    assert metrics["overall_similarity"] == pytest.approx(2.0 / 3.0)
    assert metrics["path_length"] == 5


def test_metrics_time_irrelevant_hand_computed():
    # Diagonal path on x = [0, 1, 2] and y = [0, 0, 0]: x' = [1, 1, 1], y' = 0, so
    # v = sqrt(|x_i| * 1) = [0, 1, sqrt 2] and s = sqrt(range 2 * range 1) = sqrt 2.
    x = np.array([0.0, 1.0, 2.0])
    y = np.zeros(3)
    path = np.array([[0, 0], [1, 1], [2, 2]], dtype=np.int64)
    alignment = Alignment(0.0, path, np.zeros((3, 3)), np.zeros((3, 3)))
    metrics = trend_metrics(x, y, alignment)
    expected = 1.0 - (0.0 + 1.0 / math.sqrt(2.0) + 1.0) / 3.0
    assert metrics["time_irrelevant_similarity"] == pytest.approx(expected)
    assert metrics["lead"] == 0.0


@pytest.mark.parametrize("seed", range(6))
def test_metric_ranges(seed):
    rng = np.random.default_rng(seed)
    x = rng.random(40)
    y = rng.random(33)
    for align in (wdtw_cd, dtw, ddtw, wdtw):
        metrics = trend_metrics(x, y, align(x, y))
        assert 0.0 <= metrics["time_irrelevant_similarity"] <= 1.0
        assert metrics["warping_degree_a_leads"] >= 0.0
        assert metrics["warping_degree_b_leads"] >= 0.0
        assert metrics["warping_degree"] <= 1.0
        assert 0.0 <= metrics["overall_similarity"] <= 1.0
        assert abs(metrics["lead"]) <= metrics["max_lag"]


def test_metrics_swap_flips_lead():
    x = bump(70, 30.0)
    y = bump(70, 34.0) + 0.002
    forward = trend_metrics(x, y, wdtw_cd(x, y), names=("weibo", "zhihu"))
    backward = trend_metrics(y, x, wdtw_cd(y, x), names=("zhihu", "weibo"))
    assert forward["lead"] == pytest.approx(-backward["lead"], abs=1e-9)
    assert forward["leader"] == backward["leader"] == "weibo"


# ---------------------------------------------------------------------------
# Input errors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "error", "match"),
    [
        (np.ones((4, 2)), ValueError, r"x has shape \(4, 2\); expected a 1-D series"),
        ([1.0, 2.0], ValueError, "x has 2 slot"),
        ([1.0, np.nan, 2.0, 3.0], ValueError, r"non-finite value \(nan\) at index 1"),
        ([1.0, np.inf, 2.0], ValueError, "non-finite value"),
        (["a", "b", "c"], TypeError, "x must be a 1-D sequence of numbers"),
    ],
    ids=["2d", "short", "nan", "inf", "strings"],
)
def test_wdtw_cd_rejects_bad_series(x, error, match):
    with pytest.raises(error, match=match):
        wdtw_cd(x, [1.0, 2.0, 3.0])


def test_wdtw_cd_rejects_bad_y():
    with pytest.raises(ValueError, match="y has 1 slot"):
        wdtw_cd([1.0, 2.0, 3.0], [1.0])


@pytest.mark.parametrize(
    ("k", "c", "match"),
    [
        (0.0, 5.0, r"k=0.0 must be a finite number > 0.*events\.alignment\.k"),
        (-1.0, 5.0, r"k=-1.0 must be a finite number > 0"),
        (float("nan"), 5.0, r"k=nan must be a finite number > 0"),
        ("steep", 5.0, r"k='steep' is not a number.*events\.alignment\.k"),
        (1.0, -2.0, r"c=-2.0 must be a finite number >= 0.*events\.alignment\.c"),
        (1.0, float("inf"), r"c=inf must be a finite number >= 0"),
    ],
    ids=["k0", "k-neg", "k-nan", "k-str", "c-neg", "c-inf"],
)
def test_wdtw_cd_rejects_bad_parameters(k, c, match):
    x = [0.0, 1.0, 0.5, 0.2]
    with pytest.raises(ConfigError, match=match):
        wdtw_cd(x, x, k=k, c=c)
    with pytest.raises(ConfigError, match=match):
        wdtw_cd_distance(x, x, k=k, c=c)


def test_derivative_rejects_short_series():
    with pytest.raises(ValueError, match="x has 2 slot.*at least 3"):
        derivative([1.0, 2.0])


def test_dtw_rejects_bad_metric():
    with pytest.raises(ValueError, match="metric='cosine' is not supported"):
        dtw([1.0, 2.0], [1.0, 2.0], metric="cosine")
    with pytest.raises(ValueError, match="metric='cosine' is not supported"):
        ddtw([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], metric="cosine")


def test_dtw_rejects_single_value():
    with pytest.raises(ValueError, match="y has 1 slot"):
        dtw([1.0, 2.0], [1.0])


def test_wdtw_rejects_bad_parameters():
    with pytest.raises(ConfigError, match=r"g=-0.1 must be a finite number >= 0.*wdtw_g"):
        wdtw([1.0, 2.0], [1.0, 2.0], -0.1)
    with pytest.raises(ValueError, match="w_max=0 must be a finite number > 0"):
        wdtw([1.0, 2.0], [1.0, 2.0], 0.1, w_max=0)
    with pytest.raises(ValueError, match="w_max='1' must be a finite number > 0"):
        wdtw([1.0, 2.0], [1.0, 2.0], 0.1, w_max="1")


def test_xcorr_lag_rejects_constant_and_bad_max_lag():
    with pytest.raises(ValueError, match="y is constant"):
        xcorr_lag([1.0, 2.0, 3.0], [2.0, 2.0, 2.0])
    with pytest.raises(ValueError, match="max_lag=-1 must be a non-negative integer"):
        xcorr_lag([1.0, 2.0, 3.0], [3.0, 1.0, 2.0], max_lag=-1)
    with pytest.raises(ValueError, match="max_lag='3' must be a non-negative integer"):
        xcorr_lag([1.0, 2.0, 3.0], [3.0, 1.0, 2.0], max_lag="3")
    with pytest.raises(ValueError, match="max_lag=1.5 must be a non-negative integer"):
        xcorr_lag([1.0, 2.0, 3.0], [3.0, 1.0, 2.0], max_lag=1.5)


def test_trend_metrics_rejects_mismatched_path():
    x = bump(20, 8.0)
    alignment = wdtw_cd(x, x)
    with pytest.raises(ValueError, match=r"must run from \(0, 0\) to \(24, 19\)"):
        trend_metrics(bump(25, 8.0), x, alignment)


def test_trend_metrics_rejects_broken_path():
    x = np.array([0.0, 1.0, 0.0, 0.0])
    path = np.array([[0, 0], [2, 2], [3, 3]], dtype=np.int64)
    alignment = Alignment(0.0, path, np.zeros((4, 4)), np.zeros((4, 4)))
    with pytest.raises(ValueError, match="is not a warping path"):
        trend_metrics(x, x, alignment)


def test_trend_metrics_rejects_float_path():
    x = np.array([0.0, 1.0, 0.0])
    path = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])
    alignment = Alignment(0.0, path, np.zeros((3, 3)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="expected integer indices"):
        trend_metrics(x, x, alignment)


@pytest.mark.parametrize("names", [("weibo", "weibo"), ("weibo",), ("weibo", "")])
def test_trend_metrics_rejects_bad_names(names):
    x = bump(10, 4.0)
    with pytest.raises(ValueError, match="must be two distinct non-empty platform names"):
        trend_metrics(x, x, wdtw_cd(x, x), names=names)


def test_trend_metrics_rejects_non_alignment():
    x = bump(10, 4.0)
    with pytest.raises(TypeError, match="alignment must be an Alignment"):
        trend_metrics(x, x, {"path": [[0, 0]]})


def test_combinations_of_small_grid():
    # Every (n, m) from 3 to 5 on fixed data: brute force and DP agree.
    rng = np.random.default_rng(12)
    data = rng.random(5)
    for n, m in itertools.product(range(3, 6), repeat=2):
        cost = reference_wdtw_cd_cost(list(data[:n]), list(data[::-1][:m]), 1.0, 1.0)
        alignment = wdtw_cd(data[:n], data[::-1][:m], k=1.0, c=1.0)
        assert alignment.accumulated[-1, -1] == pytest.approx(brute_force_min_cost(cost))


# ---------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.filterwarnings("ignore:Glyph .* missing from font")
def test_plots_write_png(tmp_path):
    from equipipe.events import plots

    x = bump(300, 100.0, width=10.0)
    y = bump(300, 104.0, width=10.0)
    alignment = wdtw_cd(x, y)
    slot_labels = [f"day {index}" for index in range(300)]
    metrics = trend_metrics(x, y, alignment, names=("weibo", "zhihu"))
    table = [
        dict(metrics, event="东京奥运会"),
        dict(metrics, event="henan floods", lead_slots=-2),
    ]

    plots.plot_alignment(x, y, alignment, ("微博", "知乎"), tmp_path / "a.png", slot_labels)
    plots.plot_cost_matrix(alignment, tmp_path / "cost.png")
    plots.plot_summary(table, tmp_path / "summary.png")
    plots.plot_summary(
        [dict(row, true_lead_slots=4) for row in table], tmp_path / "summary_truth.png"
    )

    names = ["a.png", "cost.png", "summary.png", "summary_truth.png"]
    for name in names:
        assert (tmp_path / name).read_bytes()[:8] == PNG_SIGNATURE
    assert sorted(path.name for path in tmp_path.iterdir()) == names


def test_plot_alignment_thins_long_paths(tmp_path, monkeypatch):
    from equipipe.events import plots

    saved = []
    monkeypatch.setattr(plots, "_save", lambda figure, path: saved.append(figure))
    x = bump(400, 150.0, width=20.0)
    alignment = wdtw_cd(x, x)
    plots.plot_alignment(x, x, alignment, ("A", "B"), tmp_path / "a.png")

    grey_lines = [line for line in saved[0].axes[0].lines if line.get_color() == "0.7"]
    assert len(grey_lines) <= plots.MAX_ALIGNMENT_LINES + 1
    assert len(grey_lines) >= plots.MAX_ALIGNMENT_LINES // 2


def test_plot_errors(tmp_path):
    from equipipe.events import plots

    x = bump(20, 8.0)
    alignment = wdtw_cd(x, x)
    with pytest.raises(ValueError, match=r"summary table is missing column\(s\) \['lead_slots'\]"):
        plots.plot_summary([{"event": "a", "overall_similarity": 0.5}], tmp_path / "s.png")
    with pytest.raises(ValueError, match="summary table has no rows"):
        plots.plot_summary(
            {"event": [], "lead_slots": [], "overall_similarity": []}, tmp_path / "s.png"
        )
    with pytest.raises(ValueError, match="slot_labels has 5 entries; expected at least 20"):
        plots.plot_alignment(x, x, alignment, ("A", "B"), tmp_path / "a.png", ["d"] * 5)
    with pytest.raises(ValueError, match="labels='AB' must be two platform names"):
        plots.plot_alignment(x, x, alignment, "AB", tmp_path / "a.png")
    assert list(tmp_path.iterdir()) == []
