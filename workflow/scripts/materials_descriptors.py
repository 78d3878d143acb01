"""Compute the symmetry-function descriptors of every structure."""

from equipipe.logs import log_to_file

log_to_file(snakemake.log[0])

import logging
import time

from equipipe.materials.descriptors import compute_descriptors, save_descriptors
from equipipe.materials.ingest import read_canonical
from equipipe.materials.settings import symmetry_function_set

logger = logging.getLogger("materials_descriptors")
start = time.perf_counter()

structures = read_canonical(snakemake.input.structures)
functions = symmetry_function_set(snakemake.params.elements, snakemake.params.descriptors)
descriptors = compute_descriptors(functions, structures)
save_descriptors(snakemake.output.descriptors, descriptors)
logger.info(
    "computed %d symmetry functions for %d atoms in %d structures in %.1f s",
    functions.n_features,
    descriptors.values.shape[0],
    len(structures),
    time.perf_counter() - start,
)
