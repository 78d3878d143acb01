"""Select one event's posts by keywords and date window, and tokenise them."""

from equipipe.logs import log_to_file

log_to_file(snakemake.log[0])

import logging
import time

import pandas as pd

from equipipe.events.filtering import EventSpec, select_event_posts
from equipipe.events.tokenize import Tokenizer, load_stopwords
from equipipe.fileio import atomic_path

logger = logging.getLogger("equipipe.events_select")
started = time.perf_counter()
settings = snakemake.params.tokenize

event = EventSpec.from_config(snakemake.params.event)
posts = pd.read_parquet(snakemake.input.posts)
selected = select_event_posts(posts, event)
selected = selected[selected["platform"].isin(snakemake.params.platforms)].reset_index(drop=True)

stopwords = None if settings["stopwords"] is None else load_stopwords(settings["stopwords"])
tokenizer = Tokenizer(
    stopwords=stopwords,
    user_dict=settings["user_dict"],
    extra_words=event.keywords if settings["keywords_as_words"] else (),
    min_length=settings["min_length"],
    drop_numbers=settings["drop_numbers"],
)
selected["tokens"] = tokenizer.tokenize_many(selected["text"])
with atomic_path(snakemake.output.posts) as temp:
    selected.to_parquet(temp, index=False)

counts = selected["platform"].value_counts().to_dict()
logger.info(
    "event %s: %d posts (%s), %d tokens, in %.1f s",
    event.name, len(selected),
    ", ".join(f"{name}: {counts.get(name, 0)}" for name in snakemake.params.platforms),
    int(selected["tokens"].map(len).sum()), time.perf_counter() - started,
)
