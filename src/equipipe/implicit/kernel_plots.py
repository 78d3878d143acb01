"""Figures of the DEQ NNGP kernel: eigenvalues, finite-width error and output normality.

Every function draws one PNG with Matplotlib's Agg backend (no display needed) and
writes it atomically, so a failed plot leaves no partial file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import scipy.stats  # noqa: E402

from equipipe.fileio import atomic_path  # noqa: E402
from equipipe.implicit.nngp import loglog_fit  # noqa: E402

logger = logging.getLogger(__name__)


def _set_value_scale(axes: plt.Axes, values: list[np.ndarray]) -> None:
    # A log axis hides values <= 0 (for example a singular Sigma^(0)), so those get a linear axis.
    if all(np.all(np.asarray(array) > 0) for array in values):
        axes.set_yscale("log")


def _save(figure: plt.Figure, path: str | os.PathLike) -> None:
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=120)
    plt.close(figure)
    logger.info("wrote %s", path)


def plot_eigen_history(
    histories: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: str | os.PathLike,
    title: str = "Smallest eigenvalue along the kernel recursion",
) -> None:
    """Plot the smallest kernel eigenvalue against the recursion step, one line per label.

    Parameters
    ----------
    histories : mapping of str to (iterations, smallest)
        For example ``{"ReLU": kernel_eigen_history(X, ...)}``; both arrays of shape (L,).
    path : str or os.PathLike
        PNG file to write.
    """
    figure, axes = plt.subplots(figsize=(6, 4))
    for label, (iterations, smallest) in histories.items():
        axes.plot(iterations, smallest, marker="o", markersize=3, label=label)
    _set_value_scale(axes, [smallest for _, smallest in histories.values()])
    axes.set_xlabel("recursion step l")
    axes.set_ylabel("smallest eigenvalue of K^(l)")
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    _save(figure, path)


def plot_eigen_vs_sigma_w(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: str | os.PathLike,
    title: str = "Smallest eigenvalue of the fixed-point kernel",
) -> None:
    """Plot the smallest eigenvalue of K* against sigma_w, one line per label.

    Parameters
    ----------
    curves : mapping of str to (sigma_ws, smallest)
        Arrays of shape (n_sigma,), for example from :func:`smallest_eigenvalue_vs_sigma_w`.
    path : str or os.PathLike
        PNG file to write.
    """
    figure, axes = plt.subplots(figsize=(6, 4))
    for label, (sigma_ws, smallest) in curves.items():
        axes.plot(sigma_ws, smallest, marker="o", label=label)
    _set_value_scale(axes, [smallest for _, smallest in curves.values()])
    axes.set_xlabel("sigma_w")
    axes.set_ylabel("smallest eigenvalue of K*")
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    _save(figure, path)


def plot_width_error(
    widths: np.ndarray,
    errors: Mapping[str, np.ndarray],
    path: str | os.PathLike,
    title: str = "Finite-width covariance against the NNGP kernel",
) -> dict[str, float]:
    """Plot relative Frobenius error against width on log-log axes with fitted lines.

    Parameters
    ----------
    widths : ndarray of shape (n_widths,)
    errors : mapping of str to ndarray of shape (n_widths,)
        For example ``{"ReLU": result.errors}``.
    path : str or os.PathLike
        PNG file to write.

    Returns
    -------
    dict of str to float
        Fitted slope per label, also shown in the legend.
    """
    widths = np.asarray(widths, dtype=np.float64)
    slopes = {}
    figure, axes = plt.subplots(figsize=(6, 4))
    for label, values in errors.items():
        slope, intercept = loglog_fit(widths, values)
        slopes[label] = slope
        (line,) = axes.plot(widths, values, marker="o", linestyle="none")
        axes.plot(
            widths,
            np.exp(intercept) * widths**slope,
            color=line.get_color(),
            label=f"{label}: slope {slope:.2f}",
        )
    reference = next(iter(errors.values()))[0] * (widths / widths[0]) ** -0.5
    axes.plot(widths, reference, color="grey", linestyle=":", label="slope -1/2")
    axes.set_xscale("log")
    axes.set_yscale("log")
    # Label the measured widths themselves; the default minor labels overlap.
    axes.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes.set_xticks(widths, [f"{width:g}" for width in widths])
    axes.set_xlabel("width m")
    axes.set_ylabel("relative Frobenius error")
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    _save(figure, path)
    return slopes


def plot_output_qq(
    outputs: np.ndarray,
    variances: np.ndarray,
    path: str | os.PathLike,
    max_inputs: int = 4,
    title: str = "Finite-width DEQ outputs against N(0, K*(x, x))",
) -> None:
    """Draw a normal Q-Q plot of network outputs standardised by the kernel's variance.

    Parameters
    ----------
    outputs : ndarray of shape (n_networks, n)
        f(x_j) of each random network.
    variances : ndarray of shape (n,)
        K*(x_j, x_j), so that standardised outputs should follow N(0, 1).
    path : str or os.PathLike
        PNG file to write.
    max_inputs : int, default 4
        Number of inputs (columns) drawn.
    """
    outputs = np.asarray(outputs, dtype=np.float64)
    standardised = outputs / np.sqrt(np.asarray(variances, dtype=np.float64))
    figure, axes = plt.subplots(figsize=(5, 5))
    for column in range(min(max_inputs, standardised.shape[1])):
        (theoretical, ordered), _ = scipy.stats.probplot(standardised[:, column], dist="norm")
        axes.plot(theoretical, ordered, marker=".", linestyle="none", label=f"input {column}")
    limit = float(np.max(np.abs(axes.get_xlim())))
    axes.plot([-limit, limit], [-limit, limit], color="grey", linestyle="--", label="N(0, 1)")
    axes.set_xlabel("standard normal quantile")
    axes.set_ylabel("f(x) / sqrt(K*(x, x)) quantile")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    axes.legend()
    _save(figure, path)
