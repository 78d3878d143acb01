"""Benchmark TF-SW popularity throughput, in posts per second, on the hot-list corpus.

The corpus is the daily hot-list titles of Weibo and Zhihu: two CSV files,
``weibo.csv`` and ``zhihu.csv``, with columns platform, date, rank, title and url, in
the folder given by ``--data`` (``--help`` prints the default). Six real events of 2020-2022, defined below by keywords and a date
window, are the workload. Each stage of the events pipeline is timed on its own with
the equipipe functions the workflow calls:

- ingest: ``read_corpus`` of both files (all rows);
- select: ``select_event_posts`` (keyword match and date window, over all rows);
- tokenise: ``Tokenizer.tokenize_many`` on the event's posts (jieba);
- word weights: ``compute_word_weights`` per platform (Word2Vec, word graph, TextRank);
- TF-SW counting: ``platform_series`` per platform (slot-word counts, TF-SW and the
  raw-frequency baseline), side by side with a reference built on scikit-learn's
  ``CountVectorizer`` and a sparse slot-by-post matrix. The two must give the same
  popularity series (checked to 1e-12) before their times count;
- end to end: ``event_series`` (word weights and counting for both platforms).

Rates are posts per second: all rows for ingest and select, the event's posts for the
other stages. Counting stages take the best of ``--repeats`` runs. The machine may be
shared, so the load average is printed with the results.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_tfsw.py --output results/bench_tfsw.md
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time
from pathlib import Path

import gensim
import jieba
import numpy as np
import pandas as pd
import sklearn
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer

from equipipe.events.filtering import EventSpec, event_slots, select_event_posts
from equipipe.events.ingest import ColumnMap, read_corpus
from equipipe.events.popularity import event_series, platform_series, tf_sw
from equipipe.events.tokenize import Tokenizer
from equipipe.events.wordgraph import compute_word_weights

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "events" / "hotlists"
PLATFORMS = ("weibo", "zhihu")
TIMEZONE = "Asia/Shanghai"

#: Benchmark workload: real events of the hot-list period, by keywords and window.
EVENTS = (
    EventSpec(
        "chang-e-5",
        ("嫦娥五号", "嫦娥5号"),
        pd.Timestamp("2020-11-24").date(),
        pd.Timestamp("2020-12-20").date(),
    ),
    EventSpec(
        "shenzhou-12",
        ("神舟十二号", "神舟12号"),
        pd.Timestamp("2021-06-10").date(),
        pd.Timestamp("2021-07-10").date(),
    ),
    EventSpec(
        "henan-floods",
        ("河南暴雨", "郑州暴雨", "河南洪", "郑州地铁"),
        pd.Timestamp("2021-07-17").date(),
        pd.Timestamp("2021-08-10").date(),
    ),
    EventSpec(
        "tokyo-olympics",
        ("东京奥运", "奥运会", "奥运"),
        pd.Timestamp("2021-07-15").date(),
        pd.Timestamp("2021-08-15").date(),
    ),
    EventSpec(
        "shenzhou-13",
        ("神舟十三号", "神舟13号"),
        pd.Timestamp("2021-10-10").date(),
        pd.Timestamp("2021-11-15").date(),
    ),
    EventSpec(
        "winter-olympics",
        ("冬奥", "北京冬奥会"),
        pd.Timestamp("2022-01-20").date(),
        pd.Timestamp("2022-02-28").date(),
    ),
)


def parse_arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help="folder with weibo.csv and zhihu.csv (default: %(default)s)",
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed runs of the counting stages (best counts)"
    )
    parser.add_argument("--output", type=Path, help="also write the markdown report to this file")
    return parser.parse_args(argv)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_lines() -> list[str]:
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return [
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores, load average at start {load}",
        f"- {platform.system()} {platform.release()}, Python {platform.python_version()}, "
        f"numpy {np.__version__}, pandas {pd.__version__}, jieba {jieba.__version__}, "
        f"gensim {gensim.__version__}, scikit-learn {sklearn.__version__}",
        f"- OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; Word2Vec runs on "
        "one worker thread (equipipe's reproducible setting)",
    ]


def timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def best_of(function, repeats: int):
    result, best = timed(function)
    for _ in range(repeats - 1):
        result, seconds = timed(function)
        best = min(best, seconds)
    return result, best


def reference_platform_popularity(sentences, slot_of_post, n_slots, word_weights, post_weights):
    """TF-SW popularity from scikit-learn's CountVectorizer and a sparse slot matrix."""
    vocabulary = list(word_weights)
    vectorizer = CountVectorizer(analyzer=lambda tokens: tokens, vocabulary=vocabulary)
    counts_pw = vectorizer.transform(sentences)  # (posts, words), sparse
    slot_matrix = sparse.csr_matrix(
        (post_weights, (slot_of_post, np.arange(len(sentences)))),
        shape=(n_slots, len(sentences)),
    )  # (slots, posts)
    counts_tw = np.asarray((slot_matrix @ counts_pw).todense())  # (slots, words)
    textrank_w = np.array([word_weights[word] for word in vocabulary])
    return tf_sw(counts_tw, textrank_w)["popularity"].to_numpy()


