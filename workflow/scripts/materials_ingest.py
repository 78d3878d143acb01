"""Read the dataset's structure files into one canonical extxyz and a table."""

from equipipe.logs import log_to_file

log_to_file(snakemake.log[0])

import logging
import time

from equipipe.fileio import atomic_path
from equipipe.materials.ingest import (
    SourceSpec,
    read_sources,
    structure_table,
    write_canonical,
)

logger = logging.getLogger("materials_ingest")
start = time.perf_counter()

sources = [SourceSpec(**spec) for spec in snakemake.params.sources]
structures = read_sources(
    sources, elements=snakemake.params.elements, on_invalid=snakemake.params.on_invalid
)
table = structure_table(structures)

write_canonical(structures, snakemake.output.structures)
with atomic_path(snakemake.output.table) as path:
    table.to_csv(path, index=False)
logger.info(
    "ingested %d structures (%d atoms) from %d files in %.1f s",
    len(structures),
    int(table["n_atoms"].sum()),
    len(sources),
    time.perf_counter() - start,
)
