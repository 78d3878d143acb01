"""Figures of the events module: aligned popularity curves, cost matrix, event summary.

All figures are PNG files written with matplotlib's Agg backend, atomically, so a
failed plot never leaves a half-written file. Labels may be Chinese: the figures use a
CJK font when one is installed (Noto Sans CJK, Source Han Sans, WenQuanYi, SimHei and
others) and log a warning once when none is.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib import colors, font_manager  # noqa: E402

from equipipe.events.alignment import Alignment, _as_series  # noqa: E402
from equipipe.events.metrics import _check_path  # noqa: E402
from equipipe.fileio import atomic_path  # noqa: E402

logger = logging.getLogger(__name__)

#: Maximum number of alignment lines drawn between the curves. Longer paths are thinned evenly.
MAX_ALIGNMENT_LINES = 120

_CJK_FONTS = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "SimHei",
    "Microsoft YaHei",
    "PingFang SC",
    "Heiti SC",
    "AR PL UMing CN",
)
_SUMMARY_COLUMNS = ("event", "lead_slots", "overall_similarity")
_warned_missing_cjk = False


def plot_alignment(
    x,
    y,
    alignment: Alignment,
    labels: Sequence[str],
    path: str | os.PathLike,
    slot_labels: Sequence[str] | None = None,
) -> None:
    """Plot both popularity curves with grey lines between matched slots.

    Platform B's curve is drawn below platform A's (offset vertically) so the lines
    between matched slots stay readable. Paths longer than ``MAX_ALIGNMENT_LINES``
    steps are thinned to every k-th step, always keeping the first and last step.

    Parameters
    ----------
    x, y : array_like of shape (n,) and (m,)
        Popularity series of platforms A and B (the ones ``alignment`` aligned).
    alignment : Alignment
        Alignment of x and y.
    labels : sequence of two str
        Platform names of x and y, for the legend.
    path : str or os.PathLike
        Output PNG file.
    slot_labels : sequence of str, optional
        Label of each slot (for example its date), at least ``max(n, m)`` entries;
        about eight of them become tick labels. Default: slot indices.

    Raises
    ------
    TypeError, ValueError
        If the series, path, labels or slot labels are invalid.
    """
    x = _as_series(x, "x", min_length=2)
    y = _as_series(y, "y", min_length=2)
    steps = _check_path(alignment, x.size, y.size)
    label_a, label_b = _check_labels(labels)
    _check_slot_labels(slot_labels, max(x.size, y.size))
    _use_cjk_font(label_a, label_b, *(slot_labels or ()))

    # Draw B below A with a gap of a tenth of the combined range.
    span = max(np.ptp(np.concatenate([x, y])), np.finfo(float).tiny)
    offset = (y.max() - x.min()) + 0.1 * span
    y_shifted = y - offset

    stride = max(1, math.ceil(len(steps) / MAX_ALIGNMENT_LINES))
    shown_steps = np.unique(np.r_[np.arange(0, len(steps), stride), len(steps) - 1])

    figure, axes = plt.subplots(figsize=(10, 4.5), layout="constrained")
    for i, j in steps[shown_steps]:
        axes.plot([i, j], [x[i], y_shifted[j]], color="0.7", linewidth=0.6, zorder=1)
    axes.plot(np.arange(x.size), x, color="tab:red", linewidth=1.8, label=label_a, zorder=2)
    axes.plot(
        np.arange(y.size), y_shifted, color="tab:blue", linewidth=1.8, label=label_b, zorder=2
    )
    axes.set_xlabel("time slot")
    axes.set_ylabel(f"popularity ({label_b} shifted down by {offset:.3g})")
    thinned = f", 1 in {stride} of {len(steps)} matches shown" if stride > 1 else ""
    axes.set_title(f"{alignment.method} alignment, distance {alignment.distance:.4g}{thinned}")
    axes.legend(loc="upper right")
    if slot_labels is not None:
        _set_slot_ticks(axes, slot_labels, max(x.size, y.size))
    _save(figure, path)


def plot_cost_matrix(alignment: Alignment, path: str | os.PathLike) -> None:
    """Plot the local cost matrix as an image with the warping path on top.

    Rows are slots of platform A (``i``, vertical axis) and columns are slots of
    platform B (``j``, horizontal axis), so the path runs below the dotted diagonal
    where A leads (``j > i``).

    Parameters
    ----------
    alignment : Alignment
        Alignment whose ``cost`` (shape (n, m)) and ``path`` are drawn.
    path : str or os.PathLike
        Output PNG file.
    """
    cost = np.asarray(alignment.cost, dtype=float)
    if cost.ndim != 2:
        raise ValueError(f"alignment.cost has shape {cost.shape}; expected (n, m)")
    steps = _check_path(alignment, *cost.shape)

    # The wDTW-CD penalty spans orders of magnitude more than the value-derivative
    # term, so a positive cost matrix is shown on a log scale (4 decades at most).
    norm = None
    if cost.min() > 0 and cost.max() > cost.min():
        norm = colors.LogNorm(vmin=max(cost.min(), cost.max() * 1e-4), vmax=cost.max())

    figure, axes = plt.subplots(figsize=(6, 5.2), layout="constrained")
    image = axes.imshow(
        cost, origin="lower", aspect="auto", cmap="viridis", interpolation="nearest", norm=norm
    )
    axes.plot(steps[:, 1], steps[:, 0], color="tab:red", linewidth=1.4, label="warping path")
    limit = min(cost.shape) - 1
    axes.plot([0, limit], [0, limit], color="white", linestyle=":", linewidth=1.0, label="no lag")
    figure.colorbar(image, ax=axes, label="local cost" + (" (log scale)" if norm else ""))
    axes.set_xlabel("slot j of platform B")
    axes.set_ylabel("slot i of platform A")
    axes.set_title(f"{alignment.method} local cost and warping path")
    axes.legend(loc="lower right", fontsize="small", facecolor="0.5", labelcolor="white")
    _save(figure, path)


def plot_summary(table, path: str | os.PathLike) -> None:
    """Plot, for all events, who leads by how many slots and how similar the trends are.

    Left panel: signed lead in slots per event (positive when platform A leads),
    coloured by leader. Right panel: overall similarity and, when present, the
    time-irrelevant similarity.

    Parameters
    ----------
    table : pandas.DataFrame or sequence of dict
        One row per event with columns ``event``, ``lead_slots`` and
        ``overall_similarity``; optional ``time_irrelevant_similarity``,
        ``platform_a`` and ``platform_b`` (the output of
        :func:`equipipe.events.metrics.trend_metrics` plus an ``event`` column), and
        ``true_lead_slots`` (known leads of a simulated corpus, drawn as markers).
    path : str or os.PathLike
        Output PNG file.

    Raises
    ------
    ValueError
        If the table is empty or lacks a required column.
    """
    frame = pd.DataFrame(table)
    missing = [column for column in _SUMMARY_COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(
            f"summary table is missing column(s) {missing}; expected {list(_SUMMARY_COLUMNS)} "
            "(one row of trend_metrics output per event, plus its event name)"
        )
    if frame.empty:
        raise ValueError("summary table has no rows; expected one row per event")

    events = [str(name) for name in frame["event"]]
    platform_a = str(frame["platform_a"].iloc[0]) if "platform_a" in frame else "A"
    platform_b = str(frame["platform_b"].iloc[0]) if "platform_b" in frame else "B"
    _use_cjk_font(platform_a, platform_b, *events)
    lead = frame["lead_slots"].to_numpy(dtype=float)
    positions = np.arange(len(events))

    height = max(3.0, 0.45 * len(events) + 1.5)
    figure, (lead_axes, similarity_axes) = plt.subplots(
        1, 2, figsize=(11, height), sharey=True, layout="constrained"
    )
    colours = np.where(lead > 0, "tab:red", np.where(lead < 0, "tab:blue", "0.6"))
    lead_axes.barh(positions, lead, color=colours)
    for position, value in zip(positions, lead, strict=True):
        lead_axes.annotate(
            f"{value:+.0f}" if value else "0",
            (value, position),
            xytext=(4 if value >= 0 else -4, 0),
            textcoords="offset points",
            ha="left" if value >= 0 else "right",
            va="center",
        )
    if "true_lead_slots" in frame:
        # Known leads of a simulated corpus, to compare with the recovered ones.
        lead_axes.scatter(
            frame["true_lead_slots"].to_numpy(dtype=float),
            positions,
            marker="D",
            color="black",
            zorder=3,
            label="true lead",
        )
        lead_axes.legend(loc="lower right", fontsize="small")
    # Symmetric limits, so that the side of zero (who leads) is read at a glance.
    largest = max(1.0, float(np.max(np.abs(lead))))
    if "true_lead_slots" in frame:
        largest = max(largest, float(np.max(np.abs(frame["true_lead_slots"]))))
    lead_axes.set_xlim(-1.3 * largest, 1.3 * largest)
    lead_axes.axvline(0.0, color="black", linewidth=0.8)
    lead_axes.set_yticks(positions, events)
    lead_axes.invert_yaxis()
    lead_axes.set_xlabel(f"lead in slots (> 0: {platform_a} leads, < 0: {platform_b} leads)")
    lead_axes.set_title("who leads")

    bar_height = 0.4
    similarity_axes.barh(
        positions - bar_height / 2,
        frame["overall_similarity"].to_numpy(dtype=float),
        height=bar_height,
        color="tab:green",
        label="overall",
    )
    if "time_irrelevant_similarity" in frame:
        similarity_axes.barh(
            positions + bar_height / 2,
            frame["time_irrelevant_similarity"].to_numpy(dtype=float),
            height=bar_height,
            color="tab:olive",
            label="time-irrelevant",
        )
    similarity_axes.set_xlim(0.0, 1.0)
    similarity_axes.set_xlabel("similarity (0 to 1)")
    similarity_axes.set_title("trend similarity")
    similarity_axes.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small")
    _save(figure, path)


def _check_labels(labels) -> tuple[str, str]:
    if (
        isinstance(labels, str)
        or len(labels) != 2
        or not all(isinstance(label, str) for label in labels)
    ):
        raise ValueError(f"labels={labels!r} must be two platform names, e.g. ('weibo', 'zhihu')")
    return labels[0], labels[1]


def _check_slot_labels(slot_labels, needed: int) -> None:
    if slot_labels is not None and len(slot_labels) < needed:
        raise ValueError(
            f"slot_labels has {len(slot_labels)} entries; expected at least {needed}, "
            "one per time slot of the longer series"
        )


def _set_slot_ticks(axes, slot_labels, n_slots: int) -> None:
    ticks = np.unique(np.linspace(0, n_slots - 1, num=min(8, n_slots)).round().astype(int))
    axes.set_xticks(ticks, [str(slot_labels[t]) for t in ticks], rotation=30, ha="right")
    axes.set_xlabel("time slot")


def _use_cjk_font(*texts: str) -> None:
    """Put an installed CJK font behind DejaVu Sans when any text is non-ASCII."""
    global _warned_missing_cjk
    if all(text.isascii() for text in texts):
        return
    installed = {font.name for font in font_manager.fontManager.ttflist}
    available = [name for name in _CJK_FONTS if name in installed]
    if available:
        # Matplotlib >= 3.6 falls back through the list glyph by glyph.
        plt.rcParams["font.family"] = ["DejaVu Sans", *available]
    elif not _warned_missing_cjk:
        _warned_missing_cjk = True
        logger.warning(
            "no CJK font found, so Chinese labels in figures render as empty boxes; "
            "install one (for example the Debian package fonts-noto-cjk) and delete "
            "matplotlib's font cache"
        )


def _save(figure, path: str | os.PathLike) -> None:
    try:
        with atomic_path(path) as temp:
            figure.savefig(temp, format="png", dpi=120)
    finally:
        plt.close(figure)
    logger.info("wrote figure %s", os.fspath(path))
