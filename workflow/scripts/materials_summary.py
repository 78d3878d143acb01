"""Gather the metrics of every training job into tables and learning curves."""

from equipipe.logs import log_to_file

log_to_file(snakemake.log[0])

import json
import logging

import pandas as pd

from equipipe.fileio import atomic_path, write_json
from equipipe.materials.evaluation import learning_curve_table
from equipipe.materials.plots import plot_learning_curves

logger = logging.getLogger("materials_summary")

rows = [json.loads(open(path, encoding="utf-8").read()) for path in snakemake.input.metrics]
jobs = pd.DataFrame(rows).sort_values(["method", "fraction", "seed"])
curves = learning_curve_table(jobs)

with atomic_path(snakemake.output.table) as path:
    jobs.to_csv(path, index=False)
write_json(
    snakemake.output.json,
    {"jobs": jobs.to_dict(orient="records"), "learning_curves": curves.to_dict(orient="records")},
)
plot_learning_curves(curves, "energy_rmse_mev_per_atom", snakemake.output.energy)
plot_learning_curves(curves, "force_rmse_ev_per_angstrom", snakemake.output.forces)
logger.info("summarised %d training jobs over %d methods", len(jobs), jobs["method"].nunique())
