"""Steps of the materials workflow that combine several library functions.

Each function here is one workflow step: it takes loaded arrays and tables, calls
the DV-LAE, embedding and selection functions, and returns what the step writes.
Keeping them here, not in the workflow scripts, makes them testable without
Snakemake.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from ase.data import atomic_numbers

from equipipe.errors import ConfigError
from equipipe.materials import dvlae, embedding, selection
from equipipe.materials.descriptors import DescriptorSet

logger = logging.getLogger(__name__)

SELECTION_METHODS = ("full", "dvlae", "random", "fps", "kmeans")


def subset_descriptors(descriptors: DescriptorSet, positions: np.ndarray) -> DescriptorSet:
    """Return the descriptors of the structures at ``positions``, in that order."""
    counts = np.diff(descriptors.offsets)[positions]
    rows = [np.arange(descriptors.offsets[p], descriptors.offsets[p + 1]) for p in positions]
    rows = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    return DescriptorSet(
        values=descriptors.values[rows],
        species=descriptors.species[rows],
        offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        ids=np.asarray(descriptors.ids)[positions],
        feature_names=list(descriptors.feature_names),
    )


def positions_of(ids: np.ndarray, requested: Sequence[str]) -> np.ndarray:
    """Return the index in ``ids`` of every id in ``requested``, in that order."""
    lookup = {structure_id: position for position, structure_id in enumerate(ids)}
    missing = [structure_id for structure_id in requested if structure_id not in lookup]
    if missing:
        raise ValueError(
            f"{len(missing)} structure ids of the split are missing from the descriptors "
            f"(first: {missing[0]!r}); delete the dataset's results folder and rerun"
        )
    return np.array([lookup[structure_id] for structure_id in requested], dtype=np.int64)


def dvlae_map(
    descriptors: DescriptorSet,
    split: pd.DataFrame,
    elements: Sequence[str],
    dvlae_settings: Mapping[str, Any],
    embedding_settings: Mapping[str, Any],
) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """Build DV-LAE difference vectors, the 2-D map and out-of-distribution scores.

    Bin edges come from the training structures only. Test structures are binned
    with the same edges and compared with the same reference structure. The
    embedding's transform then places them on the training map.

    Parameters
    ----------
    descriptors : DescriptorSet
        Descriptors of every structure of the dataset.
    split : DataFrame
        Columns ``id``, ``subset`` (``train`` or ``test``) and ``config_type``.
    elements : sequence of str
        Chemical symbols of the dataset.
    dvlae_settings : mapping
        ``n_bins``, ``reference`` (index among the training structures) and ``mode``.
    embedding_settings : mapping
        ``method``, ``perplexity`` and ``seed``.

    Returns
    -------
    vectors : dict of ndarray
        ``train_ids``, ``test_ids``, ``train_vectors`` (n_train, L), ``test_vectors``
        (n_test, L).
    table : DataFrame
        One row per structure: ``id``, ``subset``, ``config_type``, ``x``, ``y``,
        ``ood_score`` (distance in difference-vector space to the nearest training
        structure; NaN for training structures).
    """
    train = split[split["subset"] == "train"]
    test = split[split["subset"] == "test"]
    reference = int(dvlae_settings["reference"])
    if reference >= len(train):
        raise ConfigError(
            f"reference={reference} is not a training-structure index "
            f"(the training set has {len(train)} structures)",
            field="materials.dvlae.reference",
            fix=f"set materials.dvlae.reference between 0 and {len(train) - 1}",
        )
    train_set = subset_descriptors(descriptors, positions_of(descriptors.ids, train["id"].tolist()))
    test_set = subset_descriptors(descriptors, positions_of(descriptors.ids, test["id"].tolist()))
    numbers = [atomic_numbers[symbol] for symbol in elements]

    # Histograms on bins fitted to the training set, then difference vectors.
    edges = dvlae.fit_bin_edges(
        train_set.values, train_set.species, numbers, int(dvlae_settings["n_bins"])
    )
    train_counts = dvlae.histogram_counts(
        train_set.values, train_set.species, train_set.offsets, edges
    )
    test_counts = dvlae.histogram_counts(
        test_set.values, test_set.species, test_set.offsets, edges
    )
    mode = dvlae_settings["mode"]
    reference_counts = train_counts[reference]
    train_vectors = dvlae.difference_vectors(train_counts, reference_counts, mode)
    test_vectors = dvlae.difference_vectors(test_counts, reference_counts, mode)
    logger.info(
        "difference vectors (%s mode): %d train and %d test structures, length %d",
        mode, len(train_vectors), len(test_vectors), train_vectors.shape[1],
    )

    # Map the training set, place the test set on it, score test structures.
    train_coords, test_coords = embedding.embed(
        train_vectors.astype(np.float64),
        test_vectors.astype(np.float64) if len(test_vectors) else None,
        method=embedding_settings["method"],
        seed=int(embedding_settings["seed"]),
        perplexity=float(embedding_settings["perplexity"]),
    )
    ood = dvlae.nearest_training_distance(train_vectors, test_vectors) if len(test_vectors) else np.zeros(0)

    table = pd.concat(
        [
            pd.DataFrame(
                {"id": train["id"].to_numpy(), "subset": "train",
                 "config_type": train["config_type"].to_numpy(),
                 "x": train_coords[:, 0], "y": train_coords[:, 1], "ood_score": np.nan}
            ),
            pd.DataFrame(
                {"id": test["id"].to_numpy(), "subset": "test",
                 "config_type": test["config_type"].to_numpy(),
                 "x": test_coords[:, 0] if len(test) else [], "y": test_coords[:, 1] if len(test) else [],
                 "ood_score": ood}
            ),
        ],
        ignore_index=True,
    )
    vectors = {
        "train_ids": train["id"].to_numpy().astype(str),
        "test_ids": test["id"].to_numpy().astype(str),
        "train_vectors": train_vectors,
        "test_vectors": test_vectors,
    }
    return vectors, table


def select_training_subset(
    method: str,
    fraction: float,
    seed: int,
    map_table: pd.DataFrame,
    descriptors: DescriptorSet,
    elements: Sequence[str],
    k: int = 1,
    cell_size: float | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Select the training structures of one job.

    DV-LAE keeps at most ``k`` structures per cell of a square grid on the map, with
    the cell size found by bisection for ``fraction`` unless ``cell_size`` is given.
    The baselines (random, farthest-point sampling and k-means on structure-mean
    descriptors) keep exactly as many structures as DV-LAE does for the same
    fraction and seed, so that methods are compared at the same subset size.
    ``full`` keeps every training structure.

    Returns
    -------
    ids : ndarray of str
        Selected structure ids, in map order.
    info : dict
        ``method``, ``fraction``, ``seed``, ``size``, ``n_train`` and, for DV-LAE,
        ``cell_size`` and ``n_cells_occupied``.
    """
    if method not in SELECTION_METHODS:
        raise ConfigError(
            f"method={method!r} is not one of {', '.join(SELECTION_METHODS)}",
            field="materials.selection.methods",
            fix="list only dvlae, random, fps and kmeans in materials.selection.methods",
        )
    train = map_table[map_table["subset"] == "train"].reset_index(drop=True)
    n_train = len(train)
    info: dict[str, Any] = {"method": method, "fraction": fraction, "seed": seed, "n_train": n_train}
    if method == "full":
        info["size"] = n_train
        return train["id"].to_numpy().astype(str), info

    coords = train[["x", "y"]].to_numpy(dtype=np.float64)
    grid = selection.grid_select(
        coords, k=k, seed=seed,
        cell_size=cell_size, fraction=None if cell_size is not None else fraction,
    )
    size = len(grid.indices)
    if method == "dvlae":
        chosen = np.asarray(grid.indices)
        info.update(cell_size=float(grid.cell_size), n_cells_occupied=int(grid.n_cells_occupied))
    elif method == "random":
        chosen = selection.random_select(n_train, size, seed)
    else:
        train_set = subset_descriptors(descriptors, positions_of(descriptors.ids, train["id"].tolist()))
        numbers = [atomic_numbers[symbol] for symbol in elements]
        features = selection.structure_mean_descriptors(
            train_set.values, train_set.species, train_set.offsets, numbers
        )
        if method == "fps":
            chosen = selection.farthest_point_select(features, size, seed)
        else:
            chosen = selection.kmeans_select(features, size, seed)
    chosen = np.sort(np.asarray(chosen, dtype=np.int64))
    info["size"] = len(chosen)
    return train["id"].to_numpy().astype(str)[chosen], info
