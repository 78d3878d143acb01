"""Gather the trend metrics of a corpus's events into one table and chart."""

from equipipe.logs import log_to_file

log_to_file(snakemake.log[0])

import json
import logging
from pathlib import Path

import pandas as pd

from equipipe.events.plots import plot_summary
from equipipe.fileio import atomic_path

logger = logging.getLogger("equipipe.events_summary")

rows = []
for metrics_path in snakemake.input.metrics:
    metrics = json.loads(Path(metrics_path).read_text(encoding="utf-8"))
    baselines = metrics.pop("baselines")
    rows.append({**metrics, **baselines})
columns = [
    "event", "platform_a", "platform_b", "leader", "lead_slots", "lead",
    "xcorr_lag", "xcorr_lag_frequency", "time_irrelevant_similarity", "warping_degree",
    "warping_degree_a_leads", "warping_degree_b_leads", "overall_similarity", "distance",
    "dtw_distance", "ddtw_distance", "wdtw_distance", "n_slots", "posts_a", "posts_b",
]
table = pd.DataFrame(rows)[columns]

if "truth" in snakemake.input.keys():
    truth = pd.read_csv(snakemake.input.truth)[["name", "lead"]]
    truth = truth.rename(columns={"name": "event", "lead": "true_lead_slots"})
    table = table.merge(truth, on="event", how="left")

with atomic_path(snakemake.output.table) as temp:
    table.to_csv(temp, index=False)
plot_summary(table, snakemake.output.chart)
logger.info(
    "summary of %d events: %s",
    len(table),
    "; ".join(f"{row.event} led by {row.leader} ({row.lead_slots:+d} slots)"
              for row in table.itertuples()),
)
