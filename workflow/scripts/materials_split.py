"""Split off the held-out test set once, before any selection or training."""

from equipipe.logs import log_to_file

log_to_file(snakemake.log[0])

import logging

import pandas as pd

from equipipe.fileio import atomic_path
from equipipe.materials.split import split_train_test

logger = logging.getLogger("materials_split")

table = pd.read_csv(snakemake.input.table, dtype={"id": str})
train_ids, test_ids = split_train_test(
    table, test_fraction=snakemake.params.test_fraction, seed=snakemake.params.seed
)
subset = pd.Series("train", index=table["id"])
subset[list(test_ids)] = "test"
split = pd.DataFrame(
    {"id": table["id"], "subset": subset.to_numpy(), "config_type": table["config_type"]}
)
with atomic_path(snakemake.output.split) as path:
    split.to_csv(path, index=False)
logger.info("split %d structures: %d train, %d test", len(split), len(train_ids), len(test_ids))
