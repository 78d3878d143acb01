"""Grid selection on the DV-LAE map, the baselines, and the 2-D embedding."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from equipipe.errors import ConfigError, InputError
from equipipe.materials.embedding import embed
from equipipe.materials.selection import (
    baseline_select,
    farthest_point_select,
    grid_select,
    kmeans_select,
    random_select,
    structure_mean_descriptors,
)

# Hand-made map. With cell size 1 and the grid starting at (0, 0):
#   cell (0, 0): structures 0, 1, 2
#   cell (1, 0): structure 3
#   cell (2, 2): structures 4, 5
#   cell (0, 1): structure 6
MAP = np.array(
    [
        [0.0, 0.0],
        [0.5, 0.5],
        [0.9, 0.1],
        [1.5, 0.2],
        [2.5, 2.5],
        [2.6, 2.7],
        [0.2, 1.7],
    ]
)
CELLS = [{0, 1, 2}, {3}, {4, 5}, {6}]


@pytest.mark.parametrize("k", [1, 2, 3])
def test_grid_select_hand_map(k):
    result = grid_select(MAP, k=k, seed=0, cell_size=1.0)
    selected = set(result.indices.tolist())
    assert result.n_cells_occupied == 4
    assert result.cell_size == 1.0
    assert result.indices.tolist() == sorted(selected)
    for cell in CELLS:
        assert len(cell & selected) == min(k, len(cell))
    assert len(selected) == {1: 4, 2: 6, 3: 7}[k]


def test_grid_select_seed_draw():
    # The draw within a cell depends on the seed and nothing else.
    draws = {tuple(grid_select(MAP, k=1, seed=s, cell_size=1.0).indices) for s in range(20)}
    assert len(draws) > 1
    first = grid_select(MAP, k=1, seed=7, cell_size=1.0).indices
    again = grid_select(MAP, k=1, seed=7, cell_size=1.0).indices
    np.testing.assert_array_equal(first, again)


def test_grid_select_large_cell_keeps_k():
    result = grid_select(MAP, k=2, seed=0, cell_size=10.0)
    assert result.n_cells_occupied == 1
    assert result.indices.size == 2


def test_grid_select_fraction_line():
    # Ten points at x = 0, 1, ..., 9: cell size c keeps floor(9 / c) + 1 points, so
    # 5 points (fraction 0.5) need c in (1.8, 2.25].
    coords = np.stack([np.arange(10.0), np.zeros(10)], axis=1)
    result = grid_select(coords, k=1, seed=0, fraction=0.5)
    assert result.indices.size == 5
    assert result.target_size == 5
    assert 1.8 < result.cell_size <= 2.25


def test_grid_select_fraction_hand_map():
    result = grid_select(MAP, k=1, seed=0, fraction=4 / 7)
    assert result.indices.size == 4
    assert result.target_size == 4


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.44, 0.7, 1.0])
def test_grid_select_fraction_random_map(fraction):
    coords = np.random.default_rng(5).normal(size=(400, 2))
    result = grid_select(coords, k=1, seed=0, fraction=fraction, tolerance=2)
    assert abs(result.indices.size - round(fraction * 400)) <= 2


def test_grid_select_unreachable_fraction(caplog):
    # Three structures share one position, so at k=1 at most 2 of the 4 are kept.
    coords = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    with caplog.at_level(logging.WARNING):
        result = grid_select(coords, k=1, seed=0, fraction=1.0)
    assert result.indices.size == 2
    assert result.target_size == 4
    assert "kept 2 structures, not the target 4" in caplog.text


def test_grid_select_identical_positions(caplog):
    coords = np.ones((5, 2))
    with caplog.at_level(logging.WARNING):
        result = grid_select(coords, k=2, seed=0, fraction=0.4)
    assert result.indices.size == 2
    assert "all 5 structures sit at the same map position" in caplog.text


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"k": 0, "cell_size": 1.0}, ConfigError, r"k must be an integer >= 1, got 0.*materials\.selection\.k"),
        ({"k": 1.5, "cell_size": 1.0}, ConfigError, r"k must be an integer >= 1, got 1\.5"),
        ({}, ConfigError, r"exactly one of cell_size and fraction, got cell_size=None and fraction=None"),
        ({"cell_size": 1.0, "fraction": 0.5}, ConfigError, "exactly one of cell_size and fraction"),
        ({"cell_size": 0.0}, ConfigError, r"cell_size must be a positive finite number.*got 0\.0.*materials\.selection\.cell_size"),
        ({"cell_size": float("inf")}, ConfigError, "cell_size must be a positive finite number"),
        ({"fraction": 0.0}, ConfigError, r"fraction must be in \(0, 1\], got 0\.0.*materials\.selection\.fractions"),
        ({"fraction": 1.2}, ConfigError, r"fraction must be in \(0, 1\], got 1\.2"),
        ({"fraction": 0.01}, ConfigError, r"fraction=0\.01 of n=7 structures keeps no structure.*at least 0\.143"),
        ({"cell_size": 1.0, "seed": -1}, ConfigError, r"seed must be a non-negative integer, got -1.*materials\.selection\.seeds"),
        ({"fraction": 0.5, "tolerance": -1}, InputError, r"tolerance must be an integer >= 0 \(structures\), got -1"),
        ({"fraction": 0.5, "max_iter": 0}, InputError, "max_iter must be an integer >= 1, got 0"),
    ],
    ids=["k-zero", "k-float", "neither", "both", "cell-zero", "cell-inf", "fraction-zero",
         "fraction-above-one", "fraction-keeps-none", "seed-negative", "tolerance", "max-iter"],
)
def test_grid_select_rejects(kwargs, error, match):
    with pytest.raises(error, match=match):
        grid_select(MAP, **kwargs)


@pytest.mark.parametrize(
    ("coords", "match"),
    [
        (np.zeros((3, 3)), r"coords must be a numeric array of shape \(n_structures, 2\), got shape \(3, 3\)"),
        (np.zeros((0, 2)), "coords is empty"),
        (np.array([[0.0, 1.0], [np.nan, 2.0]]), r"NaN or infinite entries in 1 row\(s\), first at structure 1"),
    ],
    ids=["three-columns", "empty", "nan"],
)
def test_grid_select_rejects_coords(coords, match):
    with pytest.raises(InputError, match=match):
        grid_select(coords, cell_size=1.0)


# Baselines.


def test_random_select_size_and_seed():
    first = random_select(100, 10, seed=3)
    assert first.size == 10
    assert np.unique(first).size == 10
    assert first.tolist() == sorted(first.tolist())
    assert first.min() >= 0
    assert first.max() < 100
    np.testing.assert_array_equal(first, random_select(100, 10, seed=3))
    assert not np.array_equal(first, random_select(100, 10, seed=4))


# FPS on four points on a line: 0, 1, 2 and the far point 10. From any start the
# max-min rule next picks 10 (or 0 when it started at 10), then the point farthest
# from both. From start 1 the last pick is a tie between 0 and 2 at distance 1, which
# index 0 wins.
FPS_POINTS = np.array([[0.0], [1.0], [2.0], [10.0]])
FPS_THREE = {0: {0, 2, 3}, 1: {0, 1, 3}, 2: {0, 2, 3}, 3: {0, 2, 3}}


@pytest.mark.parametrize("seed", range(8))
def test_farthest_point_hand_line(seed):
    start = int(np.random.default_rng(seed).integers(4))
    two = farthest_point_select(FPS_POINTS, 2, seed, standardize=False)
    three = farthest_point_select(FPS_POINTS, 3, seed, standardize=False)
    assert 3 in two.tolist()
    assert start in two.tolist()
    assert set(three.tolist()) == FPS_THREE[start]


def test_farthest_point_duplicates_distinct():
    features = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0], [1.0, 1.0]])
    chosen = farthest_point_select(features, 4, seed=0)
    assert chosen.tolist() == [0, 1, 2, 3]


def test_farthest_point_standardize():
    # Feature 1 has a huge scale. Unscaled, the pick follows it; standardized, both
    # features count alike and the point far in feature 0 wins.
    features = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 1000.0], [0.1, 1001.0], [0.0, 1002.0]])
    seed = next(s for s in range(100) if np.random.default_rng(s).integers(5) == 0)
    assert farthest_point_select(features, 2, seed, standardize=False).tolist() == [0, 4]
    assert farthest_point_select(features, 2, seed, standardize=True).tolist() == [0, 1]


# k-means on three well-separated symmetric blobs: every centroid is the blob's centre
# point, so the selection is exactly the three centres.
BLOB_CENTRES = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
BLOB_OFFSETS = np.array([[0.0, 0.0], [0.5, 0.0], [-0.5, 0.0], [0.0, 0.5], [0.0, -0.5]])
BLOBS = (BLOB_CENTRES[:, None, :] + BLOB_OFFSETS[None, :, :]).reshape(-1, 2)


@pytest.mark.parametrize("standardize", [False, True])
def test_kmeans_blob_centres(standardize):
    for seed in (0, 1, 2):
        chosen = kmeans_select(BLOBS, 3, seed, standardize=standardize)
        assert chosen.tolist() == [0, 5, 10]


def test_kmeans_duplicates_resolved():
    # Two identical structures: as many clusters as structures still gives 3 indices.
    features = np.array([[0.0], [0.0], [1.0]])
    with pytest.warns(Warning):  # scikit-learn warns about fewer distinct clusters
        chosen = kmeans_select(features, 3, seed=0)
    assert chosen.tolist() == [0, 1, 2]


def test_kmeans_size_and_seed():
    features = np.random.default_rng(2).normal(size=(60, 4))
    first = kmeans_select(features, 20, seed=1)
    assert first.size == 20
    assert np.unique(first).size == 20
    np.testing.assert_array_equal(first, kmeans_select(features, 20, seed=1))


@pytest.mark.parametrize("method", ["random", "fps", "kmeans", "full"])
def test_baseline_select_dispatch(method):
    features = np.random.default_rng(0).normal(size=(30, 3))
    chosen = baseline_select(method, features, 10, seed=0)
    assert chosen.size == (30 if method == "full" else 10)
    assert np.unique(chosen).size == chosen.size


@pytest.mark.parametrize(
    ("function", "args", "error", "match"),
    [
        (random_select, (10, 11, 0), ConfigError, r"size=11 must be between 1 and the number of structures n=10.*materials\.selection\.fractions"),
        (random_select, (10, 0, 0), ConfigError, "size=0 must be between 1"),
        (random_select, (0, 1, 0), InputError, "n must be a positive integer, got 0"),
        (random_select, (10, 2, -3), ConfigError, "seed must be a non-negative integer, got -3"),
        (farthest_point_select, (np.zeros((5, 2)), 6, 0), ConfigError, "size=6 must be between 1 and the number of structures n=5"),
        (farthest_point_select, (np.zeros(5), 2, 0), InputError, r"features must be a numeric 2-D array.*got shape \(5,\)"),
        (kmeans_select, (np.array([[0.0], [np.inf]]), 1, 0), InputError, r"NaN or infinite entries in 1 row\(s\), first at structure 1"),
        (kmeans_select, (np.zeros((5, 2)), 2.5, 0), ConfigError, r"size must be an integer, got 2\.5"),
        (baseline_select, ("dvlae", np.zeros((5, 2)), 2, 0), ConfigError, "use grid_select for 'dvlae'"),
    ],
    ids=["size-above-n", "size-zero", "n-zero", "seed", "fps-size", "fps-1d", "kmeans-inf",
         "kmeans-size-float", "dispatch-dvlae"],
)
def test_baselines_reject(function, args, error, match):
    with pytest.raises(error, match=match):
        function(*args)


# Structure-mean descriptors on the hand set of test_dvlae (Pd = 46, H = 1):
#   s0: Pd (0, 5), H (1, 2);  s1: Pd (4, 5), Pd (2, 5);  s2: H (3, 2), H (2, 4), Pd (1, 5)


def test_structure_mean_descriptors_hand_set():
    values = np.array([[0, 5], [1, 2], [4, 5], [2, 5], [3, 2], [2, 4], [1, 5]], dtype=float)
    species = np.array([46, 1, 46, 46, 1, 1, 46])
    means = structure_mean_descriptors(values, species, np.array([0, 2, 4, 7]), [46, 1])
    expected = [[0.0, 5.0, 1.0, 2.0], [3.0, 5.0, 0.0, 0.0], [1.0, 5.0, 2.5, 3.0]]
    np.testing.assert_array_equal(means, expected)


def test_structure_mean_rejects_repeated_element():
    with pytest.raises(ConfigError, match=r"distinct positive atomic numbers, got \[46, 46\]"):
        structure_mean_descriptors(np.zeros((1, 1)), np.array([46]), np.array([0, 1]), [46, 46])


def test_structure_mean_rejects_unknown_element():
    with pytest.raises(InputError, match=r"atomic number\(s\) \[8\] are not among the elements \[46, 1\]"):
        structure_mean_descriptors(np.zeros((2, 1)), np.array([46, 8]), np.array([0, 2]), [46, 1])


# Embedding.


def _vectors(n: int, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, 20)) < 0.3).astype(np.float32)


def test_embed_tsne_reproducible():
    train, test = _vectors(60), _vectors(10, seed=1)
    first_train, first_test = embed(train, test, method="tsne", seed=4, perplexity=10.0)
    again_train, again_test = embed(train, test, method="tsne", seed=4, perplexity=10.0)
    assert first_train.shape == (60, 2)
    assert first_test.shape == (10, 2)
    assert np.isfinite(first_train).all()
    assert np.isfinite(first_test).all()
    np.testing.assert_array_equal(first_train, again_train)
    np.testing.assert_array_equal(first_test, again_test)


@pytest.mark.parametrize("method", ["tsne", "pca"])
def test_embed_empty_test_set(method):
    coords, test_coords = embed(_vectors(20), _vectors(20)[:0], method=method, perplexity=5.0)
    assert coords.shape == (20, 2)
    assert test_coords.shape == (0, 2)


def test_embed_tsne_annoy_neighbors():
    train, test = _vectors(60), _vectors(10, seed=1)
    coords, test_coords = embed(train, test, seed=0, perplexity=10.0, neighbors="annoy")
    assert coords.shape == (60, 2)
    assert test_coords.shape == (10, 2)


def test_embed_tsne_separates_clusters():
    # Two groups of vectors that differ in all 20 entries: every structure's map
    # neighbours must come from its own group.
    base = np.zeros((30, 20))
    base[15:] = 1.0
    base += np.random.default_rng(0).normal(scale=0.05, size=base.shape)
    coords, _ = embed(base, method="tsne", seed=0, perplexity=5.0)
    distance = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    np.fill_diagonal(distance, np.inf)
    nearest = distance.argmin(axis=1)
    np.testing.assert_array_equal(nearest < 15, np.arange(30) < 15)


def test_embed_pca_matches_projection():
    train, test = _vectors(40), _vectors(5, seed=1)
    train_coords, test_coords = embed(train, test, method="pca", seed=0)
    # Independent check: the first two principal axes from an SVD, up to sign.
    centred = train - train.mean(axis=0)
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    expected = (test - train.mean(axis=0)) @ axes[:2].T
    np.testing.assert_allclose(np.abs(test_coords), np.abs(expected), atol=1e-5)
    assert train_coords.shape == (40, 2)


def test_embed_lowers_perplexity(caplog):
    with caplog.at_level(logging.WARNING):
        coords, test_coords = embed(_vectors(16), method="tsne", seed=0, perplexity=30.0)
    assert coords.shape == (16, 2)
    assert test_coords is None
    assert "perplexity 30 is too large for 16 structures" in caplog.text
    assert "using 5" in caplog.text


@pytest.mark.parametrize(
    ("train", "test", "kwargs", "error", "match"),
    [
        (_vectors(10), None, {"method": "umap"}, ConfigError, r"method must be one of \['tsne', 'pca'\], got 'umap'.*materials\.embedding\.method"),
        (_vectors(10), None, {"perplexity": 0.0}, ConfigError, r"perplexity must be a positive number, got 0\.0.*materials\.embedding\.perplexity"),
        (_vectors(3), None, {"method": "tsne"}, ConfigError, r"method='tsne' needs at least 4 training structures, got 3"),
        (_vectors(1), None, {"method": "pca"}, ConfigError, r"method='pca' needs at least 2 training structures, got 1"),
        (np.zeros((5, 1)), None, {"method": "pca"}, ConfigError, r"PCA to 2 dimensions needs vectors of length >= 2, got length 1"),
        (_vectors(10), _vectors(3)[:, :5], {}, InputError, "test_vectors have length 5 but train_vectors have length 20"),
        (np.full((10, 3), np.nan), None, {}, InputError, r"train_vectors contains NaN or infinite entries in 10 row\(s\)"),
        (np.zeros(10), None, {}, InputError, r"train_vectors must be a numeric 2-D array.*got shape \(10,\)"),
        (_vectors(10), None, {"neighbors": "hnsw"}, ConfigError, "neighbors must be 'exact' or 'annoy', got 'hnsw'"),
    ],
    ids=["method", "perplexity", "tsne-too-few", "pca-too-few", "pca-length-one",
         "test-length", "nan", "one-dimensional", "neighbors"],
)
def test_embed_rejects(train, test, kwargs, error, match):
    with pytest.raises(error, match=match):
        embed(train, test, **kwargs)
