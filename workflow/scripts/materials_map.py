"""Build DV-LAE difference vectors, the 2-D map and out-of-distribution scores."""

from equipipe.logs import log_to_file

log_to_file(snakemake.log[0])

import logging
import time

import numpy as np
import pandas as pd

from equipipe.fileio import atomic_path
from equipipe.materials.descriptors import load_descriptors
from equipipe.materials.pipeline import dvlae_map

logger = logging.getLogger("materials_map")
start = time.perf_counter()

descriptors = load_descriptors(snakemake.input.descriptors)
split = pd.read_csv(snakemake.input.split, dtype={"id": str, "config_type": str})
vectors, table = dvlae_map(
    descriptors,
    split,
    snakemake.params.elements,
    snakemake.params.dvlae,
    snakemake.params.embedding,
)

with atomic_path(snakemake.output.vectors) as path:
    with open(path, "wb") as handle:
        np.savez_compressed(handle, **vectors)
with atomic_path(snakemake.output.map) as path:
    table.to_csv(path, index=False)
logger.info(
    "mapped %d structures with %s in %.1f s",
    len(table),
    snakemake.params.embedding["method"],
    time.perf_counter() - start,
)