def benchmark_event(event: EventSpec, posts: pd.DataFrame, repeats: int) -> list[dict]:
    rows = []
    selected, seconds = timed(lambda: select_event_posts(posts, event))
    selected = selected[selected["platform"].isin(PLATFORMS)].reset_index(drop=True)
    rows.append({"stage": "select", "posts": len(posts), "seconds": seconds})

    tokenizer = Tokenizer(extra_words=event.keywords)
    tokens, seconds = timed(lambda: tokenizer.tokenize_many(selected["text"]))
    selected["tokens"] = tokens
    rows.append({"stage": "tokenise", "posts": len(selected), "seconds": seconds})

    slots = event_slots(event, selected, "day", TIMEZONE)
    slot_index = slots.get_indexer(pd.DatetimeIndex(selected["slot"]))
    weights_seconds = counting_seconds = reference_seconds = 0.0
    for name in PLATFORMS:
        mask = (selected["platform"] == name).to_numpy()
        sentences = [list(words) for words in selected.loc[mask, "tokens"]]
        post_weights = selected.loc[mask, "weight"].to_numpy(dtype=np.float64)
        word_weights, seconds = timed(lambda: compute_word_weights(sentences, post_weights))
        weights_seconds += seconds

        def ours():
            return platform_series(
                sentences, slot_index[mask], len(slots), word_weights.weights, post_weights
            )

        def reference():
            return reference_platform_popularity(
                sentences, slot_index[mask], len(slots), word_weights.weights, post_weights
            )

        frame, seconds = best_of(ours, repeats)
        counting_seconds += seconds
        expected, seconds = best_of(reference, repeats)
        reference_seconds += seconds
        np.testing.assert_allclose(frame["popularity"].to_numpy(), expected, rtol=0, atol=1e-12)

    rows.append({"stage": "word weights", "posts": len(selected), "seconds": weights_seconds})
    rows.append({"stage": "TF-SW counting", "posts": len(selected), "seconds": counting_seconds})
    rows.append(
        {
            "stage": "TF-SW counting, scikit-learn reference",
            "posts": len(selected),
            "seconds": reference_seconds,
        }
    )
    _, seconds = timed(lambda: event_series(selected, PLATFORMS, slots, event=event.name))
    rows.append({"stage": "end to end (event_series)", "posts": len(selected), "seconds": seconds})
    for row in rows:
        row["event"] = event.name
    return rows


def format_report(rows: list[dict], ingest: dict, command: str, machine: list[str]) -> str:
    table = pd.DataFrame(rows)
    lines = [f"Command: `{command}`", "", *machine, "", "Per event:", ""]
    lines.append("| event | stage | posts | seconds | posts/s |")
    lines.append("|---|---|---:|---:|---:|")
    for row in [ingest, *rows]:
        rate = row["posts"] / row["seconds"] if row["seconds"] > 0 else float("inf")
        lines.append(
            f"| {row.get('event', 'all')} | {row['stage']} | {row['posts']:,} "
            f"| {row['seconds']:.3f} | {rate:,.0f} |"
        )
    totals = table.groupby("stage", sort=False)[["posts", "seconds"]].sum()
    lines += ["", "All six events together:", "", "| stage | posts | seconds | posts/s |"]
    lines.append("|---|---:|---:|---:|")
    for stage, total in totals.iterrows():
        lines.append(
            f"| {stage} | {int(total['posts']):,} | {total['seconds']:.2f} "
            f"| {total['posts'] / total['seconds']:,.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    arguments = parse_arguments(argv)
    files = [arguments.data / f"{name}.csv" for name in PLATFORMS]
    missing = [os.fspath(path) for path in files if not path.is_file()]
    if missing:
        print(
            f"hot-list files not found: {', '.join(missing)}; pass --data with the folder "
            "that holds weibo.csv and zhihu.csv",
            file=sys.stderr,
        )
        return 2
    if arguments.repeats < 1:
        print(f"--repeats={arguments.repeats} must be >= 1", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING)
    machine = machine_lines()

    columns = ColumnMap(time="date", text="title", platform="platform")
    (posts, _), seconds = timed(
        lambda: read_corpus(
            [(path, None) for path in files], columns=columns, timezone=TIMEZONE, slot="day"
        )
    )
    ingest = {"event": "all", "stage": "ingest", "posts": len(posts), "seconds": seconds}
    print(f"ingest: {len(posts)} posts in {seconds:.1f} s", file=sys.stderr)

    rows = []
    for event in EVENTS:
        event_rows = benchmark_event(event, posts, arguments.repeats)
        rows.extend(event_rows)
        print(f"{event.name}: {event_rows[1]['posts']} posts", file=sys.stderr)

    command = f"python benchmarks/bench_tfsw.py --repeats {arguments.repeats}"
    report = format_report(rows, ingest, command, machine)
    print(report)
    if arguments.output is not None:
        arguments.output.parent.mkdir(parents=True, exist_ok=True)
        arguments.output.write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
