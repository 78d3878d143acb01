"""Errors of a trained potential on held-out structures, and learning-curve tables.

Energy errors are per atom in meV/atom, so that structures of different size weigh
the same. Force errors are over all Cartesian force components in eV/Å.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from equipipe.devices import resolve_device
from equipipe.materials import descriptors
from equipipe.materials.bpnn import BehlerParrinelloPotential
from equipipe.materials.training import prepare_structures, structure_id

logger = logging.getLogger(__name__)

PREDICTION_COLUMNS = (
    "id",
    "config_type",
    "n_atoms",
    "energy_ref",
    "energy_pred",
    "energy_error_mev_per_atom",
    "force_rmse_ev_per_angstrom",
    "force_mae_ev_per_angstrom",
)
GROUP_COLUMNS = ("method", "fraction")


def predict(
    model: BehlerParrinelloPotential,
    atoms_list: Sequence[Any],
    symmetry_function_set: descriptors.SymmetryFunctionSet | None = None,
    device: str | torch.device = "cpu",
    batch_size: int = 64,
) -> pd.DataFrame:
    """Predict energies and forces and compare them with the references.

    Parameters
    ----------
    model : BehlerParrinelloPotential
        Trained potential; it carries its own symmetry-function set.
    atoms_list : sequence of ase.Atoms
        Structures with reference energy (eV) and forces (eV/Å), and
        ``info["id"]`` and ``info["config_type"]`` where known.
    symmetry_function_set : descriptors.SymmetryFunctionSet, optional
        When given, it must define the same features as the model's set. This
        guards against evaluating a potential on descriptors it was not trained on.
    device : str or torch.device, default "cpu"
        ``"auto"``, ``"cpu"``, ``"cuda"`` or a torch device.
    batch_size : int, default 64
        Structures per forward pass.

    Returns
    -------
    DataFrame
        One row per structure with columns ``id``, ``config_type``, ``n_atoms``,
        ``energy_ref`` and ``energy_pred`` (eV/atom), ``energy_error_mev_per_atom``
        (prediction minus reference), ``force_rmse_ev_per_angstrom`` and
        ``force_mae_ev_per_angstrom`` (over the structure's force components).
    """
    model_set = model.symmetry_function_set
    if symmetry_function_set is not None and (
        list(symmetry_function_set.feature_names) != list(model_set.feature_names)
        or float(symmetry_function_set.cutoff) != float(model_set.cutoff)
    ):
        raise ValueError(
            "the symmetry functions given differ from the ones the potential was "
            f"trained on ({symmetry_function_set.n_features} features, cutoff "
            f"{symmetry_function_set.cutoff} Å against {model_set.n_features} features, "
            f"cutoff {model_set.cutoff} Å); pass the model's own set or none"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be a positive integer")
    if len(atoms_list) == 0:
        raise ValueError("atoms_list is empty; pass at least one structure to predict")
    if isinstance(device, str):
        device = resolve_device(device)
    dtype = model.energy_offset.dtype
    model = model.to(device).eval()

    # Descriptor gradients are computed one batch at a time to bound memory.
    n_structures = len(atoms_list)
    energy_pred = np.empty(n_structures)
    energy_ref = np.empty(n_structures)
    n_atoms = np.empty(n_structures)
    force_rmse = np.empty(n_structures)
    force_mae = np.empty(n_structures)
    ids = [structure_id(atoms, position) for position, atoms in enumerate(atoms_list)]
    for start in range(0, n_structures, batch_size):
        stop = min(start + batch_size, n_structures)
        data = prepare_structures(atoms_list[start:stop], model_set)
        batch = data.batch(range(len(data)), device, dtype)
        energies, predicted_forces = batch.predict(model)
        energy_pred[start:stop] = energies.cpu().numpy()
        energy_ref[start:stop] = data.energies.numpy()
        n_atoms[start:stop] = data.n_atoms.numpy()

        # Per-structure force errors from the concatenated atoms of the batch.
        error = (predicted_forces - batch.forces).cpu().numpy()  # (n_atoms, 3)
        sizes = data.n_atoms.numpy().astype(int)
        chunks = np.split(error, np.cumsum(sizes)[:-1])
        for index, chunk in enumerate(chunks, start=start):
            force_rmse[index] = np.sqrt(np.mean(chunk**2))
            force_mae[index] = np.mean(np.abs(chunk))

    energy_ref = energy_ref / n_atoms
    energy_pred = energy_pred / n_atoms
    frame = pd.DataFrame(
        {
            "id": ids,
            "config_type": [str(a.info.get("config_type", "")) for a in atoms_list],
            "n_atoms": n_atoms.astype(int),
            "energy_ref": energy_ref,
            "energy_pred": energy_pred,
            "energy_error_mev_per_atom": 1000.0 * (energy_pred - energy_ref),
            "force_rmse_ev_per_angstrom": force_rmse,
            "force_mae_ev_per_angstrom": force_mae,
        },
        columns=list(PREDICTION_COLUMNS),
    )
    logger.info("predicted %d structures (%d atoms)", len(frame), int(n_atoms.sum()))
    return frame


def error_metrics(predictions: pd.DataFrame) -> dict[str, float | int]:
    """Summarise a `predict` table into RMSE and MAE.

    Parameters
    ----------
    predictions : DataFrame
        Output of `predict`.

    Returns
    -------
    dict
        ``energy_rmse_mev_per_atom`` and ``energy_mae_mev_per_atom`` over the
        structures; ``force_rmse_ev_per_angstrom`` and ``force_mae_ev_per_angstrom`` over all
        force components of all structures (so larger structures weigh more);
        ``n_structures`` and ``n_atoms``.
    """
    missing = [c for c in PREDICTION_COLUMNS if c not in predictions.columns]
    if missing:
        raise ValueError(
            f"prediction table lacks columns {missing}; pass the output of predict()"
        )
    if len(predictions) == 0:
        raise ValueError("prediction table is empty; evaluate at least one structure")

    energy_error = predictions["energy_error_mev_per_atom"].to_numpy(dtype=float)
    n_components = 3 * predictions["n_atoms"].to_numpy(dtype=float)
    force_sq_sum = (predictions["force_rmse_ev_per_angstrom"].to_numpy(dtype=float) ** 2 * n_components).sum()
    force_abs_sum = (predictions["force_mae_ev_per_angstrom"].to_numpy(dtype=float) * n_components).sum()
    return {
        "energy_rmse_mev_per_atom": float(np.sqrt(np.mean(energy_error**2))),
        "energy_mae_mev_per_atom": float(np.mean(np.abs(energy_error))),
        "force_rmse_ev_per_angstrom": float(np.sqrt(force_sq_sum / n_components.sum())),
        "force_mae_ev_per_angstrom": float(force_abs_sum / n_components.sum()),
        "n_structures": int(len(predictions)),
        "n_atoms": int(predictions["n_atoms"].sum()),
    }


def learning_curve_table(rows: Iterable[Mapping[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    """Aggregate metrics over seeds for every (method, fraction).

    Parameters
    ----------
    rows : DataFrame or iterable of dict
        One row per training job with ``method``, ``fraction``, usually ``seed``,
        and numeric metric columns (for example the keys of `error_metrics` and
        ``seconds_per_epoch``).

    Returns
    -------
    DataFrame
        One row per (method, fraction), sorted, with ``n_seeds`` and for every
        metric ``<metric>_mean``, ``_std`` (sample standard deviation over seeds,
        NaN for a single seed), ``_min`` and ``_max``.
    """
    frame = pd.DataFrame(rows)
    missing = [c for c in GROUP_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(
            f"metric rows lack columns {missing}; every row needs method and fraction"
        )
    if frame.empty:
        raise ValueError("no metric rows given; run at least one training job")
    excluded = set(GROUP_COLUMNS) | {"seed"}
    metrics = [
        c for c in frame.columns if c not in excluded and pd.api.types.is_numeric_dtype(frame[c])
    ]
    grouped = frame.groupby(list(GROUP_COLUMNS), sort=True)
    table = grouped[metrics].agg(["mean", "std", "min", "max"])
    table.columns = [f"{metric}_{stat}" for metric, stat in table.columns]
    table.insert(0, "n_seeds", grouped.size())
    return table.reset_index()
