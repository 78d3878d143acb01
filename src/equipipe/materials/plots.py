"""Figures of the materials module: learning curves, selection and error maps, OOD scores.

Every function writes one PNG atomically and returns nothing, or the statistic it
prints on the figure. Figures are built on `matplotlib.figure.Figure` with the Agg
renderer, without pyplot, so no global backend or figure state is touched and
figures are freed when the function returns.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.stats import spearmanr

from equipipe.fileio import atomic_path

logger = logging.getLogger(__name__)

FIGURE_SIZE = (6.4, 4.6)  # inches; at 150 dpi about 960 x 690 pixels
DPI = 150

# Axis labels with units for the metric columns that evaluation.py writes.
METRIC_LABELS = {
    "energy_rmse_mev_per_atom": "Energy RMSE (meV/atom)",
    "energy_mae_mev_per_atom": "Energy MAE (meV/atom)",
    "force_rmse_ev_per_angstrom": "Force RMSE (eV/Å)",
    "force_mae_ev_per_angstrom": "Force MAE (eV/Å)",
    "seconds_per_epoch": "Training time per epoch (s)",
}


def metric_label(metric: str) -> str:
    """Return the axis label with unit of a metric column name."""
    return METRIC_LABELS.get(metric, metric.replace("_", " "))


def _save(figure: Figure, path: str | os.PathLike, tight: bool = False) -> None:
    # A tight bounding box grows the image to fit a legend placed outside the axes.
    with atomic_path(path) as temp:
        figure.savefig(temp, format="png", dpi=DPI, bbox_inches="tight" if tight else None)
    logger.info("wrote figure %s", path)


def _as_points(coords: Any, name: str) -> np.ndarray:
    points = np.asarray(coords, dtype=float)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"{name} has shape {points.shape}; expected (n_structures, 2) map coordinates")
    return points


def _check_length(name: str, values: Any, expected: int) -> None:
    if len(values) != expected:
        raise ValueError(f"{name} has {len(values)} entries but the map has {expected} points")


def plot_learning_curves(
    table: pd.DataFrame,
    metric: str,
    path: str | os.PathLike,
    reference_method: str = "full",
    title: str | None = None,
) -> None:
    """Plot a metric against the fraction of the training set kept, one line per method.

    Parameters
    ----------
    table : DataFrame
        Output of `evaluation.learning_curve_table`, with ``method``, ``fraction``,
        ``n_seeds`` and ``<metric>_mean``, ``_min`` and ``_max``.
    metric : str
        Metric column stem, for example ``"energy_rmse_mev_per_atom"``.
    path : path
        PNG file to write.
    reference_method : str, default "full"
        Method drawn as a horizontal line (the model trained on the full training
        set); absent from the table means no line.
    title : str, optional
    """
    needed = ["method", "fraction", f"{metric}_mean", f"{metric}_min", f"{metric}_max"]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise ValueError(
            f"learning-curve table lacks columns {missing}; pass the output of "
            "learning_curve_table with a metric it aggregated"
        )

    figure = Figure(figsize=FIGURE_SIZE, layout="constrained")
    axes = figure.add_subplot()
    reference = table[table["method"] == reference_method]
    if not reference.empty:
        row = reference.iloc[0]
        axes.axhline(row[f"{metric}_mean"], color="black", linestyle="--", linewidth=1.2,
                     label=f"{reference_method} (all training data)")
        axes.axhspan(row[f"{metric}_min"], row[f"{metric}_max"], color="black", alpha=0.08, linewidth=0)

    methods = sorted(m for m in table["method"].unique() if m != reference_method)
    for method in methods:
        rows = table[table["method"] == method].sort_values("fraction")
        fraction = rows["fraction"].to_numpy(dtype=float)
        (line,) = axes.plot(fraction, rows[f"{metric}_mean"], marker="o", label=method)
        axes.fill_between(
            fraction, rows[f"{metric}_min"], rows[f"{metric}_max"], color=line.get_color(), alpha=0.2, linewidth=0
        )

    n_seeds = int(table["n_seeds"].max()) if "n_seeds" in table.columns else 1
    spread = f"mean of {n_seeds} seeds, band from min to max" if n_seeds > 1 else "one seed"
    axes.set_xlabel("Fraction of the training set kept")
    axes.set_ylabel(metric_label(metric))
    axes.set_title(title or f"Error on the held-out set ({spread})", fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend()
    _save(figure, path)


def plot_selection_map(
    coords: Any,
    config_types: Sequence[str],
    selected_mask: Any,
    path: str | os.PathLike,
    title: str = "Selected structures on the descriptor map",
    axis_names: tuple[str, str] = ("Map dimension 1", "Map dimension 2"),
) -> None:
    """Plot the 2-D map coloured by config_type, with the selected structures ringed.

    Parameters
    ----------
    coords : array-like of shape (n_structures, 2)
        Map coordinates (for example from openTSNE).
    config_types : sequence of str, length n_structures
    selected_mask : array-like of bool, length n_structures
    path : path
        PNG file to write.
    title : str
    axis_names : tuple of str
        Labels of the two map axes; the map coordinates have no unit.
    """
    points = _as_points(coords, "coords")
    _check_length("config_types", config_types, len(points))
    selected = np.asarray(selected_mask, dtype=bool)
    _check_length("selected_mask", selected, len(points))

    figure = Figure(figsize=FIGURE_SIZE, layout="constrained")
    axes = figure.add_subplot()
    types = np.asarray([str(t) if t is not None and str(t) else "(none)" for t in config_types])
    palette = _categorical_colours(len(np.unique(types)))
    for colour, kind in zip(palette, np.unique(types), strict=True):
        members = types == kind
        axes.scatter(points[members, 0], points[members, 1], s=8, color=colour, alpha=0.6, linewidths=0,
                     label=f"{kind} ({members.sum()})")
    axes.scatter(points[selected, 0], points[selected, 1], s=30, facecolors="none", edgecolors="black",
                 linewidths=0.8, label=f"selected ({selected.sum()} of {len(points)})")
    axes.set_xlabel(axis_names[0])
    axes.set_ylabel(axis_names[1])
    axes.set_title(title, fontsize=10)
    # Outside the axes, because many config types would otherwise cover the map.
    axes.legend(
        fontsize=8, markerscale=1.5, loc="upper left", bbox_to_anchor=(1.01, 1.0),
        ncols=2 if len(palette) > 12 else 1,
    )
    _save(figure, path, tight=True)


def _categorical_colours(count: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"] if count <= 10 else colormaps["tab20"]
    return [cmap(k % cmap.N) for k in range(count)]


def plot_error_map(
    train_coords: Any,
    test_coords: Any,
    test_errors: Any,
    path: str | os.PathLike,
    error_label: str = "|Energy error| (meV/atom)",
    title: str = "Held-out structures on the map, coloured by error",
    axis_names: tuple[str, str] = ("Map dimension 1", "Map dimension 2"),
) -> None:
    """Plot the test structures on the map coloured by their error, over the training set.

    Parameters
    ----------
    train_coords : array-like of shape (n_train, 2)
        Map coordinates of the training structures, drawn in grey.
    test_coords : array-like of shape (n_test, 2)
        Map coordinates of the held-out structures.
    test_errors : array-like of shape (n_test,)
        Error per held-out structure; absolute values are plotted.
    path : path
        PNG file to write.
    error_label : str
        Colour-bar label with unit.
    """
    train_points = _as_points(train_coords, "train_coords")
    test_points = _as_points(test_coords, "test_coords")
    errors = np.abs(np.asarray(test_errors, dtype=float))
    _check_length("test_errors", errors, len(test_points))

    figure = Figure(figsize=FIGURE_SIZE, layout="constrained")
    axes = figure.add_subplot()
    axes.scatter(train_points[:, 0], train_points[:, 1], s=6, color="0.75", linewidths=0,
                 label=f"training ({len(train_points)})")
    # Highest errors drawn last so that they stay visible.
    order = np.argsort(errors)
    cloud = axes.scatter(test_points[order, 0], test_points[order, 1], c=errors[order], s=18, cmap="viridis",
                         edgecolors="black", linewidths=0.3, label=f"held-out ({len(test_points)})")
    figure.colorbar(cloud, ax=axes, label=error_label)
    axes.set_xlabel(axis_names[0])
    axes.set_ylabel(axis_names[1])
    axes.set_title(title, fontsize=10)
    axes.legend(fontsize=8, loc="best")
    _save(figure, path)


def plot_ood(
    scores: Any,
    errors: Any,
    path: str | os.PathLike,
    score_label: str = "Distance to the nearest training structure",
    error_label: str = "|Energy error| (meV/atom)",
    title: str = "Out-of-distribution score against error on the held-out set",
) -> float:
    """Plot an out-of-distribution score against the error of each test structure.

    Parameters
    ----------
    scores : array-like of shape (n_test,)
        Out-of-distribution score (for example the distance in difference-vector
        space to the nearest training structure).
    errors : array-like of shape (n_test,)
        Error per structure; absolute values are plotted and correlated.
    path : path
        PNG file to write.
    score_label, error_label : str
        Axis labels with units.

    Returns
    -------
    float
        Spearman rank correlation between score and absolute error (NaN when
        either is constant), also shown in the legend.
    """
    score_values = np.asarray(scores, dtype=float)
    error_values = np.abs(np.asarray(errors, dtype=float))
    if score_values.shape != error_values.shape or score_values.ndim != 1:
        raise ValueError(
            f"scores has shape {score_values.shape} and errors {error_values.shape}; "
            "expected two 1-D arrays with one value per test structure"
        )
    if len(score_values) < 2:
        raise ValueError(f"{len(score_values)} test structure(s) given; a correlation needs at least 2")
    constant = np.ptp(score_values) == 0 or np.ptp(error_values) == 0
    rho = float("nan") if constant else float(spearmanr(score_values, error_values).statistic)

    figure = Figure(figsize=FIGURE_SIZE, layout="constrained")
    axes = figure.add_subplot()
    axes.scatter(score_values, error_values, s=12, alpha=0.7, linewidths=0,
                 label=f"held-out structures ({len(score_values)}), Spearman ρ = {rho:.2f}")
    axes.set_xlabel(score_label)
    axes.set_ylabel(error_label)
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="best")
    _save(figure, path)
    return rho


def plot_training_history(history: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Plot the loss and the validation errors per epoch of one training run.

    Parameters
    ----------
    history : dict
        The history returned by `training.train_potential`.
    path : path
        PNG file to write.
    """
    epochs = pd.DataFrame(history.get("epochs", []))
    if epochs.empty:
        raise ValueError("history has no epochs; pass the history that train_potential returns")

    figure = Figure(figsize=(FIGURE_SIZE[0], FIGURE_SIZE[1] * 1.3), layout="constrained")
    loss_axes, energy_axes = figure.subplots(2, 1, sharex=True)
    loss_axes.semilogy(epochs["epoch"], epochs["train_loss"], label="training")
    loss_axes.semilogy(epochs["epoch"], epochs["validation_loss"], label="validation")
    best = history.get("best_epoch")
    if best:
        loss_axes.axvline(best, color="black", linestyle=":", linewidth=1, label=f"best epoch ({best})")
    loss_axes.set_ylabel("Loss (weighted MSE)")
    loss_axes.legend(fontsize=8)
    loss_axes.grid(alpha=0.3)

    energy_axes.plot(epochs["epoch"], epochs["validation_energy_rmse_mev_per_atom"], color="tab:blue",
                     label="energy")
    energy_axes.set_ylabel("Validation energy RMSE (meV/atom)", color="tab:blue")
    energy_axes.set_xlabel("Epoch")
    force_axes = energy_axes.twinx()
    force_axes.plot(epochs["epoch"], epochs["validation_force_rmse_ev_per_angstrom"], color="tab:orange",
                    label="force")
    force_axes.set_ylabel("Validation force RMSE (eV/Å)", color="tab:orange")
    energy_axes.grid(alpha=0.3)
    _save(figure, path)
