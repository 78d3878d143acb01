"""Evaluate one trained potential on the held-out test set."""

from equipipe.logs import log_to_file

log_to_file(snakemake.log[0])

import logging

import pandas as pd

from equipipe.fileio import atomic_path, write_json
from equipipe.materials.bpnn import BehlerParrinelloPotential
from equipipe.materials.evaluation import error_metrics, predict
from equipipe.materials.ingest import read_canonical

logger = logging.getLogger("materials_evaluate")
wildcards = snakemake.wildcards

split = pd.read_csv(snakemake.input.split, dtype={"id": str})
test_ids = set(split.loc[split["subset"] == "test", "id"])
test = [atoms for atoms in read_canonical(snakemake.input.structures) if atoms.info["id"] in test_ids]
model = BehlerParrinelloPotential.load(snakemake.input.model)
history = pd.read_csv(snakemake.input.history)

predictions = predict(model, test, device=snakemake.params.device)
metrics = error_metrics(predictions)
metrics.update(
    method=wildcards.method,
    fraction=float(wildcards.fraction),
    seed=int(wildcards.seed),
    seconds_per_epoch=float(history["seconds"].mean()),
    epochs=int(len(history)),
)
with atomic_path(snakemake.output.predictions) as path:
    predictions.to_csv(path, index=False)
write_json(snakemake.output.metrics, metrics)
logger.info(
    "%s fraction=%s seed=%s: energy RMSE %.2f meV/atom, force RMSE %.3f eV/Å on %d test structures",
    wildcards.method,
    wildcards.fraction,
    wildcards.seed,
    metrics["energy_rmse_mev_per_atom"],
    metrics["force_rmse_ev_per_angstrom"],
    len(test),
)
