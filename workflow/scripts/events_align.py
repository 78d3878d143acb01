"""Align one event's two popularity series with wDTW-CD and the baselines; plot them."""

from equipipe.logs import log_to_file

log_to_file(snakemake.log[0])

import logging
import time

import pandas as pd

from equipipe.events.alignment import ddtw, dtw, wdtw, wdtw_cd, xcorr_lag
from equipipe.events.metrics import trend_metrics
from equipipe.events.plots import plot_alignment, plot_cost_matrix
from equipipe.fileio import atomic_path, write_json

logger = logging.getLogger("equipipe.events_align")
started = time.perf_counter()
settings = snakemake.params.alignment
platforms = tuple(snakemake.params.platforms)
corpus, event = snakemake.wildcards.corpus, snakemake.wildcards.event

series = pd.read_csv(snakemake.input.series)
x = series["popularity_a"].to_numpy()
y = series["popularity_b"].to_numpy()

alignment = wdtw_cd(x, y, k=settings["k"], c=settings["c"])
metrics = trend_metrics(x, y, alignment, names=platforms)
metrics.update({
    "corpus": corpus,
    "event": event,
    "n_slots": len(series),
    "posts_a": float(series["posts_a"].sum()),
    "posts_b": float(series["posts_b"].sum()),
    "k": settings["k"],
    "c": settings["c"],
    "baselines": {
        "dtw_distance": dtw(x, y).distance,
        "ddtw_distance": ddtw(x, y).distance,
        "wdtw_distance": wdtw(x, y, g=settings["wdtw_g"]).distance,
        "xcorr_lag": xcorr_lag(x, y),
        "xcorr_lag_frequency": xcorr_lag(series["frequency_a"], series["frequency_b"]),
    },
})

path = pd.DataFrame(alignment.path, columns=["i", "j"])
path["slot_a"] = series["slot_start"].to_numpy()[path["i"]]
path["slot_b"] = series["slot_start"].to_numpy()[path["j"]]
path["lag"] = path["j"] - path["i"]
path["cost"] = alignment.cost[path["i"], path["j"]]
with atomic_path(snakemake.output.path) as temp:
    path.to_csv(temp, index=False)
write_json(snakemake.output.metrics, metrics)

slot_labels = [stamp[:10] for stamp in series["slot_start"]]
plot_alignment(x, y, alignment, platforms, snakemake.output.alignment, slot_labels=slot_labels)
plot_cost_matrix(alignment, snakemake.output.cost_matrix)

logger.info(
    "event %s: leader %s by %d slots, overall similarity %.3f, distance %.4f, in %.1f s",
    event, metrics["leader"], metrics["lead_slots"], metrics["overall_similarity"],
    metrics["distance"], time.perf_counter() - started,
)
