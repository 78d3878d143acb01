"""Compute both platforms' TF-SW popularity series of one event and its TextRank words."""

from equipipe.logs import log_to_file

log_to_file(snakemake.log[0])

import logging
import time

import pandas as pd

from equipipe.events.filtering import EventSpec, event_slots
from equipipe.events.popularity import event_series
from equipipe.events.wordgraph import GraphSettings, Word2VecSettings, load_pretrained
from equipipe.fileio import atomic_path

logger = logging.getLogger("equipipe.events_popularity")
started = time.perf_counter()
corpus = snakemake.params.corpus
graph_config = dict(snakemake.params.wordgraph)
pretrained_path = graph_config.pop("pretrained")

event = EventSpec.from_config(snakemake.params.event)
posts = pd.read_parquet(snakemake.input.posts)
slots = event_slots(event, posts, corpus["slot"], corpus["timezone"])
pretrained = load_pretrained(pretrained_path) if pretrained_path else None

series, words = event_series(
    posts,
    tuple(corpus["platforms"]),
    slots,
    event=event.name,
    word2vec=Word2VecSettings(**snakemake.params.word2vec),
    graph_settings=GraphSettings(**graph_config),
    pretrained=pretrained,
    graph_size_exponent=snakemake.params.popularity["graph_size_exponent"],
)
with atomic_path(snakemake.output.series) as temp:
    series.to_csv(temp, index=False, date_format="%Y-%m-%dT%H:%M:%S%z")
with atomic_path(snakemake.output.words) as temp:
    words.to_csv(temp, index=False)

logger.info(
    "event %s: %d slots, %d graph words, %d posts in %.1f s",
    event.name, len(series), len(words), len(posts), time.perf_counter() - started,
)
