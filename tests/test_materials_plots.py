"""Tests of the materials figures: they render, validate input and report the statistic."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.image import imread
from scipy.stats import spearmanr

from equipipe.materials import plots
from equipipe.materials.evaluation import learning_curve_table


def read_png(path):
    image = imread(path)
    assert image.ndim == 3
    return image


def learning_rows():
    rows = []
    for method, scale in (("dvlae", 1.0), ("random", 1.3)):
        for fraction in (0.2, 0.5):
            for seed in range(3):
                rows.append({"method": method, "fraction": fraction, "seed": seed,
                             "energy_rmse_mev_per_atom": scale * (5 + seed) / fraction})
    rows += [{"method": "full", "fraction": 1.0, "seed": s, "energy_rmse_mev_per_atom": 4.0 + s} for s in range(3)]
    return rows


def test_learning_curves_written(tmp_path):
    path = tmp_path / "curves.png"
    plots.plot_learning_curves(learning_curve_table(learning_rows()), "energy_rmse_mev_per_atom", path)
    image = read_png(path)
    assert image.shape[1] == int(plots.FIGURE_SIZE[0] * plots.DPI)
    assert image[..., :3].std() > 0.05  # not a blank canvas


def test_learning_curves_reject_unknown_metric(tmp_path):
    with pytest.raises(ValueError, match=r"lacks columns \['force_rmse_ev_per_angstrom_mean'"):
        plots.plot_learning_curves(learning_curve_table(learning_rows()), "force_rmse_ev_per_angstrom", tmp_path / "x.png")


def test_selection_and_error_maps_written(tmp_path):
    rng = np.random.default_rng(0)
    coords = rng.normal(size=(60, 2))
    types = ["bulk"] * 30 + ["surface"] * 20 + ["vacancy"] * 10
    plots.plot_selection_map(coords, types, rng.random(60) < 0.3, tmp_path / "map.png")
    plots.plot_error_map(coords[:40], coords[40:], rng.normal(size=20), tmp_path / "errors.png")
    read_png(tmp_path / "map.png")
    read_png(tmp_path / "errors.png")


def test_selection_map_rejects_length_mismatch(tmp_path):
    with pytest.raises(ValueError, match="selected_mask has 3 entries but the map has 4 points"):
        plots.plot_selection_map(np.zeros((4, 2)), ["a"] * 4, [True] * 3, tmp_path / "map.png")


def test_ood_returns_spearman_of_absolute_error(tmp_path):
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    errors = np.array([-1.0, 2.0, -3.0, 5.0, 4.0])  # |error| ranks 1, 2, 3, 5, 4
    rho = plots.plot_ood(scores, errors, tmp_path / "ood.png")
    # Hand-computed: rank differences 0, 0, 0, 1, 1 -> 1 - 6 * 2 / (5 * 24) = 0.9.
    assert rho == pytest.approx(0.9)
    assert rho == pytest.approx(spearmanr(scores, np.abs(errors)).statistic)
    read_png(tmp_path / "ood.png")


def test_training_history_written(tmp_path):
    history = {
        "best_epoch": 2,
        "epochs": [
            {"epoch": e, "train_loss": 1.0 / e, "validation_loss": 1.2 / e,
             "validation_energy_rmse_mev_per_atom": 10.0 / e, "validation_force_rmse_ev_per_angstrom": 0.5 / e}
            for e in (1, 2, 3)
        ],
    }
    plots.plot_training_history(history, tmp_path / "history.png")
    read_png(tmp_path / "history.png")
    with pytest.raises(ValueError, match="history has no epochs"):
        plots.plot_training_history({"epochs": []}, tmp_path / "empty.png")
