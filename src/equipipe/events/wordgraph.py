"""Word weights of one event on one platform: Word2Vec, a word graph and TextRank.

The graph has one node per frequent word of the event's posts. The weight of the edge
between words ``u`` and ``v`` is::

    w(u, v) = a * char_cos(u, v) + b * max(0, sim_own(u, v)) + c * max(0, sim_pre(u, v))

- ``char_cos`` is the cosine similarity of the two words' character-count vectors
  (bag of characters). It is in [0, 1] and links Chinese words that share characters
  (``暴雨`` and ``暴雨灾害``).
- ``sim_own`` is the cosine similarity of the words' vectors in a Word2Vec model
  trained on the event's posts on this platform.
- ``sim_pre`` is the cosine similarity in optional pretrained vectors; the term is
  left out when none are given, and is 0 for a word missing from their vocabulary.

Cosine similarities of word vectors lie in [-1, 1]. A negative value says the words
appear in different contexts, not that one word takes weight from the other, and
PageRank needs non-negative edge weights, so negative similarities are clipped to 0
before they are combined. Pairs whose combined weight is 0 get no edge.

The TextRank weight of a word is its PageRank on this undirected weighted graph
(Mihalcea and Tarau, "TextRank: Bringing Order into Texts", EMNLP 2004), computed by
``networkx.pagerank``; the weights of one graph sum to 1.
"""

from __future__ import annotations

import logging
import os
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np

from equipipe.errors import ConfigError, InputError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Word2VecSettings:
    """Settings of the event's own Word2Vec model (gensim).

    Training runs on one worker thread (``workers=1``) with a fixed seed and a CRC-32
    hash function in place of Python's ``hash``, so the vectors are the same on every
    run and do not depend on ``PYTHONHASHSEED``. The gensim 4.4 docstring of
    ``Word2Vec`` names these two conditions for a deterministic run: one worker thread
    and hashing that does not change between interpreter launches.

    Parameters
    ----------
    vector_size : int, default 50
        Dimension of the word vectors.
    window : int, default 5
        Maximum distance between the current and a predicted word within a post.
    min_count : int, default 1
        Words rarer than this are ignored by the model (they get no own-similarity).
    sg : {0, 1}, default 1
        1 for skip-gram, 0 for CBOW. Skip-gram suits small corpora of short posts.
    negative : int, default 5
        Number of negative samples.
    epochs : int, default 20
        Passes over the posts; more than gensim's 5 because event corpora are small.
    seed : int, default 0
        Seed of the initial vectors and of the sampling.
    """

    vector_size: int = 50
    window: int = 5
    min_count: int = 1
    sg: int = 1
    negative: int = 5
    epochs: int = 20
    seed: int = 0


@dataclass(frozen=True)
class GraphSettings:
    """Settings of the word graph and of TextRank.

    Parameters
    ----------
    min_count : int, default 2
        A word becomes a node when it occurs at least this many times (summed post
        weights) in the event's posts on the platform.
    max_words : int, default 300
        Keep at most this many of the most frequent words (ties broken by the word),
        which bounds the graph at ``max_words * (max_words - 1) / 2`` edges.
    char_weight : float, default 1.0
        Coefficient ``a`` of the character-level cosine similarity.
    own_weight : float, default 1.0
        Coefficient ``b`` of the own Word2Vec similarity.
    pretrained_weight : float, default 1.0
        Coefficient ``c`` of the pretrained-vector similarity, used only when
        pretrained vectors are given.
    damping : float, default 0.85
        PageRank damping factor (networkx ``alpha``).
    max_iter : int, default 200
        Maximum number of PageRank power iterations.
    tol : float, default 1e-10
        PageRank convergence tolerance (networkx ``tol``, per node).
    """

    min_count: int = 2
    max_words: int = 300
    char_weight: float = 1.0
    own_weight: float = 1.0
    pretrained_weight: float = 1.0
    damping: float = 0.85
    max_iter: int = 200
    tol: float = 1e-10

    def __post_init__(self) -> None:
        for name in ("char_weight", "own_weight", "pretrained_weight"):
            if getattr(self, name) < 0:
                raise ConfigError(
                    f"{name}={getattr(self, name)} must be >= 0",
                    field=f"events.wordgraph.{name}",
                    fix="use a non-negative coefficient (0 leaves the term out)",
                )
        if not 0 < self.damping < 1:
            raise ConfigError(
                f"damping={self.damping} must be between 0 and 1 (exclusive)",
                field="events.wordgraph.damping",
                fix="use the usual 0.85",
            )
        if self.min_count < 1 or self.max_words < 1:
            raise ConfigError(
                f"min_count={self.min_count} and max_words={self.max_words} must be >= 1",
                field="events.wordgraph",
                fix="set both to 1 or more",
            )


