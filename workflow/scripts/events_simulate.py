"""Generate the simulated two-platform corpus and its table of true leads."""

from equipipe.logs import log_to_file

log_to_file(snakemake.log[0])

import logging
import time

from equipipe.events.simulator import SimulationSettings, simulate_corpus, write_corpus

logger = logging.getLogger("equipipe.events_simulate")
started = time.perf_counter()

settings = SimulationSettings(
    seed=snakemake.params.simulate["seed"],
    start=str(snakemake.params.simulate["start"]),
    days=snakemake.params.simulate["days"],
    background_per_day=snakemake.params.simulate["background_per_day"],
    noise_per_day=snakemake.params.simulate["noise_per_day"],
    platforms=tuple(snakemake.params.platforms),
)
posts, truth = simulate_corpus(settings)
write_corpus(posts, truth, snakemake.output.posts, snakemake.output.truth)
logger.info(
    "wrote %d posts and %d events to %s in %.1f s",
    len(posts), len(truth), snakemake.output.posts, time.perf_counter() - started,
)
