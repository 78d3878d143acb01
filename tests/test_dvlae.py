"""DV-LAE bins, histograms, difference vectors and out-of-distribution distances."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from equipipe.errors import ConfigError, InputError
from equipipe.materials.dvlae import (
    bin_indices,
    difference_vectors,
    element_positions,
    fit_bin_edges,
    histogram_counts,
    nearest_training_distance,
    vector_length,
)

PD, H = 46, 1
ELEMENTS = [PD, H]  # Pd is block 0, H block 1: not sorted by atomic number on purpose

# Three structures, two symmetry functions per atom.
#   s0: Pd (0, 5), H (1, 2)
#   s1: Pd (4, 5), Pd (2, 5)            no hydrogen
#   s2: H (3, 2), H (2, 4), Pd (1, 5)
VALUES = np.array(
    [
        [0.0, 5.0],
        [1.0, 2.0],
        [4.0, 5.0],
        [2.0, 5.0],
        [3.0, 2.0],
        [2.0, 4.0],
        [1.0, 5.0],
    ]
)
SPECIES = np.array([PD, H, PD, PD, H, H, PD])
OFFSETS = np.array([0, 2, 4, 7])

# With 2 bins: Pd f0 spans [0, 4] (width 2), Pd f1 is constant 5 (one bin),
# H f0 spans [1, 3] (width 1), H f1 spans [2, 4] (width 1). A value on an inner
# edge (Pd f0 = 2, H f0 = 2) belongs to the right bin. Flattened order: Pd f0 b0 b1,
# Pd f1 b0 b1, H f0 b0 b1, H f1 b0 b1.
EXPECTED_COUNTS = np.array(
    [
        [1, 0, 1, 0, 1, 0, 1, 0],
        [0, 2, 2, 0, 0, 0, 0, 0],
        [1, 0, 1, 0, 0, 2, 1, 1],
    ]
)


@pytest.fixture
def edges():
    return fit_bin_edges(VALUES, SPECIES, ELEMENTS, n_bins=2)


@pytest.fixture
def counts(edges):
    return histogram_counts(VALUES, SPECIES, OFFSETS, edges)


def test_bin_edges_hand_set(edges):
    np.testing.assert_array_equal(edges.lower, [[0.0, 5.0], [1.0, 2.0]])
    np.testing.assert_array_equal(edges.upper, [[4.0, 5.0], [3.0, 4.0]])
    np.testing.assert_array_equal(edges.width, [[2.0, 0.0], [1.0, 1.0]])
    np.testing.assert_array_equal(edges.edges[0, 0], [0.0, 2.0, 4.0])
    np.testing.assert_array_equal(edges.edges[1, 1], [2.0, 3.0, 4.0])
    assert edges.elements == (PD, H)
    assert edges.present.tolist() == [True, True]


def test_histogram_counts_hand_set(counts):
    assert counts.shape == (3, 2, 2, 2)
    assert counts.dtype == np.int32
    np.testing.assert_array_equal(counts.reshape(3, -1), EXPECTED_COUNTS)


def test_histogram_counts_sum_to_atoms(counts):
    # Every function's histogram contains every atom of that element once.
    n_pd = np.array([1, 2, 1])
    n_h = np.array([1, 0, 2])
    np.testing.assert_array_equal(counts[:, 0].sum(axis=-1), np.stack([n_pd, n_pd], 1))
    np.testing.assert_array_equal(counts[:, 1].sum(axis=-1), np.stack([n_h, n_h], 1))


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (
            "occupancy",
            [[0, 0, 0, 0, 0, 0, 0, 0], [1, 1, 0, 0, 1, 0, 1, 0], [0, 0, 0, 0, 1, 1, 0, 1]],
        ),
        (
            "count",
            [[0, 0, 0, 0, 0, 0, 0, 0], [1, 2, 1, 0, 1, 0, 1, 0], [0, 0, 0, 0, 1, 2, 0, 1]],
        ),
        ("set", [[0, 0, 0, 0], [1, 0, 1, 1], [0, 0, 1, 1]]),
    ],
    ids=["occupancy", "count", "set"],
)
def test_difference_vectors_hand_set(counts, mode, expected):
    vectors = difference_vectors(counts, 0, mode)
    assert vectors.shape == (3, vector_length(2, 2, 2, mode))
    np.testing.assert_array_equal(vectors, expected)


def test_difference_vectors_reference_array(counts):
    # Another structure as reference: s2 against s1, given by index or by histograms.
    by_index = difference_vectors(counts, 1, "count")
    by_array = difference_vectors(counts, counts[1], "count")
    np.testing.assert_array_equal(by_index, by_array)
    np.testing.assert_array_equal(by_index[2], [1, 2, 1, 0, 0, 2, 1, 1])


def test_test_structure_out_of_range(edges, caplog):
    # Pd (5, 6) lies above both Pd ranges, H (0, 3.5) below the H f0 range: three
    # clipped values, into the last, last, first and (in range) second bins.
    values = np.array([[5.0, 6.0], [0.0, 3.5]])
    species = np.array([PD, H])
    with caplog.at_level(logging.WARNING):
        counts, n_out = histogram_counts(
            values, species, np.array([0, 2]), edges, return_out_of_range=True
        )
    assert n_out == 3
    assert "3 of 4 atom descriptor values lie outside" in caplog.text
    np.testing.assert_array_equal(counts.reshape(-1), [0, 1, 0, 1, 1, 0, 0, 1])


def test_absent_element_gets_zero_block():
    # Fitted on Pd only: the H block exists, stays zero, and H atoms count as outside.
    edges = fit_bin_edges(VALUES[SPECIES == PD], SPECIES[SPECIES == PD], ELEMENTS, 2)
    assert edges.present.tolist() == [True, False]
    counts, n_out = histogram_counts(
        VALUES, SPECIES, OFFSETS, edges, return_out_of_range=True
    )
    assert counts.shape == (3, 2, 2, 2)
    assert n_out == 3 * 2  # three H atoms, two functions each
    np.testing.assert_array_equal(counts[1, 1], 0)


def test_value_on_edge_after_roundoff():
    # Fitted range [0, 0.3] with 30 bins: edge 29 is 0 + 29 * 0.01 == 0.29 exactly,
    # but 0.29 / 0.01 == 28.999999999999996 in float64, so plain floor division
    # would put 0.29 one bin too low.
    values = np.array([[0.0], [0.3], [0.29]])
    species = np.array([PD, PD, PD])
    edges = fit_bin_edges(values[:2], species[:2], [PD], n_bins=30)
    assert edges.edges[0, 0, 29] == 0.29
    assert np.floor(0.29 / edges.width[0, 0]) == 28

    indices, n_out = bin_indices(values, np.zeros(3, dtype=np.int64), edges)
    assert indices[:, 0].tolist() == [0, 29, 29]
    assert n_out == 0


def test_fitted_max_with_roundoff_stays_in_last_bin():
    # 0.1 + 0.2 == 0.30000000000000004: as the fitted maximum it lands in the last
    # of 3 bins, not a fourth, and so does a test value of 0.3.
    values = np.array([[0.0], [0.1 + 0.2]])
    species = np.array([H, H])
    edges = fit_bin_edges(values, species, [H], n_bins=3)
    counts = histogram_counts(values, species, np.array([0, 1, 2]), edges)
    assert counts.shape == (2, 1, 1, 3)
    np.testing.assert_array_equal(counts[:, 0, 0], [[1, 0, 0], [0, 0, 1]])

    test_counts = histogram_counts(np.array([[0.3]]), np.array([H]), np.array([0, 1]), edges)
    np.testing.assert_array_equal(test_counts[0, 0, 0], [0, 0, 1])


def test_bins_match_explicit_edges():
    # Independent check: for values on and between edges, the bin agrees with
    # searchsorted on the edges that BinEdges reports.
    rng = np.random.default_rng(3)
    train = rng.uniform(-1.3, 2.7, size=(200, 3))
    edges = fit_bin_edges(train, np.full(200, PD), [PD], n_bins=17)
    probes = np.concatenate([edges.edges[0].T, rng.uniform(-1.3, 2.7, size=(100, 3))])
    probes = np.clip(probes, edges.lower[0], edges.upper[0])
    indices, _ = bin_indices(probes, np.zeros(len(probes), dtype=np.int64), edges)
    for f in range(3):
        expected = np.searchsorted(edges.edges[0, f], probes[:, f], side="right") - 1
        np.testing.assert_array_equal(indices[:, f], np.clip(expected, 0, 16))


def test_constant_function_single_bin():
    values = np.array([[2.0], [2.0], [2.0]])
    species = np.array([PD, PD, PD])
    edges = fit_bin_edges(values, species, [PD], n_bins=4)
    assert edges.width[0, 0] == 0.0
    counts = histogram_counts(values, species, np.array([0, 1, 3]), edges)
    np.testing.assert_array_equal(counts[:, 0, 0], [[1, 0, 0, 0], [2, 0, 0, 0]])


def test_empty_structure_has_zero_histogram(edges):
    offsets = np.array([0, 2, 2, 4, 7])  # structure 1 has no atoms
    counts = histogram_counts(VALUES, SPECIES, offsets, edges)
    assert counts.shape[0] == 4
    np.testing.assert_array_equal(counts[1], 0)


def test_histograms_in_chunks_match_loop():
    # Enough atoms for several chunks of whole structures, with one structure larger
    # than a chunk and empty structures; compare with a loop over structures.
    rng = np.random.default_rng(0)
    n_atoms = np.r_[[3, 0, 5, 20_000, 2], rng.integers(0, 40, size=3000)]
    offsets = np.r_[0, np.cumsum(n_atoms)]
    values = rng.normal(size=(offsets[-1], 64))
    species = rng.choice([PD, H], size=offsets[-1])
    edges = fit_bin_edges(values, species, ELEMENTS, n_bins=5)
    counts = histogram_counts(values, species, offsets, edges)

    block = element_positions(species, (PD, H))
    indices, _ = bin_indices(values, block, edges)
    expected = np.zeros_like(counts)
    functions = np.arange(64)[None, :]
    for s in range(len(n_atoms)):
        rows = slice(offsets[s], offsets[s + 1])
        np.add.at(expected[s], (block[rows][:, None], functions, indices[rows]), 1)
    np.testing.assert_array_equal(counts, expected)


def test_nearest_distance_matches_brute_force():
    rng = np.random.default_rng(1)
    train = (rng.random((40, 30)) < 0.3).astype(np.float32)
    test = (rng.random((15, 30)) < 0.3).astype(np.float32)
    distance, index = nearest_training_distance(train, test, return_index=True)
    pairwise = cdist(test.astype(np.float64), train.astype(np.float64))
    np.testing.assert_allclose(distance, pairwise.min(axis=1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(pairwise[np.arange(15), index], pairwise.min(axis=1))


def test_nearest_distance_zero_for_training_member():
    train = np.array([[0.0, 0.0], [3.0, 4.0]])
    distance = nearest_training_distance(train, np.array([[3.0, 4.0], [0.0, 1.0]]))
    np.testing.assert_allclose(distance, [0.0, 1.0])


# Bad input: every message names the value, the expectation and the fix.


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_bins": 0}, ConfigError, r"n_bins must be an integer >= 1, got 0.*materials\.dvlae\.n_bins"),
        ({"n_bins": 2.5}, ConfigError, r"n_bins must be an integer >= 1, got 2\.5"),
        ({"elements": []}, ConfigError, "elements must list at least one atomic number"),
        ({"elements": [46, 46, 1]}, ConfigError, r"distinct positive atomic numbers, got \[46, 46, 1\]"),
        ({"elements": [46]}, InputError, r"atomic number\(s\) \[1\] are not among the elements \[46\].*add these elements"),
        ({"values": VALUES[:, 0]}, InputError, r"values must be a 2-D array.*got shape \(7,\)"),
        ({"species": SPECIES[:3]}, InputError, r"species must have shape \(7,\) to match values, got shape \(3,\)"),
        ({"species": SPECIES.astype(float)}, InputError, "species must contain integer atomic numbers"),
    ],
    ids=["n-bins-zero", "n-bins-float", "no-elements", "repeated-element", "unknown-element",
         "values-1d", "species-length", "species-float"],
)
def test_fit_bin_edges_rejects(kwargs, error, match):
    arguments = {"values": VALUES, "species": SPECIES, "elements": ELEMENTS, "n_bins": 2}
    arguments.update(kwargs)
    with pytest.raises(error, match=match):
        fit_bin_edges(**arguments)


def test_nan_descriptor_rejected():
    values = VALUES.copy()
    values[4, 1] = np.nan
    with pytest.raises(InputError, match=r"NaN or infinite entries in 1 atom row\(s\), first at row 4"):
        fit_bin_edges(values, SPECIES, ELEMENTS, 2)


@pytest.mark.parametrize(
    ("offsets", "match"),
    [
        (np.array([0, 2, 4, 6]), r"end at n_atoms_total=7, got offsets\[0\]=0 and offsets\[-1\]=6"),
        (np.array([0, 4, 2, 7]), r"non-decreasing, got offsets\[1\]=4 > offsets\[2\]=2"),
        (np.array([0.0, 2.0, 7.0]), "offsets must be integers"),
        (np.zeros((2, 2), dtype=int), r"offsets must be a 1-D array.*got shape \(2, 2\)"),
    ],
    ids=["wrong-end", "decreasing", "float", "2d"],
)
def test_histogram_rejects_bad_offsets(edges, offsets, match):
    with pytest.raises(InputError, match=match):
        histogram_counts(VALUES, SPECIES, offsets, edges)


def test_histogram_rejects_feature_count(edges):
    with pytest.raises(InputError, match="values has 3 features per atom but the bins were fitted on 2"):
        histogram_counts(np.zeros((7, 3)), SPECIES, OFFSETS, edges)


@pytest.mark.parametrize(
    ("reference", "mode", "error", "match"),
    [
        (0, "bins", ConfigError, r"mode must be one of \['occupancy', 'count', 'set'\], got 'bins'.*materials\.dvlae\.mode"),
        (3, "count", ConfigError, r"reference=3 is not a structure index in \[0, 3\).*materials\.dvlae\.reference"),
        (-1, "count", ConfigError, r"reference=-1 is not a structure index"),
        (np.zeros((2, 2)), "count", InputError, r"reference histograms must have shape \(2, 2, 2\).*got shape \(2, 2\)"),
    ],
    ids=["mode", "index-too-large", "index-negative", "array-shape"],
)
def test_difference_vectors_rejects(counts, reference, mode, error, match):
    with pytest.raises(error, match=match):
        difference_vectors(counts, reference, mode)


def test_difference_vectors_rejects_float_counts():
    with pytest.raises(InputError, match=r"counts must be an integer array.*float64"):
        difference_vectors(np.zeros((2, 1, 1, 3)), 0, "count")


@pytest.mark.parametrize(
    ("train", "test", "match"),
    [
        (np.zeros((0, 3)), np.zeros((1, 3)), "train_vectors is empty"),
        (np.zeros((2, 3)), np.zeros((1, 4)), "test_vectors have length 4 but train_vectors have length 3"),
        (np.zeros(3), np.zeros((1, 3)), r"train_vectors must be a numeric 2-D array.*got shape \(3,\)"),
        (np.zeros((2, 3)), np.full((1, 3), np.nan), "test_vectors contains NaN"),
    ],
    ids=["empty-train", "length", "train-1d", "test-nan"],
)
def test_nearest_distance_rejects(train, test, match):
    with pytest.raises(InputError, match=match):
        nearest_training_distance(train, test)
