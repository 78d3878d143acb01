"""Trend metrics of two aligned popularity series: similarity, warping degree and lead.

DancingLines (Gao et al., DEXA 2018, arXiv:1712.08550) reads three quantities from the
wDTW-CD warping path: a time-irrelevant similarity of the two trends, a time-warping
degree split by which platform leads, and an overall similarity. This module defines
each one exactly (docs/events.md has the formulas and sign conventions):

- the lag of path step ``k`` is ``j_k - i_k``. It is positive when the slot ``j_k`` of
  platform B matched to slot ``i_k`` of platform A comes later, that is when A leads;
- steps are weighted by the popularity mass ``|x_i| + |y_j|`` of the matched slots, so
  stretches where neither platform mentions the event do not dilute the lead.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from equipipe.events.alignment import Alignment, _as_series, _derivative

logger = logging.getLogger(__name__)

#: Value of ``leader`` when the rounded lead is 0 slots.
NO_LEADER = "neither"


def trend_metrics(x, y, alignment: Alignment, names: tuple[str, str] = ("A", "B")) -> dict:
    """Compute the DancingLines trend metrics from a warping path.

    With path steps ``(i_k, j_k)``, ``k = 1..L``, lag ``l_k = j_k - i_k``, weights
    ``w_k = (|x_i| + |y_j|) / sum(|x_i| + |y_j|)`` (uniform when both series are 0),
    ``N = max(n, m) - 1`` the largest possible lag, and value-derivative cost
    ``v_k = sqrt(|x_i - y_j| * |x'_i - y'_j|)``:

    - ``time_irrelevant_similarity = 1 - (1 / L) * sum_k v_k / s`` with
      ``s = sqrt(range(x, y) * range(x', y'))``, the largest possible ``v_k``; it is 1
      when ``s = 0``. Range [0, 1].
    - ``warping_degree_a_leads = sum_k w_k max(l_k, 0) / N`` and
      ``warping_degree_b_leads = sum_k w_k max(-l_k, 0) / N``; their sum
      ``warping_degree`` is in [0, 1].
    - ``lead = sum_k w_k l_k`` in slots, positive when A leads, and ``lead_slots`` its
      nearest integer; ``leader`` is ``names[0]`` when ``lead_slots > 0``, ``names[1]``
      when it is < 0, else ``"neither"``.
    - ``overall_similarity = time_irrelevant_similarity * (1 - warping_degree)``,
      in [0, 1].

    Parameters
    ----------
    x, y : array_like of shape (n,) and (m,)
        The series that ``alignment`` aligned: platform A and platform B, at least 3
        slots each.
    alignment : Alignment
        Result of :func:`equipipe.events.alignment.wdtw_cd` (or a baseline) on x, y.
    names : tuple of two str, default ("A", "B")
        Platform names of x and y, used for ``leader``.

    Returns
    -------
    dict
        The keys above, plus ``platform_a``, ``platform_b``, ``method``, ``distance``,
        ``path_length`` and ``max_lag``. Values are plain Python numbers and strings.

    Raises
    ------
    TypeError, ValueError
        If a series is invalid, the path does not fit the series, or ``names`` is not
        two distinct non-empty strings.
    """
    x = _as_series(x, "x", min_length=3)
    y = _as_series(y, "y", min_length=3)
    path = _check_path(alignment, x.size, y.size)
    name_a, name_b = _check_names(names)

    i = path[:, 0]
    j = path[:, 1]
    lag = (j - i).astype(np.float64)  # (L,), > 0 where A leads
    max_lag = max(x.size, y.size) - 1

    # Popularity mass of each matched pair, normalised to sum 1.
    mass = np.abs(x[i]) + np.abs(y[j])
    total_mass = mass.sum()
    weight = mass / total_mass if total_mass > 0 else np.full(lag.size, 1.0 / lag.size)

    # Value-derivative cost along the path, scaled into [0, 1] by its largest value.
    dx = _derivative(x)
    dy = _derivative(y)
    value_cost = np.sqrt(np.abs(x[i] - y[j]) * np.abs(dx[i] - dy[j]))
    both = np.concatenate([x, y])
    both_derivatives = np.concatenate([dx, dy])
    scale = math.sqrt(np.ptp(both) * np.ptp(both_derivatives))
    if scale > 0:
        time_irrelevant = 1.0 - float(np.mean(np.minimum(value_cost / scale, 1.0)))
    else:
        time_irrelevant = 1.0

    # Warping degree split by the sign of the lag, and the signed lead.
    a_leads = float(np.dot(weight, np.maximum(lag, 0.0))) / max_lag
    b_leads = float(np.dot(weight, np.maximum(-lag, 0.0))) / max_lag
    warping_degree = a_leads + b_leads
    lead = float(np.dot(weight, lag))
    lead_slots = int(np.rint(lead))
    if lead_slots > 0:
        leader = name_a
    elif lead_slots < 0:
        leader = name_b
    else:
        leader = NO_LEADER

    return {
        "platform_a": name_a,
        "platform_b": name_b,
        "method": alignment.method,
        "distance": float(alignment.distance),
        "path_length": int(path.shape[0]),
        "max_lag": int(max_lag),
        "time_irrelevant_similarity": time_irrelevant,
        "warping_degree": warping_degree,
        "warping_degree_a_leads": a_leads,
        "warping_degree_b_leads": b_leads,
        "lead": lead,
        "lead_slots": lead_slots,
        "leader": leader,
        "overall_similarity": time_irrelevant * (1.0 - warping_degree),
    }


def _check_path(alignment, n: int, m: int) -> np.ndarray:
    """Return the path of ``alignment`` after checking it is a valid warping path of n x m."""
    if not isinstance(alignment, Alignment):
        raise TypeError(
            f"alignment must be an Alignment from equipipe.events.alignment, "
            f"got {type(alignment).__name__}"
        )
    path = np.asarray(alignment.path)
    if path.ndim != 2 or path.shape[1] != 2 or path.shape[0] == 0:
        raise ValueError(f"alignment.path has shape {path.shape}; expected (L, 2) with L >= 1")
    if not np.issubdtype(path.dtype, np.integer):
        raise ValueError(f"alignment.path has dtype {path.dtype}; expected integer indices")
    start = tuple(int(v) for v in path[0])
    end = tuple(int(v) for v in path[-1])
    if start != (0, 0) or end != (n - 1, m - 1):
        raise ValueError(
            f"alignment.path runs from {start} to {end}, but x has {n} and y has {m} "
            f"slots, so it must run from (0, 0) to ({n - 1}, {m - 1}); pass the same "
            "series that were aligned"
        )
    steps = np.diff(path, axis=0)
    if np.any((steps < 0) | (steps > 1)) or np.any(steps.sum(axis=1) == 0):
        raise ValueError(
            "alignment.path is not a warping path: every step must advance i, j or both "
            "by exactly one"
        )
    return path


def _check_names(names) -> tuple[str, str]:
    if (
        not isinstance(names, (tuple, list))
        or len(names) != 2
        or not all(isinstance(name, str) and name for name in names)
        or names[0] == names[1]
    ):
        raise ValueError(
            f"names={names!r} must be two distinct non-empty platform names, "
            "for example ('weibo', 'zhihu')"
        )
    return names[0], names[1]