def _stable_hash(text: str) -> int:
    """Return a hash of ``text`` that is the same in every process (CRC-32)."""
    return zlib.crc32(text.encode("utf-8"))


def train_word2vec(sentences: list[list[str]], settings: Word2VecSettings | None = None):
    """Train a Word2Vec model on tokenised posts and return its word vectors.

    Parameters
    ----------
    sentences : list of list of str
        One token list per post.
    settings : Word2VecSettings, optional
        Model settings; see :class:`Word2VecSettings` for the reproducibility choices.

    Returns
    -------
    gensim.models.KeyedVectors or None
        The vectors, or None when no post has a token that reaches ``min_count``.
    """
    from gensim.models import Word2Vec

    settings = settings or Word2VecSettings()
    sentences = [tokens for tokens in sentences if tokens]
    counts = Counter(token for tokens in sentences for token in tokens)
    if not any(count >= settings.min_count for count in counts.values()):
        logger.warning("no word occurs %d times: no Word2Vec model trained", settings.min_count)
        return None
    model = Word2Vec(
        sentences=sentences,
        vector_size=settings.vector_size,
        window=settings.window,
        min_count=settings.min_count,
        sg=settings.sg,
        negative=settings.negative,
        epochs=settings.epochs,
        seed=settings.seed,
        workers=1,
        hashfxn=_stable_hash,
    )
    logger.info(
        "Word2Vec: %d words, %d dimensions, %d posts, %d epochs",
        len(model.wv), settings.vector_size, len(sentences), settings.epochs,
    )
    return model.wv


def load_pretrained(path: str | os.PathLike, binary: bool | None = None):
    """Load pretrained word vectors in word2vec format (text or binary).

    Parameters
    ----------
    path : str or os.PathLike
        A file that ``gensim.models.KeyedVectors.load_word2vec_format`` reads: a first
        line ``<words> <dimension>`` and one word with its vector per line (text), or
        the binary format of the original word2vec tool.
    binary : bool, optional
        Format; None guesses binary from the suffix ``.bin``.

    Raises
    ------
    InputError
        If the file is missing or gensim cannot read it.
    """
    from gensim.models import KeyedVectors

    path = Path(path)
    if not path.is_file():
        raise InputError(
            "pretrained vectors not found", path=path,
            fix="check events.wordgraph.pretrained in the config, or set it to null",
        )
    if binary is None:
        binary = path.suffix.lower() == ".bin"
    try:
        vectors = KeyedVectors.load_word2vec_format(os.fspath(path), binary=binary)
    except (ValueError, UnicodeDecodeError, EOFError) as error:
        raise InputError(
            f"cannot read word2vec-format vectors ({error})", path=path,
            fix="give a word2vec text file ('<words> <dimension>' header) or a .bin file",
        ) from None
    logger.info("loaded %d pretrained vectors of dimension %d from %s",
                len(vectors), vectors.vector_size, path)
    return vectors


def count_words(sentences: Iterable[list[str]], weights: Iterable[float] | None = None) -> Counter:
    """Return the weighted count of every word over the posts (a post's weight per token)."""
    counts: Counter = Counter()
    if weights is None:
        for tokens in sentences:
            counts.update(tokens)
        return counts
    for tokens, weight in zip(sentences, weights, strict=True):
        for token in tokens:
            counts[token] += weight
    return counts


def select_graph_words(counts: Counter, settings: GraphSettings) -> list[str]:
    """Return the words that become graph nodes, most frequent first."""
    frequent = [(word, count) for word, count in counts.items() if count >= settings.min_count]
    frequent.sort(key=lambda item: (-item[1], item[0]))
    return [word for word, _ in frequent[: settings.max_words]]


def char_cosine_matrix(words: list[str]) -> np.ndarray:
    """Return the cosine similarity of the words' character-count vectors.

    Returns
    -------
    ndarray of shape (n_words, n_words)
        Values in [0, 1]; 1 on the diagonal.
    """
    alphabet: dict[str, int] = {}
    for word in words:
        for char in word:
            alphabet.setdefault(char, len(alphabet))
    counts_wc = np.zeros((len(words), max(len(alphabet), 1)))  # (words, characters)
    for row, word in enumerate(words):
        for char in word:
            counts_wc[row, alphabet[char]] += 1.0
    norms = np.linalg.norm(counts_wc, axis=1, keepdims=True)
    unit_wc = counts_wc / np.where(norms > 0, norms, 1.0)
    return unit_wc @ unit_wc.T


def vector_cosine_matrix(words: list[str], vectors) -> np.ndarray:
    """Return the cosine similarity of the words in ``vectors``; 0 for a missing word.

    Returns
    -------
    ndarray of shape (n_words, n_words)
        Values in [-1, 1].
    """
    n_words = len(words)
    if vectors is None:
        return np.zeros((n_words, n_words))
    unit_wd = np.zeros((n_words, vectors.vector_size))  # (words, dimensions)
    for row, word in enumerate(words):
        if word in vectors.key_to_index:
            vector = np.asarray(vectors[word], dtype=np.float64)
            norm = np.linalg.norm(vector)
            if norm > 0:
                unit_wd[row] = vector / norm
    return unit_wd @ unit_wd.T


