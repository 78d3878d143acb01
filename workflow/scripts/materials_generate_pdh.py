"""Generate the PdH_x dataset of the default run (EMT replaces DFT as the reference)."""

from equipipe.logs import log_to_file

log_to_file(snakemake.log[0])

import logging
import time

from equipipe.materials.ingest import write_canonical
from equipipe.materials.pdh import generate_pdh_dataset

logger = logging.getLogger("materials_generate_pdh")
start = time.perf_counter()
settings = snakemake.params.generate

structures = generate_pdh_dataset(
    n_frames_per_group=settings["frames_per_group"], seed=settings["seed"]
)
write_canonical(structures, snakemake.output.structures)
logger.info(
    "wrote %d PdH_x frames to %s in %.1f s",
    len(structures),
    snakemake.output.structures,
    time.perf_counter() - start,
)
