"""TF-SW event popularity per time slot, and the raw-frequency baseline.

TF-SW (term frequency with semantic weight) scores slot ``t`` of one event on one
platform from the words of the event's word graph ``V`` and their TextRank weights
``TR(w)`` (see :mod:`equipipe.events.wordgraph`). With ``n(w, t)`` the count of
graph word ``w`` in the slot's posts (each occurrence counted with its post's
weight)::

    N(t)    = sum over w in V of n(w, t)                  graph words in the slot
    s(t)    = sum over w in V of n(w, t) * TR(w) / N(t)   mean TextRank weight of them
    V(t)    = number of distinct graph words in the slot
    P(t)    = N(t) * s(t) * (V(t) / |V|) ** gamma
    p(t)    = P(t) / sum over the window of P(t')

So ``P(t)`` is the TextRank-weighted word count ``sum n(w, t) * TR(w)``, written as
the slot's count of graph words times their mean weight, and scaled by the fraction
of the event's vocabulary that the slot uses raised to ``gamma``
(``popularity.graph_size_exponent``). ``gamma = 0`` gives plain TextRank-weighted
term frequency; a larger ``gamma`` lowers slots where only a few of the event's words
appear (noise mentions) relative to slots that discuss the event broadly. A slot
without graph words has ``P(t) = 0``. ``p`` sums to 1 over the window.

The baseline ``f(t)`` is the weighted number of the event's posts in slot ``t``,
normalised the same way.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pandas as pd

from equipipe.errors import ConfigError

logger = logging.getLogger(__name__)


def normalise(values, name: str = "series") -> np.ndarray:
    """Return ``values`` divided by their sum, so that they sum to 1.

    Raises
    ------
    ValueError
        If a value is negative or not finite, or the sum is 0.
    """
    values = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError(f"{name} must contain finite non-negative values")
    total = values.sum()
    if total <= 0:
        raise ValueError(f"{name} sums to 0: there is nothing to normalise")
    return values / total


def slot_word_counts(
    sentences: Sequence[list[str]],
    slot_of_post: Sequence[int],
    n_slots: int,
    vocabulary: Sequence[str],
    post_weights: Sequence[float] | None = None,
) -> np.ndarray:
    """Return the weighted count of every vocabulary word in every slot.

    Parameters
    ----------
    sentences : sequence of list of str
        Tokens of each post.
    slot_of_post : sequence of int
        Index of each post's slot in ``range(n_slots)``.
    n_slots : int
        Number of slots in the window.
    vocabulary : sequence of str
        Words to count (the graph words); other tokens are ignored.
    post_weights : sequence of float, optional
        Weight of each post; 1 when None.

    Returns
    -------
    ndarray of shape (n_slots, n_words)
    """
    column = {word: index for index, word in enumerate(vocabulary)}
    counts_tw = np.zeros((n_slots, len(vocabulary)))  # (slots, words)
    weights = np.ones(len(sentences)) if post_weights is None else np.asarray(post_weights)
    for tokens, slot, weight in zip(sentences, slot_of_post, weights, strict=True):
        for word, count in Counter(tokens).items():
            index = column.get(word)
            if index is not None:
                counts_tw[slot, index] += weight * count
    return counts_tw


def tf_sw(
    counts_tw: np.ndarray,
    textrank_w: np.ndarray,
    graph_size_exponent: float = 0.5,
) -> pd.DataFrame:
    """Compute TF-SW popularity from slot-word counts (formula in the module docstring).

    Parameters
    ----------
    counts_tw : ndarray of shape (n_slots, n_words)
        Weighted count ``n(w, t)`` of each graph word in each slot.
    textrank_w : ndarray of shape (n_words,)
        TextRank weight ``TR(w)`` of each graph word.
    graph_size_exponent : float, default 0.5
        ``gamma``: exponent of the fraction of graph words that occur in the slot.

    Returns
    -------
    pandas.DataFrame
        One row per slot with columns ``graph_words`` (``N(t)``), ``mean_weight``
        (``s(t)``, 0 when ``N(t) = 0``), ``distinct_words`` (``V(t)``), ``score``
        (``P(t)``) and ``popularity`` (``p(t)``; all 0 when every ``P(t)`` is 0).

    Raises
    ------
    ConfigError
        If ``graph_size_exponent`` is negative.
    ValueError
        If the shapes do not match or a count or weight is negative.
    """
    if graph_size_exponent < 0:
        raise ConfigError(
            f"graph_size_exponent={graph_size_exponent} must be >= 0",
            field="events.popularity.graph_size_exponent",
            fix="use 0 to turn the vocabulary factor off, or a positive exponent",
        )
    counts_tw = np.asarray(counts_tw, dtype=np.float64)
    textrank_w = np.asarray(textrank_w, dtype=np.float64)
    if counts_tw.ndim != 2 or textrank_w.shape != (counts_tw.shape[1],):
        raise ValueError(
            f"counts of shape {counts_tw.shape} do not match TextRank weights of shape "
            f"{textrank_w.shape}; expected (n_slots, n_words) and (n_words,)"
        )
    if np.any(counts_tw < 0) or np.any(textrank_w < 0):
        raise ValueError("word counts and TextRank weights must be non-negative")

    graph_words_t = counts_tw.sum(axis=1)
    weighted_t = counts_tw @ textrank_w
    mean_weight_t = np.divide(
        weighted_t, graph_words_t, out=np.zeros_like(weighted_t), where=graph_words_t > 0
    )
    distinct_t = (counts_tw > 0).sum(axis=1)
    n_words = max(counts_tw.shape[1], 1)
    score_t = graph_words_t * mean_weight_t * (distinct_t / n_words) ** graph_size_exponent

    total = score_t.sum()
    popularity_t = score_t / total if total > 0 else np.zeros_like(score_t)
    return pd.DataFrame({
        "graph_words": graph_words_t,
        "mean_weight": mean_weight_t,
        "distinct_words": distinct_t,
        "score": score_t,
        "popularity": popularity_t,
    })


def frequency(slot_of_post: Sequence[int], n_slots: int,
              post_weights: Sequence[float] | None = None) -> pd.DataFrame:
    """Count the (weighted) posts per slot: the raw-frequency baseline.

    Returns
    -------
    pandas.DataFrame
        One row per slot with ``posts`` (weighted count) and ``frequency`` (the
        counts divided by their sum; all 0 when there is no post).
    """
    weights = np.ones(len(slot_of_post)) if post_weights is None else np.asarray(post_weights)
    posts_t = np.bincount(np.asarray(slot_of_post, dtype=np.int64), weights=weights,
                          minlength=n_slots).astype(np.float64)
    total = posts_t.sum()
    frequency_t = posts_t / total if total > 0 else np.zeros_like(posts_t)
    return pd.DataFrame({"posts": posts_t, "frequency": frequency_t})


def platform_series(
    sentences: Sequence[list[str]],
    slot_of_post: Sequence[int],
    n_slots: int,
    word_weights: dict[str, float],
    post_weights: Sequence[float] | None = None,
    graph_size_exponent: float = 0.5,
) -> pd.DataFrame:
    """Return TF-SW popularity and the frequency baseline of one platform's posts.

    Returns
    -------
    pandas.DataFrame
        One row per slot with the columns of :func:`tf_sw` and :func:`frequency`.
    """
    vocabulary = list(word_weights)
    counts_tw = slot_word_counts(sentences, slot_of_post, n_slots, vocabulary, post_weights)
    textrank_w = np.array([word_weights[word] for word in vocabulary])
    series = tf_sw(counts_tw, textrank_w, graph_size_exponent)
    baseline = frequency(slot_of_post, n_slots, post_weights)
    return pd.concat([series, baseline], axis=1)


def event_series(
    posts: pd.DataFrame,
    platforms: tuple[str, str],
    slots: pd.DatetimeIndex,
    *,
    event: str = "event",
    word2vec=None,
    graph_settings=None,
    pretrained=None,
    graph_size_exponent: float = 0.5,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Compute both platforms' TF-SW and frequency series of one event.

    Parameters
    ----------
    posts : pandas.DataFrame
        The event's posts with columns ``platform``, ``slot`` (slot start),
        ``tokens`` (list of str) and ``weight``.
    platforms : tuple of two str
        Platform A and platform B.
    slots : pandas.DatetimeIndex
        Every slot start of the event's window, in order.
    event : str, default "event"
        Event name for messages.
    word2vec, graph_settings, pretrained
        Passed to :func:`equipipe.events.wordgraph.compute_word_weights`.
    graph_size_exponent : float, default 0.5
        ``gamma`` of :func:`tf_sw`.

    Returns
    -------
    series : pandas.DataFrame
        One row per slot: ``slot_start``, ``popularity_a``, ``popularity_b``,
        ``frequency_a``, ``frequency_b``, ``posts_a``, ``posts_b``.
    words : pandas.DataFrame
        The graph words of each platform: ``platform``, ``word``, ``count``,
        ``textrank``, ``rank``.

    Raises
    ------
    ConfigError
        If a platform has no post, or no word reaching the graph's ``min_count``,
        in the window.
    """
    from equipipe.events.wordgraph import compute_word_weights

    series = pd.DataFrame({"slot_start": slots})
    tables = []
    slot_index = slots.get_indexer(pd.DatetimeIndex(posts["slot"]))
    if np.any(slot_index < 0):
        raise ValueError("some posts fall outside the slots of the window")
    for suffix, platform in zip(("a", "b"), platforms, strict=True):
        mask = (posts["platform"] == platform).to_numpy()
        if not mask.any():
            raise ConfigError(
                f"event {event!r} has no post on platform {platform!r} in its window",
                field=f"events ({event})",
                fix="widen the event's start and end, add keywords, or check the platform names",
            )
        sentences = [list(tokens) for tokens in posts.loc[mask, "tokens"]]
        weights = posts.loc[mask, "weight"].to_numpy(dtype=np.float64)
        word_weights = compute_word_weights(
            sentences, weights, word2vec=word2vec, graph_settings=graph_settings,
            pretrained=pretrained,
        )
        if not word_weights.weights:
            raise ConfigError(
                f"event {event!r} on platform {platform!r}: no word occurs often enough "
                "to enter the word graph",
                field="events.wordgraph.min_count",
                fix="lower events.wordgraph.min_count or widen the event's window",
            )
        platform_frame = platform_series(
            sentences, slot_index[mask], len(slots), word_weights.weights, weights,
            graph_size_exponent,
        )
        series[f"popularity_{suffix}"] = platform_frame["popularity"].to_numpy()
        series[f"frequency_{suffix}"] = platform_frame["frequency"].to_numpy()
        series[f"posts_{suffix}"] = platform_frame["posts"].to_numpy()
        table = word_weights.table()
        table.insert(0, "platform", platform)
        tables.append(table)
    columns = ["slot_start", "popularity_a", "popularity_b", "frequency_a", "frequency_b",
               "posts_a", "posts_b"]
    return series[columns], pd.concat(tables, ignore_index=True)
