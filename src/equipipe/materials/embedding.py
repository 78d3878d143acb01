"""2-D maps of DV-LAE difference vectors with openTSNE or PCA.

t-SNE, computed with the openTSNE library, keeps neighbourhoods of the difference
vectors, so clusters of similar structures appear as dense regions of the map. openTSNE
can place new points into an existing embedding (``TSNEEmbedding.transform``), which
puts held-out test structures on the training map without moving the training points. PCA is a linear, faster alternative whose test
coordinates come from the same projection.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from equipipe.errors import ConfigError, InputError
from equipipe.logs import ProgressLogger

logger = logging.getLogger(__name__)

METHODS = ("tsne", "pca")

# t-SNE needs each point to have about 3 * perplexity neighbours, and openTSNE's
# transform of new points needs at least a few training points to attach to.
MIN_TSNE_POINTS = 4


class _TsneProgress:
    """openTSNE callback that logs the iteration and KL divergence, rate-limited.

    openTSNE restarts its iteration count after the early-exaggeration phase, so
    the callback counts its own calls to report one running iteration number.
    """

    def __init__(self, progress: ProgressLogger, every: int) -> None:
        self.progress = progress
        self.every = every
        self.calls = 0

    def __call__(self, iteration: int, error: float, embedding) -> bool:
        self.calls += 1
        self.progress.update(self.calls * self.every, f"KL divergence {error:.4f}")
        return False  # False lets openTSNE continue


def _check_vectors(vectors, name: str) -> np.ndarray:
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or not np.issubdtype(vectors.dtype, np.number):
        raise InputError(
            f"{name} must be a numeric 2-D array of shape (n_structures, L), got "
            f"shape {vectors.shape} and dtype {vectors.dtype}",
            field=name,
            fix="pass the output of dvlae.difference_vectors",
        )
    bad_rows = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
    if bad_rows.size:
        raise InputError(
            f"{name} contains NaN or infinite entries in {bad_rows.size} row(s), "
            f"first at structure {bad_rows[0]}",
            field=name,
        )
    return vectors


def _tsne_perplexity(perplexity: float, n: int) -> float:
    """Lower the perplexity to (n - 1) / 3 when the data set is too small for it."""
    limit = (n - 1) / 3.0
    if perplexity <= limit:
        return perplexity
    logger.warning(
        "perplexity %.3g is too large for %d structures (at most (n - 1) / 3 = %.3g); "
        "using %.3g. Set materials.embedding.perplexity to at most %.3g to silence "
        "this warning",
        perplexity, n, limit, limit, limit,
    )
    return limit


def embed(
    train_vectors: np.ndarray,
    test_vectors: np.ndarray | None = None,
    method: str = "tsne",
    seed: int = 0,
    perplexity: float = 30.0,
    *,
    n_iter: int = 500,
    n_jobs: int = 1,
    negative_gradient_method: str = "auto",
    neighbors: str = "exact",
) -> tuple[np.ndarray, np.ndarray | None]:
    """Embed difference vectors in 2-D, optionally placing test vectors on the same map.

    Parameters
    ----------
    train_vectors : array_like of shape (n_train, L)
        Difference vectors of the training structures.
    test_vectors : array_like of shape (n_test, L), optional
        Difference vectors of test structures, against the same reference and bins.
        They are placed on the training map without changing it.
    method : {"tsne", "pca"}, default "tsne"
        ``materials.embedding.method`` in the config.
    seed : int, default 0
        Random state of openTSNE (initialisation and nearest-neighbour search) or of
        the randomised PCA solver.
    perplexity : float, default 30.0
        t-SNE perplexity, ``materials.embedding.perplexity``. Lowered to
        ``(n_train - 1) / 3`` with a WARNING when the training set is too small.
    n_iter : int, default 500
        t-SNE iterations after the 250 early-exaggeration iterations.
    n_jobs : int, default 1
        Threads used by openTSNE.
    negative_gradient_method : {"auto", "fft", "bh"}, default "auto"
        openTSNE's approximation of the repulsive forces. FFT-accelerated
        interpolation scales linearly with n, and Barnes-Hut is faster for small
        data sets. "auto" lets openTSNE (1.0.4) pick Barnes-Hut below 10,000 points
        and FFT above.
    neighbors : {"exact", "annoy"}, default "exact"
        Nearest-neighbour search for the t-SNE affinities. "exact" is scikit-learn's
        brute-force search, deterministic and O(n_train**2 * L). "annoy" is
        approximate. In one measurement on a shared 2-core machine, with 10,000
        random 0/1 vectors of length 2,400 and 90 neighbours, brute force took 105 s
        and Annoy an estimated 800 s, because Annoy's trees work poorly in
        thousands of dimensions.

    Returns
    -------
    train_coords : ndarray of shape (n_train, 2), float64
    test_coords : ndarray of shape (n_test, 2), float64, or None without test vectors

    Raises
    ------
    ConfigError
        For an unknown method, a perplexity that is not positive or too few
        training structures (t-SNE needs at least 4, PCA at least 2).
    InputError
        For vectors of the wrong shape, with NaN, or with test and training lengths
        that differ.
    """
    if neighbors not in ("exact", "annoy"):
        raise ConfigError(
            f"neighbors must be 'exact' or 'annoy', got {neighbors!r}",
            field="neighbors",
        )
    if method not in METHODS:
        raise ConfigError(
            f"method must be one of {list(METHODS)}, got {method!r}",
            field="materials.embedding.method",
            fix="set materials.embedding.method to tsne or pca",
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(
            f"seed must be a non-negative integer, got {seed!r}",
            field="materials.selection.seeds",
        )
    if not (isinstance(perplexity, (int, float, np.number)) and perplexity > 0):
        raise ConfigError(
            f"perplexity must be a positive number, got {perplexity!r}",
            field="materials.embedding.perplexity",
            fix="set materials.embedding.perplexity to a value such as 30",
        )
    train = _check_vectors(train_vectors, "train_vectors")
    test = None
    if test_vectors is not None:
        test = _check_vectors(test_vectors, "test_vectors")
        if test.shape[1] != train.shape[1]:
            raise InputError(
                f"test_vectors have length {test.shape[1]} but train_vectors have "
                f"length {train.shape[1]}",
                field="test_vectors",
                fix="compute both with the same bins, reference and mode",
            )

    n = train.shape[0]
    minimum = MIN_TSNE_POINTS if method == "tsne" else 2
    if n < minimum:
        raise ConfigError(
            f"embedding with method={method!r} needs at least {minimum} training "
            f"structures, got {n}",
            field="materials.embedding.method",
            fix="add training structures, or lower the held-out fraction",
        )
    if method == "pca" and train.shape[1] < 2:
        raise ConfigError(
            f"PCA to 2 dimensions needs vectors of length >= 2, got length "
            f"{train.shape[1]}",
            field="materials.dvlae.mode",
            fix="use mode occupancy or count, or more symmetry functions",
        )
    if np.all(train == train[0]):
        logger.warning(
            "all %d training difference vectors are identical; the map carries no "
            "information. Check materials.dvlae.n_bins and materials.dvlae.mode",
            n,
        )

    start = time.perf_counter()
    if method == "pca":
        train_coords, test_coords = _embed_pca(train, test, seed)
    else:
        train_coords, test_coords = _embed_tsne(
            train, test, seed, _tsne_perplexity(float(perplexity), n),
            n_iter, n_jobs, negative_gradient_method, neighbors,
        )
    logger.info(
        "%s map of %d training and %d test vectors of length %d in %.1f s",
        method, n, 0 if test is None else test.shape[0], train.shape[1],
        time.perf_counter() - start,
    )
    return train_coords, test_coords


def _embed_pca(train, test, seed):
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, random_state=seed).fit(train)
    logger.info(
        "PCA explained variance ratio of the 2 components: %.3f, %.3f",
        *pca.explained_variance_ratio_,
    )
    train_coords = pca.transform(train).astype(np.float64)
    if test is None:
        return train_coords, None
    if test.shape[0] == 0:
        return train_coords, np.zeros((0, 2))
    return train_coords, pca.transform(test).astype(np.float64)


def _embed_tsne(
    train, test, seed, perplexity, n_iter, n_jobs, negative_gradient_method, neighbors
):
    from openTSNE import TSNE

    every = 50
    progress = ProgressLogger(logger, total=250 + n_iter, what="t-SNE iteration")
    callback = _TsneProgress(progress, every)
    tsne = TSNE(
        n_components=2,
        perplexity=perplexity,
        n_iter=n_iter,
        n_jobs=n_jobs,
        negative_gradient_method=negative_gradient_method,
        neighbors=neighbors,
        knn_kwargs={"algorithm": "brute"} if neighbors == "exact" else None,
        random_state=seed,
        callbacks=callback,
        callbacks_every_iters=every,
    )
    logger.info(
        "t-SNE: %d points, perplexity %.3g, %s nearest neighbours, %s negative "
        "gradient, %d thread(s), seed %d; the neighbour search comes first and logs "
        "nothing until it ends",
        train.shape[0], perplexity, neighbors, negative_gradient_method, n_jobs, seed,
    )
    embedding = tsne.fit(train.astype(np.float64))
    train_coords = np.asarray(embedding, dtype=np.float64)
    if test is None:
        return train_coords, None
    if test.shape[0] == 0:
        return train_coords, np.zeros((0, 2))

    # Test points attach to their training neighbours with openTSNE's default
    # transform settings (perplexity 5 over the 25 nearest training points).
    n_neighbors = min(25, train.shape[0] - 1)
    test_coords = embedding.transform(
        test.astype(np.float64), perplexity=min(5.0, n_neighbors / 3.0), k=n_neighbors
    )
    return train_coords, np.asarray(test_coords, dtype=np.float64)
