"""Draw the DV-LAE map with the selection, the map of test errors and the OOD plot."""

from equipipe.logs import log_to_file

log_to_file(snakemake.log[0])

import logging

import numpy as np
import pandas as pd

from equipipe.fileio import atomic_path
from equipipe.materials.dvlae import nearest_training_distance
from equipipe.materials.plots import plot_error_map, plot_ood, plot_selection_map

logger = logging.getLogger("materials_figures")

map_table = pd.read_csv(snakemake.input.map, dtype={"id": str, "config_type": str})
selected = set(pd.read_csv(snakemake.input.selection, dtype={"id": str})["id"])
predictions = pd.read_csv(snakemake.input.predictions, dtype={"id": str})
train = map_table[map_table["subset"] == "train"]
test = map_table[map_table["subset"] == "test"].merge(predictions, on=["id"], suffixes=("", "_pred"))

plot_selection_map(
    train[["x", "y"]].to_numpy(),
    train["config_type"].to_numpy(),
    train["id"].isin(selected).to_numpy(),
    snakemake.output.selection_map,
    title=f"{len(selected)} of {len(train)} training structures selected",
)
# The OOD score of the plotted model: distance to its own training subset.
vectors = np.load(snakemake.input.vectors, allow_pickle=False)
train_vectors = vectors["train_vectors"][np.isin(vectors["train_ids"], list(selected))]
test_rows = pd.Series(np.arange(len(vectors["test_ids"])), index=vectors["test_ids"])
test["ood_score"] = nearest_training_distance(
    train_vectors, vectors["test_vectors"][test_rows[test["id"]].to_numpy()]
)
errors = test["energy_error_mev_per_atom"].abs().to_numpy()
plot_error_map(train[["x", "y"]].to_numpy(), test[["x", "y"]].to_numpy(), errors, snakemake.output.error_map)
plot_ood(test["ood_score"].to_numpy(), errors, snakemake.output.ood)
with atomic_path(snakemake.output.ood_table) as path:
    test[["id", "config_type", "x", "y", "ood_score", "energy_error_mev_per_atom"]].to_csv(path, index=False)
logger.info("drew maps of %d training and %d test structures", len(train), len(test))
