"""Alignment of two event popularity series: wDTW-CD and the DTW baselines.

wDTW-CD is the alignment model of DancingLines (Gao, Bao, Li, Gao, Kong, Tang, Chen
and Li, "DancingLines: An Analytical Scheme to Depict Cross-Platform Event
Popularity", DEXA 2018, arXiv:1712.08550). Its local cost between slot ``i`` of ``x``
and slot ``j`` of ``y`` combines the value difference, the derivative difference and a
logistic penalty on the warping ``|i - j|``::

    cost(i, j) = sqrt(|x_i - y_j| * |x'_i - y'_j|) + 1 / (1 + exp(k * (c - |i - j|)))

The baselines align the same series with plain DTW (Sakoe and Chiba 1978), derivative
DTW (Keogh and Pazzani 2001), weighted DTW (Jeong, Jeong and Omitaomu 2011) and the lag
of maximum cross-correlation. All DTW variants share one dynamic-programming recursion
``D(i, j) = cost(i, j) + min(D(i-1, j), D(i, j-1), D(i-1, j-1))``, compiled with numba,
and report ``D(n-1, m-1) / (n + m)`` as their distance. docs/events.md gives every
formula and the sign conventions.

Public functions validate their inputs. The private numba kernels assume valid input.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from numba import njit
from scipy import signal, special

from equipipe.errors import ConfigError

logger = logging.getLogger(__name__)

#: Config keys named in error messages about the wDTW-CD and weighted-DTW parameters.
K_KEY = "events.alignment.k"
C_KEY = "events.alignment.c"
G_KEY = "events.alignment.wdtw_g"

_METRICS = ("absolute", "squared")


@dataclass(frozen=True)
class Alignment:
    """Result of aligning series ``x`` (length n) with series ``y`` (length m).

    Attributes
    ----------
    distance : float
        Accumulated cost of the optimal warping path divided by ``n + m``.
    path : ndarray of int64, shape (L, 2)
        Warping path as pairs ``(i, j)`` of an index ``i`` in ``x`` and ``j`` in ``y``,
        from ``(0, 0)`` to ``(n - 1, m - 1)``. Both columns are non-decreasing and
        each step advances ``i``, ``j`` or both by one, so ``max(n, m) <= L <= n + m - 1``.
    cost : ndarray of float64, shape (n, m)
        Local cost of matching slot ``i`` of ``x`` with slot ``j`` of ``y``.
    accumulated : ndarray of float64, shape (n, m)
        Minimum accumulated cost ``D(i, j)`` of a path from ``(0, 0)`` to ``(i, j)``.
    method : str
        Name of the alignment method that produced this result.
    """

    distance: float
    path: np.ndarray
    cost: np.ndarray
    accumulated: np.ndarray
    method: str = "wdtw_cd"


# ---------------------------------------------------------------------------
# Input validation (public edge)
# ---------------------------------------------------------------------------


def _as_series(values, name: str, min_length: int) -> np.ndarray:
    """Return ``values`` as a 1-D float64 array after checking shape, length and finiteness."""
    try:
        series = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{name} must be a 1-D sequence of numbers (a popularity series), "
            f"got {type(values).__name__}: {error}"
        ) from error
    if series.ndim != 1:
        raise ValueError(
            f"{name} has shape {series.shape}; expected a 1-D series of shape (n_slots,). "
            "Pass one platform's popularity series at a time"
        )
    if series.size < min_length:
        raise ValueError(
            f"{name} has {series.size} slot(s); this method needs at least {min_length}. "
            "Widen the event's date window or use a shorter slot length"
        )
    bad = np.flatnonzero(~np.isfinite(series))
    if bad.size:
        raise ValueError(
            f"{name} contains a non-finite value ({series[bad[0]]}) at index {bad[0]} "
            f"({bad.size} non-finite value(s) in all); fill or drop those slots first"
        )
    return series


def _check_positive(value, name: str, key: str, allow_zero: bool) -> float:
    """Return ``value`` as float after checking it is finite and > 0 (or >= 0)."""
    try:
        number = float(value)
    except (TypeError, ValueError) as error:
        raise ConfigError(
            f"{name}={value!r} is not a number", field=key, fix=f"set {key} to a number"
        ) from error
    bound_ok = number >= 0 if allow_zero else number > 0
    if not math.isfinite(number) or not bound_ok:
        expected = ">= 0" if allow_zero else "> 0"
        raise ConfigError(
            f"{name}={value!r} must be a finite number {expected}",
            field=key,
            fix=f"set {key} to a finite number {expected}",
        )
    return number


def _check_metric(metric: str) -> None:
    if metric not in _METRICS:
        raise ValueError(f"metric={metric!r} is not supported; expected one of {_METRICS}")


# ---------------------------------------------------------------------------
# Numba kernels (assume valid, contiguous float64 input)
# ---------------------------------------------------------------------------


@njit(cache=True)
def _accumulate_row(previous, cost_row, out):
    """Fill ``out`` with row i of D from row i-1 (``previous``) and row i of the cost.

    The two predecessors from row i-1 do not depend on this row, so only the minimum
    with ``left`` sits on the loop-carried dependency chain.
    """
    left = previous[0] + cost_row[0]
    out[0] = left
    for j in range(1, cost_row.shape[0]):
        left = min(min(previous[j], previous[j - 1]), left) + cost_row[j]
        out[j] = left


@njit(cache=True)
def _accumulate_first_row(cost_row, out):
    total = 0.0
    for j in range(cost_row.shape[0]):
        total += cost_row[j]
        out[j] = total


@njit(cache=True)
def _accumulate_into(cost, accumulated):
    """Fill ``accumulated`` (shape (n, m)) with the DTW accumulated cost of ``cost``."""
    _accumulate_first_row(cost[0], accumulated[0])
    for i in range(1, cost.shape[0]):
        _accumulate_row(accumulated[i - 1], cost[i], accumulated[i])


def _accumulate(cost: np.ndarray) -> np.ndarray:
    """Return the DTW accumulated-cost matrix of a local-cost matrix of shape (n, m)."""
    accumulated = _empty_matrix(cost.shape)
    _accumulate_into(np.ascontiguousarray(cost, dtype=np.float64), accumulated)
    return accumulated


def _empty_matrix(shape: tuple[int, int]) -> np.ndarray:
    """Allocate an (n, m) float64 output with NumPy rather than inside a numba kernel.

    NumPy advises Linux to back arrays of 4 MiB or more with transparent huge pages,
    and numba's allocator does not. First-touch page faults dominate the time of a
    fresh matrix, so this made ``wdtw_cd`` three to five times faster at n = m = 1000
    and 2000 in benchmarks/bench_wdtw.py (shared 2-core AMD EPYC virtual machine).
    """
    return np.empty(shape, dtype=np.float64)


@njit(cache=True)
def _wdtw_cd_cost_row(x_i, dx_i, y, dy, penalty_row, out):
    """Fill ``out`` (shape (m,)) with the wDTW-CD local cost of slot i against all of y.

    ``penalty_row[j]`` is the warping penalty for the lag ``|i - j|``. The loop has no
    dependency between iterations, so LLVM vectorises it (square roots included).
    """
    for j in range(y.shape[0]):
        out[j] = math.sqrt(abs(x_i - y[j]) * abs(dx_i - dy[j])) + penalty_row[j]


@njit(cache=True)
def _fill_wdtw_cd_matrices(x, y, dx, dy, penalty_by_offset, cost, accumulated):
    """Fill the wDTW-CD local-cost and accumulated-cost matrices, shape (n, m) each.

    ``penalty_by_offset[n - 1 - i + j]`` is the warping penalty for ``|i - j|``, so
    the penalties of row i are one contiguous slice. Each row's costs are computed and
    then accumulated while the row is still in cache.
    """
    n = x.shape[0]
    m = y.shape[0]
    for i in range(n):
        penalty_row = penalty_by_offset[n - 1 - i : n - 1 - i + m]
        _wdtw_cd_cost_row(x[i], dx[i], y, dy, penalty_row, cost[i])
        if i == 0:
            _accumulate_first_row(cost[0], accumulated[0])
        else:
            _accumulate_row(accumulated[i - 1], cost[i], accumulated[i])


def _wdtw_cd_matrices(x, y, dx, dy, penalty_by_offset):
    """Return the wDTW-CD local-cost and accumulated-cost matrices, shape (n, m) each."""
    cost = _empty_matrix((x.size, y.size))
    accumulated = _empty_matrix((x.size, y.size))
    _fill_wdtw_cd_matrices(x, y, dx, dy, penalty_by_offset, cost, accumulated)
    return cost, accumulated


@njit(cache=True)
def _wdtw_cd_final_cost(x, y, dx, dy, penalty_by_offset):
    """Return ``D(n-1, m-1)`` of wDTW-CD, keeping only two rows of D (memory O(m))."""
    n = x.shape[0]
    m = y.shape[0]
    cost_row = np.empty(m)
    previous = np.empty(m)
    current = np.empty(m)
    for i in range(n):
        penalty_row = penalty_by_offset[n - 1 - i : n - 1 - i + m]
        _wdtw_cd_cost_row(x[i], dx[i], y, dy, penalty_row, cost_row)
        if i == 0:
            _accumulate_first_row(cost_row, current)
        else:
            _accumulate_row(previous, cost_row, current)
        previous, current = current, previous
    return previous[m - 1]


@njit(cache=True)
def _backtrack(accumulated):
    """Return the optimal warping path, shape (L, 2), from an accumulated-cost matrix.

    Every predecessor that attains the minimum lies on an optimal path. Ties prefer the
    diagonal step, then the step in ``i``, then the step in ``j``.
    """
    n, m = accumulated.shape
    path = np.empty((n + m - 1, 2), dtype=np.int64)
    i = n - 1
    j = m - 1
    length = 0
    path[0, 0] = i
    path[0, 1] = j
    while i > 0 or j > 0:
        if i == 0:
            j -= 1
        elif j == 0:
            i -= 1
        else:
            diagonal = accumulated[i - 1, j - 1]
            up = accumulated[i - 1, j]
            left = accumulated[i, j - 1]
            if diagonal <= up and diagonal <= left:
                i -= 1
                j -= 1
            elif up <= left:
                i -= 1
            else:
                j -= 1
        length += 1
        path[length, 0] = i
        path[length, 1] = j
    return path[: length + 1][::-1].copy()


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def derivative(x) -> np.ndarray:
    """Estimate the derivative of a series with the three-point estimate of derivative DTW.

    For interior points (Keogh and Pazzani 2001)::

        d_i = ((x_i - x_{i-1}) + (x_{i+1} - x_{i-1}) / 2) / 2,   0 < i < n - 1

    The endpoints have no neighbour on one side and copy their neighbour's estimate:
    ``d_0 = d_1`` and ``d_{n-1} = d_{n-2}``.

    Parameters
    ----------
    x : array_like of shape (n,)
        Series sampled at unit spacing (one value per time slot), ``n >= 3``.

    Returns
    -------
    ndarray of float64, shape (n,)
        Derivative estimate in units of x per slot.

    Raises
    ------
    TypeError, ValueError
        If ``x`` is not a finite 1-D numeric series of at least 3 values.
    """
    series = _as_series(x, "x", min_length=3)
    return _derivative(series)


def _derivative(series: np.ndarray) -> np.ndarray:
    estimate = np.empty_like(series)
    estimate[1:-1] = ((series[1:-1] - series[:-2]) + (series[2:] - series[:-2]) / 2.0) / 2.0
    estimate[0] = estimate[1]
    estimate[-1] = estimate[-2]
    return estimate


def warping_penalty(lags, k: float, c: float) -> np.ndarray:
    """Return the wDTW-CD logistic warping penalty ``1 / (1 + exp(k (c - lag)))``.

    ``scipy.special.expit`` evaluates it without overflow for large ``k * c``.

    Parameters
    ----------
    lags : array_like of int or float
        Warping ``|i - j|`` in slots.
    k : float
        Steepness of the logistic curve, per slot, ``> 0``.
    c : float
        Lag in slots at which the penalty is 0.5, ``>= 0``.

    Returns
    -------
    ndarray of float64
        Penalty in (0, 1), the same shape as ``lags``.
    """
    return special.expit(-k * (c - np.asarray(lags, dtype=np.float64)))


def wdtw_cd(x, y, k: float = 1.0, c: float = 10.0) -> Alignment:
    """Align two popularity series with wDTW-CD (DancingLines).

    The local cost is
    ``sqrt(|x_i - y_j| * |x'_i - y'_j|) + 1 / (1 + exp(k (c - |i - j|)))``
    with ``x'`` and ``y'`` from :func:`derivative`. The standard recursion
    ``D(i, j) = cost(i, j) + min(D(i-1, j), D(i, j-1), D(i-1, j-1))`` gives the
    accumulated cost, the distance is ``D(n-1, m-1) / (n + m)`` and the path comes from
    backtracking.

    The penalty is in absolute units while the value-derivative term scales with the
    series. For popularity series that sum to 1 the penalty outweighs the value savings
    a few slots before ``c``, so the largest lead wDTW-CD reports is below ``c`` (about
    ``c - 5`` for ``k = 1``; docs/events.md has measured values). Set ``c`` well above
    the largest lead you expect. Because the penalty at zero lag is
    ``1 / (1 + exp(k c))`` and not 0, identical series have distance
    ``1 / (2 (1 + exp(k c)))``: 2.3e-5 for the defaults.

    Parameters
    ----------
    x, y : array_like of shape (n,) and (m,)
        Popularity series of platforms A and B, one value per time slot, at least 3
        slots each.
    k : float, default 1.0
        Steepness of the warping penalty, per slot (config key ``events.alignment.k``).
    c : float, default 10.0
        Lag in slots at which the penalty reaches 0.5 (config key
        ``events.alignment.c``).

    Returns
    -------
    Alignment
        Distance, warping path, local cost and accumulated cost.

    Raises
    ------
    TypeError, ValueError
        If ``x`` or ``y`` is not a finite 1-D numeric series of at least 3 values.
    equipipe.errors.ConfigError
        If ``k`` is not a finite number > 0 or ``c`` is not a finite number >= 0.
    """
    cost, accumulated = _wdtw_cd_matrices(*_wdtw_cd_inputs(x, y, k, c))
    return _finish(cost, accumulated, "wdtw_cd")


def wdtw_cd_distance(x, y, k: float = 1.0, c: float = 10.0) -> float:
    """Return the wDTW-CD distance of :func:`wdtw_cd` without the path or matrices.

    Only two rows of the accumulated cost are kept, so memory is O(m) instead of
    O(n m). Use it when only the distance is needed, for example for many pairs.

    Parameters and errors are those of :func:`wdtw_cd`.

    Returns
    -------
    float
        ``D(n-1, m-1) / (n + m)``, equal to ``wdtw_cd(x, y, k, c).distance``.
    """
    x, y, dx, dy, penalty_by_offset = _wdtw_cd_inputs(x, y, k, c)
    return float(_wdtw_cd_final_cost(x, y, dx, dy, penalty_by_offset)) / (x.size + y.size)


def _wdtw_cd_inputs(x, y, k, c):
    """Validate wDTW-CD inputs and return (x, y, x', y', penalty by ``n - 1 - i + j``)."""
    x = _as_series(x, "x", min_length=3)
    y = _as_series(y, "y", min_length=3)
    k = _check_positive(k, "k", K_KEY, allow_zero=False)
    c = _check_positive(c, "c", C_KEY, allow_zero=True)

    offsets = np.arange(x.size + y.size - 1) - (x.size - 1)  # j - i for all (i, j)
    penalty_by_offset = warping_penalty(np.abs(offsets), k, c)
    return x, y, _derivative(x), _derivative(y), penalty_by_offset


def dtw(x, y, *, metric: str = "absolute") -> Alignment:
    """Align two series with plain DTW.

    Parameters
    ----------
    x, y : array_like of shape (n,) and (m,)
        Series, at least 2 values each.
    metric : {"absolute", "squared"}, default "absolute"
        Local cost ``|x_i - y_j|`` or ``(x_i - y_j) ** 2``. With ``"squared"``,
        ``sqrt(accumulated[-1, -1])`` equals ``dtaidistance.dtw.distance(x, y)``, which
        sums squared differences and takes the square root at the end.

    Returns
    -------
    Alignment
        Distance ``D(n-1, m-1) / (n + m)``, path and matrices.
    """
    _check_metric(metric)
    x = _as_series(x, "x", min_length=2)
    y = _as_series(y, "y", min_length=2)
    return _dtw(x, y, metric, "dtw")


def ddtw(x, y, *, metric: str = "absolute") -> Alignment:
    """Align two series with derivative DTW: plain DTW on their :func:`derivative`.

    Parameters
    ----------
    x, y : array_like of shape (n,) and (m,)
        Series, at least 3 values each.
    metric : {"absolute", "squared"}, default "absolute"
        Local cost ``|x'_i - y'_j|`` or ``(x'_i - y'_j) ** 2``.

    Returns
    -------
    Alignment
        Distance ``D(n-1, m-1) / (n + m)``, path and matrices.
    """
    _check_metric(metric)
    x = _as_series(x, "x", min_length=3)
    y = _as_series(y, "y", min_length=3)
    return _dtw(_derivative(x), _derivative(y), metric, "ddtw")


def wdtw(x, y, g: float = 0.05, *, w_max: float = 1.0) -> Alignment:
    """Align two series with weighted DTW (Jeong, Jeong and Omitaomu 2011).

    The local cost is the squared difference times a logistic weight of the warping::

        cost(i, j) = w(|i - j|) * (x_i - y_j) ** 2
        w(a) = w_max / (1 + exp(-g (a - M / 2))),   M = max(n, m)

    For equal lengths ``M`` is the series length, as in the original method.

    Parameters
    ----------
    x, y : array_like of shape (n,) and (m,)
        Series, at least 2 values each.
    g : float, default 0.05
        Penalty steepness per slot, ``>= 0`` (config key ``events.alignment.wdtw_g``).
        ``g = 0`` weights every lag by ``w_max / 2``, which is plain squared DTW scaled.
    w_max : float, default 1.0
        Upper bound of the weight, ``> 0``.

    Returns
    -------
    Alignment
        Distance ``D(n-1, m-1) / (n + m)``, path and matrices.
    """
    x = _as_series(x, "x", min_length=2)
    y = _as_series(y, "y", min_length=2)
    g = _check_positive(g, "g", G_KEY, allow_zero=True)
    if not (isinstance(w_max, (int, float, np.number)) and math.isfinite(w_max) and w_max > 0):
        raise ValueError(f"w_max={w_max!r} must be a finite number > 0")

    longest = max(x.size, y.size)
    lag = np.abs(np.arange(x.size)[:, None] - np.arange(y.size)[None, :])  # (n, m)
    weight = w_max * special.expit(g * (lag - longest / 2.0))
    cost = weight * (x[:, None] - y[None, :]) ** 2
    return _finish(cost, _accumulate(cost), "wdtw")


def xcorr_lag(x, y, *, max_lag: int | None = None) -> int:
    """Return the lag of maximum normalised cross-correlation; positive when x leads y.

    With ``xc`` and ``yc`` the mean-centred series, the correlation at lag ``s`` is
    ``sum_t xc[t] * yc[t + s] / sqrt(sum xc**2 * sum yc**2)``. If ``y`` repeats ``x``
    ``s`` slots later (``x`` leads), the maximum is at ``+s``. Among equal maxima the
    smallest ``|s|`` wins.

    Parameters
    ----------
    x, y : array_like of shape (n,) and (m,)
        Series, at least 2 values each, neither constant.
    max_lag : int, optional
        Only lags with ``|s| <= max_lag`` are considered. Default: all overlaps.

    Returns
    -------
    int
        Lag in slots.

    Raises
    ------
    ValueError
        If a series is constant (the correlation is undefined) or ``max_lag < 0``.
    """
    x = _as_series(x, "x", min_length=2)
    y = _as_series(y, "y", min_length=2)
    if max_lag is not None and (
        isinstance(max_lag, bool) or not isinstance(max_lag, (int, np.integer)) or max_lag < 0
    ):
        raise ValueError(f"max_lag={max_lag!r} must be a non-negative integer or None")

    x_centred = x - x.mean()
    y_centred = y - y.mean()
    for name, centred in (("x", x_centred), ("y", y_centred)):
        if not np.any(centred):
            raise ValueError(
                f"{name} is constant, so its cross-correlation is undefined; "
                "check that the event has posts on this platform"
            )
    norm = math.sqrt(float(np.dot(x_centred, x_centred)) * float(np.dot(y_centred, y_centred)))

    # correlate(y, x)[k] = sum_t y[t + lag_k] * x[t] with lag_k from correlation_lags.
    correlation = signal.correlate(y_centred, x_centred, mode="full") / norm
    lags = signal.correlation_lags(y.size, x.size, mode="full")
    if max_lag is not None:
        keep = np.abs(lags) <= max_lag
        correlation = correlation[keep]
        lags = lags[keep]

    best = np.flatnonzero(correlation >= correlation.max() - 1e-12)
    return int(lags[best[np.argmin(np.abs(lags[best]))]])


def _dtw(x: np.ndarray, y: np.ndarray, metric: str, method: str) -> Alignment:
    difference = x[:, None] - y[None, :]  # (n, m)
    cost = np.abs(difference) if metric == "absolute" else difference**2
    return _finish(cost, _accumulate(cost), method)


def _finish(cost: np.ndarray, accumulated: np.ndarray, method: str) -> Alignment:
    n, m = cost.shape
    return Alignment(
        distance=float(accumulated[-1, -1]) / (n + m),
        path=_backtrack(accumulated),
        cost=cost,
        accumulated=accumulated,
        method=method,
    )
