"""Collect the training runs of all widths and variants into tables and figures."""

from equipipe.logs import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821

import json  # noqa: E402
import logging  # noqa: E402

import pandas as pd  # noqa: E402

from equipipe.fileio import atomic_path, write_json  # noqa: E402
from equipipe.implicit import plots  # noqa: E402

logger = logging.getLogger("images_summarize")

metrics, histories = [], {}
for metrics_path, history_path in zip(
    snakemake.input.metrics, snakemake.input.histories, strict=True  # noqa: F821
):
    with open(metrics_path, encoding="utf-8") as handle:
        run = json.load(handle)
    metrics.append(run)
    histories[(run["variant"], run["width"])] = pd.read_csv(history_path)
summary = plots.summarize_runs(metrics)

nngp_accuracy = None
if snakemake.input.get("nngp"):  # noqa: F821
    with open(snakemake.input.nngp, encoding="utf-8") as handle:  # noqa: F821
        nngp_accuracy = json.load(handle)["test_accuracy"]

with atomic_path(snakemake.output.table) as temp:  # noqa: F821
    summary.to_csv(temp, index=False)
write_json(snakemake.output.json, {"runs": metrics, "nngp_test_accuracy": nngp_accuracy})  # noqa: F821
plots.plot_loss_curves(histories, summary, snakemake.output.loss_curves)  # noqa: F821
plots.plot_rate_vs_width(summary, snakemake.output.rate)  # noqa: F821
plots.plot_gram_eigenvalues(summary, snakemake.output.gram)  # noqa: F821
plots.plot_accuracy_vs_width(summary, snakemake.output.accuracy, nngp_accuracy)  # noqa: F821
plots.plot_solver_iterations(histories, snakemake.output.iterations)  # noqa: F821

converged = summary[summary["status"] == "converged"]
logger.info(
    "%d runs (%d converged); widest per variant: %s",
    len(summary), len(converged),
    "; ".join(
        f"{row.variant} m={row.width}: {row.loss_reduction_orders:.2f} orders, "
        f"slope {row.rate_slope:.4g}, R^2 {row.rate_r_squared:.4f}"
        for row in converged.loc[converged.groupby("variant")["width"].idxmax()].itertuples()
    ),
)
