"""Read a corpus's files into one table of posts with time slots."""

from equipipe.logs import log_to_file

log_to_file(snakemake.log[0])

import logging
import time

from equipipe.events.ingest import ColumnMap, check_platforms, read_corpus
from equipipe.fileio import atomic_path, write_json

logger = logging.getLogger("equipipe.events_ingest")
started = time.perf_counter()
corpus = snakemake.params.corpus

posts, reports = read_corpus(
    list(zip(snakemake.input.files, snakemake.params.file_platforms, strict=True)),
    columns=ColumnMap(**corpus["columns"]),
    timezone=corpus["timezone"],
    slot=corpus["slot"],
    time_format=corpus["time_format"],
    on_invalid=corpus["on_invalid"],
    file_format=corpus["format"],
)
check_platforms(posts, corpus["platforms"])
with atomic_path(snakemake.output.posts) as temp:
    posts.to_parquet(temp, index=False)
write_json(snakemake.output.report, {"files": [report.as_dict() for report in reports]})

counts = posts["platform"].value_counts().to_dict()
logger.info(
    "ingested %d posts from %d files (%s) in %.1f s",
    len(posts), len(reports), ", ".join(f"{name}: {n}" for name, n in sorted(counts.items())),
    time.perf_counter() - started,
)
