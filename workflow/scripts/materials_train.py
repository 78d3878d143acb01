"""Train a Behler-Parrinello potential on one selected training subset."""

from equipipe.logs import log_to_file

log_to_file(snakemake.log[0])

import logging
import time
from pathlib import Path

import pandas as pd

from equipipe.fileio import atomic_path
from equipipe.materials.ingest import read_canonical
from equipipe.materials.settings import symmetry_function_set, training_config
from equipipe.materials.training import train_potential

logger = logging.getLogger("materials_train")
start = time.perf_counter()
wildcards = snakemake.wildcards

structures = read_canonical(snakemake.input.structures)
functions = symmetry_function_set(snakemake.params.elements, snakemake.params.descriptors)
config = training_config(snakemake.params.training, int(wildcards.seed), snakemake.params.device)
model, history = train_potential(
    structures, functions, config, checkpoint_path=snakemake.params.checkpoint, log=logger
)

model.save(snakemake.output.model)
with atomic_path(snakemake.output.history) as path:
    pd.DataFrame(history["epochs"]).to_csv(path, index=False)
# The checkpoint only lets an interrupted job resume. Left behind, it would make
# the re-run after a change of training settings or data fail to load it.
Path(snakemake.params.checkpoint).unlink(missing_ok=True)
logger.info(
    "trained %s fraction=%s seed=%s on %d structures in %.1f s",
    wildcards.method,
    wildcards.fraction,
    wildcards.seed,
    len(structures),
    time.perf_counter() - start,
)
