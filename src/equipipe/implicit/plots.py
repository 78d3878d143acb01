"""Figures of the implicit-network training runs: loss curves, rates, Gram eigenvalues, accuracy.

Every function takes the per-run histories and the summary table that
:func:`summarize_runs` builds, draws with matplotlib's Agg backend and writes one PNG.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from equipipe.fileio import atomic_path  # noqa: E402

logger = logging.getLogger(__name__)

SUMMARY_COLUMNS = (
    "variant", "width", "width_factor", "status", "failed_step", "loss_initial", "loss_final",
    "loss_reduction_orders", "rate_slope", "rate_intercept", "rate_r_squared",
    "rate_fit_first_step", "gram_min_eigenvalue_initial",
    "gram_min_eigenvalue_final", "rate_bound_initial_gram", "spectral_norm_initial",
    "spectral_norm_final", "train_accuracy", "test_accuracy", "forward_iterations_mean",
    "backward_iterations_mean", "seconds_per_step", "train_seconds",
)


def summarize_runs(metrics: list[Mapping]) -> pd.DataFrame:
    """Return one row per training run with the columns of ``SUMMARY_COLUMNS``.

    Runs that stopped because the equilibrium became ill posed keep NaN in the columns
    they did not reach. Rows are sorted by variant, then width.
    """
    rows = [{column: run.get(column, np.nan) for column in SUMMARY_COLUMNS} for run in metrics]
    table = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    return table.sort_values(["variant", "width"]).reset_index(drop=True)


def _save(figure: plt.Figure, path: str | os.PathLike) -> None:
    with atomic_path(path) as temp:
        figure.savefig(temp, format="png", dpi=120, bbox_inches="tight")
    plt.close(figure)


def _variants(summary: pd.DataFrame) -> list[str]:
    return sorted(summary["variant"].unique())


def plot_loss_curves(
    histories: Mapping[tuple[str, int], pd.DataFrame],
    summary: pd.DataFrame,
    path: str | os.PathLike,
) -> None:
    """Draw training loss against step on a log scale, one panel per variant.

    Each width gets one line; a dashed line shows the linear-rate fit over the second
    half, with its slope and R^2 in the legend. A run stopped as ill posed ends with a
    cross at its last step.

    Parameters
    ----------
    histories : mapping of (variant, width) to DataFrame
        Columns ``step`` and ``loss``.
    summary : DataFrame
        Output of :func:`summarize_runs`.
    path : str or os.PathLike
    """
    variants = _variants(summary)
    figure, axes = plt.subplots(1, len(variants), figsize=(6 * len(variants), 4.2), squeeze=False)
    colors = plt.get_cmap("viridis")
    widths = sorted(summary["width"].unique())
    for axis, variant in zip(axes[0], variants, strict=True):
        for index, width in enumerate(widths):
            history = histories.get((variant, width))
            if history is None or history.empty:
                continue
            row = summary[(summary["variant"] == variant) & (summary["width"] == width)].iloc[0]
            color = colors(index / max(1, len(widths) - 1))
            axis.semilogy(history["step"], history["loss"], color=color, label=f"m = {width}")
            if row["status"] == "converged":
                steps = np.arange(int(row["rate_fit_first_step"]), len(history))
                fitted = np.exp(row["rate_intercept"] + row["rate_slope"] * steps)
                axis.semilogy(
                    steps, fitted, "--", color="black", linewidth=0.8,
                    label=f"fit: slope {row['rate_slope']:.3g}/step, R$^2$ {row['rate_r_squared']:.3f}",
                )
            else:
                axis.semilogy(history["step"].iloc[-1:], history["loss"].iloc[-1:], "x",
                              color=color, markersize=9, label=f"m = {width}: ill posed")
        axis.set_title(f"variant: {variant}")
        axis.set_xlabel("gradient-descent step")
        axis.set_ylabel("training loss 0.5 ||f - Y||$^2$ / N")
        axis.legend(fontsize=7)
    _save(figure, path)


def plot_rate_vs_width(summary: pd.DataFrame, path: str | os.PathLike) -> None:
    """Draw the fitted log-loss slope per step against width, one line per variant."""
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for variant in _variants(summary):
        rows = summary[(summary["variant"] == variant) & (summary["status"] == "converged")]
        axes[0].plot(rows["width"], -rows["rate_slope"], "o-", label=variant)
        axes[1].plot(rows["width"], rows["rate_r_squared"], "o-", label=variant)
    axes[0].set_ylabel("linear rate: -d log(loss) / d step")
    axes[1].set_ylabel("R$^2$ of the line fit (second half)")
    axes[1].axhline(0.95, color="grey", linestyle=":", label="R$^2$ = 0.95")
    for axis in axes:
        axis.set_xscale("log")
        axis.set_xlabel("width m")
        axis.legend()
    _save(figure, path)


def plot_gram_eigenvalues(summary: pd.DataFrame, path: str | os.PathLike) -> None:
    """Draw the smallest Gram eigenvalue at initialisation and at the end against width."""
    figure, axis = plt.subplots(figsize=(6, 4))
    for variant in _variants(summary):
        rows = summary[summary["variant"] == variant]
        axis.plot(rows["width"], rows["gram_min_eigenvalue_initial"], "o--",
                  label=f"{variant}: initialisation")
        axis.plot(rows["width"], rows["gram_min_eigenvalue_final"], "s-", label=f"{variant}: end")
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("width m")
    axis.set_ylabel("smallest eigenvalue of H = J$_A$ J$_A^T$")
    axis.legend(fontsize=8)
    _save(figure, path)


def plot_accuracy_vs_width(
    summary: pd.DataFrame, path: str | os.PathLike, nngp_accuracy: float | None = None
) -> None:
    """Draw test accuracy against width per variant, with the NNGP accuracy as a line."""
    figure, axis = plt.subplots(figsize=(6, 4))
    for variant in _variants(summary):
        rows = summary[(summary["variant"] == variant) & (summary["status"] == "converged")]
        axis.plot(rows["width"], rows["test_accuracy"], "o-", label=variant)
    if nngp_accuracy is not None:
        axis.axhline(nngp_accuracy, color="black", linestyle="--",
                     label=f"NNGP kernel regression ({nngp_accuracy:.3f})")
    axis.set_xscale("log")
    axis.set_xlabel("width m")
    axis.set_ylabel("test accuracy")
    axis.legend(fontsize=8)
    _save(figure, path)


def plot_solver_iterations(
    histories: Mapping[tuple[str, int], pd.DataFrame], path: str | os.PathLike
) -> None:
    """Draw forward and adjoint solver iterations per step, one panel per variant."""
    variants = sorted({variant for variant, _ in histories})
    figure, axes = plt.subplots(1, len(variants), figsize=(6 * len(variants), 4), squeeze=False)
    for axis, variant in zip(axes[0], variants, strict=True):
        for (run_variant, width), history in sorted(histories.items()):
            if run_variant != variant or history.empty:
                continue
            line = axis.plot(history["step"], history["forward_iterations"], label=f"m = {width} forward")
            axis.plot(history["step"].iloc[:-1], history["backward_iterations"].iloc[:-1], ":",
                      color=line[0].get_color(), label=f"m = {width} adjoint")
        axis.set_title(f"variant: {variant}")
        axis.set_xlabel("gradient-descent step")
        axis.set_ylabel("Anderson iterations to tolerance")
        axis.legend(fontsize=7, ncol=2)
    _save(figure, path)
