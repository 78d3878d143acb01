"""Select one training subset (DV-LAE, a baseline, or the full training set)."""

from equipipe.logs import log_to_file

log_to_file(snakemake.log[0])

import logging

import pandas as pd

from equipipe.fileio import atomic_path
from equipipe.materials.descriptors import load_descriptors
from equipipe.materials.ingest import read_canonical, write_canonical
from equipipe.materials.pipeline import select_training_subset

logger = logging.getLogger("materials_select")
wildcards = snakemake.wildcards

descriptors = load_descriptors(snakemake.input.descriptors)
map_table = pd.read_csv(snakemake.input.map, dtype={"id": str, "config_type": str})
ids, info = select_training_subset(
    wildcards.method,
    float(wildcards.fraction),
    int(wildcards.seed),
    map_table,
    descriptors,
    snakemake.params.elements,
    k=snakemake.params.k,
    cell_size=snakemake.params.cell_size,
)

chosen = map_table.set_index("id").loc[ids].reset_index()
by_id = {atoms.info["id"]: atoms for atoms in read_canonical(snakemake.input.structures)}
with atomic_path(snakemake.output.selection) as path:
    chosen.to_csv(path, index=False)
write_canonical([by_id[structure_id] for structure_id in ids], snakemake.output.structures)
logger.info("selected %s", ", ".join(f"{key}={value}" for key, value in info.items()))