def build_word_graph(
    words: list[str],
    own_vectors=None,
    pretrained=None,
    settings: GraphSettings | None = None,
) -> nx.Graph:
    """Build the weighted word graph (formula in the module docstring).

    Parameters
    ----------
    words : list of str
        Graph nodes (see :func:`select_graph_words`).
    own_vectors, pretrained : gensim.models.KeyedVectors, optional
        The event's own Word2Vec vectors and pretrained vectors.
    settings : GraphSettings, optional
        Coefficients of the three similarity terms.

    Returns
    -------
    networkx.Graph
        Undirected graph with every word as a node (isolated when it has no positive
        similarity to another word) and edge attribute ``weight`` > 0.
    """
    settings = settings or GraphSettings()
    weights_ww = settings.char_weight * char_cosine_matrix(words)  # (words, words)
    if settings.own_weight > 0:
        own_ww = vector_cosine_matrix(words, own_vectors)
        weights_ww += settings.own_weight * np.clip(own_ww, 0.0, None)
    if pretrained is not None and settings.pretrained_weight > 0:
        pretrained_ww = vector_cosine_matrix(words, pretrained)
        weights_ww += settings.pretrained_weight * np.clip(pretrained_ww, 0.0, None)

    graph = nx.Graph()
    graph.add_nodes_from(words)
    rows, cols = np.nonzero(np.triu(weights_ww, k=1) > 0)
    graph.add_weighted_edges_from(
        (words[row], words[col], float(weights_ww[row, col])) for row, col in zip(rows, cols)
    )
    return graph


def textrank(graph: nx.Graph, settings: GraphSettings | None = None) -> dict[str, float]:
    """Return the TextRank weight of every node: PageRank on the weighted graph.

    Raises
    ------
    RuntimeError
        If PageRank does not converge within ``settings.max_iter`` iterations.
    """
    settings = settings or GraphSettings()
    if graph.number_of_nodes() == 0:
        return {}
    try:
        return nx.pagerank(
            graph, alpha=settings.damping, weight="weight",
            max_iter=settings.max_iter, tol=settings.tol,
        )
    except nx.PowerIterationFailedConvergence:
        raise RuntimeError(
            f"PageRank did not converge in {settings.max_iter} iterations on a graph of "
            f"{graph.number_of_nodes()} words; raise events.wordgraph.max_iter"
        ) from None


@dataclass
class WordWeights:
    """TextRank weights of one event on one platform, with the graph they came from."""

    weights: dict[str, float]  # word -> TextRank weight, summing to 1
    counts: Counter  # word -> weighted count in the event's posts
    graph: nx.Graph

    def table(self):
        """Return a DataFrame of the graph words: word, count, textrank, rank (1 = top)."""
        import pandas as pd

        rows = [(word, float(self.counts[word]), weight) for word, weight in self.weights.items()]
        table = pd.DataFrame(rows, columns=["word", "count", "textrank"])
        table = table.sort_values(["textrank", "word"], ascending=[False, True])
        table["rank"] = np.arange(1, len(table) + 1)
        return table.reset_index(drop=True)


def compute_word_weights(
    sentences: list[list[str]],
    post_weights: Iterable[float] | None = None,
    *,
    word2vec: Word2VecSettings | None = None,
    graph_settings: GraphSettings | None = None,
    pretrained=None,
) -> WordWeights:
    """Train Word2Vec, build the word graph and return the TextRank weights.

    Parameters
    ----------
    sentences : list of list of str
        Tokens of each post of one event on one platform.
    post_weights : iterable of float, optional
        Weight of each post (1 when None); counts are weighted by it.
    word2vec : Word2VecSettings, optional
        Settings of the own Word2Vec model.
    graph_settings : GraphSettings, optional
        Node selection, edge coefficients and PageRank settings.
    pretrained : gensim.models.KeyedVectors, optional
        Pretrained vectors (see :func:`load_pretrained`).
    """
    graph_settings = graph_settings or GraphSettings()
    counts = count_words(sentences, post_weights)
    words = select_graph_words(counts, graph_settings)
    own_vectors = None
    if words and graph_settings.own_weight > 0:
        own_vectors = train_word2vec(sentences, word2vec)
    graph = build_word_graph(words, own_vectors, pretrained, graph_settings)
    weights = textrank(graph, graph_settings)
    logger.info(
        "word graph: %d words (of %d distinct), %d edges",
        graph.number_of_nodes(), len(counts), graph.number_of_edges(),
    )
    return WordWeights(weights=weights, counts=counts, graph=graph)
