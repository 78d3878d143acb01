"""DV-LAE: difference vectors of local atomic environments.

Every atom is described by a vector of symmetry-function values. For every element and
every symmetry function, the atoms of a structure fill a histogram over bins that span
the range of that function over the training data. Comparing a structure's histograms
with those of a reference structure gives its difference vector. Structures with
similar local environments get similar difference vectors, so a 2-D map of these
vectors (``embedding.py``) shows which structures are redundant. The distance of a
test structure to its nearest training structure in this space is its
out-of-distribution score.

The descriptor arrays follow one layout throughout:

``values`` : ndarray of shape (n_atoms_total, n_features), float
    Symmetry-function values of all atoms of all structures, one row per atom.
``species`` : ndarray of shape (n_atoms_total,), int
    Atomic number of each atom.
``offsets`` : ndarray of shape (n_structures + 1,), int
    Structure ``s`` owns rows ``offsets[s]:offsets[s + 1]``, so ``offsets[0] == 0``
    and ``offsets[-1] == n_atoms_total``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from sklearn.neighbors import NearestNeighbors

from equipipe.errors import ConfigError, InputError

logger = logging.getLogger(__name__)

MODES = ("occupancy", "count", "set")


@dataclass(frozen=True)
class BinEdges:
    """Histogram bins for every (element, symmetry function), fitted on training data.

    Bin ``b`` of element block ``e`` and function ``f`` is the half-open interval
    ``[edges[e, f, b], edges[e, f, b + 1])`` with ``edges[e, f, b] = lower[e, f] + b *
    width[e, f]``. The last bin also contains the upper end of the fitted range.
    Values outside the fitted range are clipped into the first or last bin.

    Attributes
    ----------
    elements : tuple of int
        Atomic numbers, in the order of the element blocks of every histogram.
    lower : ndarray of shape (n_elements, n_features), float64
        Minimum of each function over the element's atoms in the fitted data.
    upper : ndarray of shape (n_elements, n_features), float64
        Maximum of each function over the element's atoms in the fitted data.
    width : ndarray of shape (n_elements, n_features), float64
        Bin width ``(upper - lower) / n_bins``. It is 0 for a constant function and
        for an element absent from the fitted data (whose lower and upper are 0).
    n_bins : int
        Number of bins per (element, function).
    present : ndarray of shape (n_elements,), bool
        Whether the element had at least one atom in the fitted data.
    """

    elements: tuple[int, ...]
    lower: np.ndarray
    upper: np.ndarray
    width: np.ndarray
    n_bins: int
    present: np.ndarray

    @property
    def n_elements(self) -> int:
        """Number of element blocks."""
        return len(self.elements)

    @property
    def n_features(self) -> int:
        """Number of symmetry functions per atom."""
        return self.lower.shape[1]

    @property
    def edges(self) -> np.ndarray:
        """Bin edges, ndarray of shape (n_elements, n_features, n_bins + 1)."""
        steps = np.arange(self.n_bins + 1, dtype=np.float64)
        return self.lower[..., None] + steps * self.width[..., None]


def check_descriptor_arrays(
    values: np.ndarray, species: np.ndarray, offsets: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate the per-atom descriptor arrays and return them as numpy arrays.

    Parameters
    ----------
    values : array_like of shape (n_atoms_total, n_features)
        Symmetry-function values, all finite.
    species : array_like of shape (n_atoms_total,)
        Atomic numbers (integers).
    offsets : array_like of shape (n_structures + 1,), optional
        Row offsets of the structures: non-decreasing, starting at 0 and ending at
        ``n_atoms_total``.

    Returns
    -------
    values : ndarray of float64
    species : ndarray of int64
    offsets : ndarray of int64 or None

    Raises
    ------
    InputError
        For a wrong shape, a non-finite value, non-integer species or bad offsets.
    """
    values = np.asarray(values)
    if values.ndim != 2:
        raise InputError(
            f"values must be a 2-D array of shape (n_atoms_total, n_features), "
            f"got shape {values.shape}",
            field="values",
            fix="pass the per-atom descriptor matrix, one row per atom",
        )
    if not np.issubdtype(values.dtype, np.number):
        raise InputError(
            f"values must be numeric, got dtype {values.dtype}", field="values"
        )
    values = values.astype(np.float64, copy=False)
    bad_rows = np.flatnonzero(~np.isfinite(values).all(axis=1))
    if bad_rows.size:
        raise InputError(
            f"values contains NaN or infinite entries in {bad_rows.size} atom row(s), "
            f"first at row {bad_rows[0]}",
            field="values",
            fix="recompute the descriptors of the structures that contain these atoms",
        )

    species = np.asarray(species)
    if species.shape != (values.shape[0],):
        raise InputError(
            f"species must have shape ({values.shape[0]},) to match values, "
            f"got shape {species.shape}",
            field="species",
        )
    if species.size and not np.issubdtype(species.dtype, np.integer):
        raise InputError(
            f"species must contain integer atomic numbers, got dtype {species.dtype}",
            field="species",
        )
    species = species.astype(np.int64, copy=False)

    if offsets is None:
        return values, species, None
    offsets = np.asarray(offsets)
    if offsets.ndim != 1 or offsets.size < 1:
        raise InputError(
            f"offsets must be a 1-D array of shape (n_structures + 1,), "
            f"got shape {offsets.shape}",
            field="offsets",
        )
    if not np.issubdtype(offsets.dtype, np.integer):
        raise InputError(
            f"offsets must be integers, got dtype {offsets.dtype}", field="offsets"
        )
    offsets = offsets.astype(np.int64, copy=False)
    if offsets[0] != 0 or offsets[-1] != values.shape[0]:
        raise InputError(
            f"offsets must start at 0 and end at n_atoms_total={values.shape[0]}, "
            f"got offsets[0]={offsets[0]} and offsets[-1]={offsets[-1]}",
            field="offsets",
        )
    decreasing = np.flatnonzero(np.diff(offsets) < 0)
    if decreasing.size:
        s = decreasing[0]
        raise InputError(
            f"offsets must be non-decreasing, got offsets[{s}]={offsets[s]} > "
            f"offsets[{s + 1}]={offsets[s + 1]}",
            field="offsets",
        )
    return values, species, offsets


def element_positions(species: np.ndarray, elements: tuple[int, ...]) -> np.ndarray:
    """Map atomic numbers to their block index in ``elements``.

    Parameters
    ----------
    species : ndarray of shape (n_atoms,), int64
    elements : tuple of int
        Atomic numbers of the element blocks.

    Returns
    -------
    ndarray of shape (n_atoms,), int64

    Raises
    ------
    InputError
        When an atom's element is not in ``elements``.
    """
    order = np.argsort(elements)
    sorted_elements = np.asarray(elements, dtype=np.int64)[order]
    position = np.searchsorted(sorted_elements, species)
    position = np.clip(position, 0, len(elements) - 1)
    unknown = sorted_elements[position] != species
    if unknown.any():
        missing = sorted(set(np.unique(species[unknown]).tolist()))
        raise InputError(
            f"atoms with atomic number(s) {missing} are not among the elements "
            f"{list(elements)} (first at atom row {np.flatnonzero(unknown)[0]})",
            field="species",
            fix="add these elements to the element list of the materials config",
        )
    return order[position].astype(np.int64)


def check_elements(elements) -> tuple[int, ...]:
    """Validate a list of distinct positive atomic numbers and return it as a tuple."""
    elements = tuple(int(z) for z in elements)
    if not elements:
        raise ConfigError(
            "elements must list at least one atomic number, got an empty list",
            field="elements",
        )
    if len(set(elements)) != len(elements) or min(elements) < 1:
        raise ConfigError(
            f"elements must be distinct positive atomic numbers, got {list(elements)}",
            field="elements",
        )
    return elements


def _check_n_bins(n_bins) -> int:
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ConfigError(
            f"n_bins must be an integer >= 1, got {n_bins!r}",
            field="materials.dvlae.n_bins",
            fix="set materials.dvlae.n_bins to a positive integer such as 30",
        )
    return int(n_bins)


def fit_bin_edges(
    values: np.ndarray, species: np.ndarray, elements: list[int], n_bins: int
) -> BinEdges:
    """Fit histogram bins spanning each function's range over each element's atoms.

    Parameters
    ----------
    values : array_like of shape (n_atoms_total, n_features)
        Symmetry-function values of the training atoms.
    species : array_like of shape (n_atoms_total,)
        Atomic numbers of the training atoms, each in ``elements``.
    elements : list of int
        Atomic numbers, in the order of the element blocks of the histograms. An
        element without atoms in ``values`` still gets a block, with zero-width bins.
    n_bins : int
        Bins per (element, function), ``materials.dvlae.n_bins`` in the config.

    Returns
    -------
    BinEdges

    Raises
    ------
    InputError
        For invalid descriptor arrays or atoms of an element not in ``elements``.
    ConfigError
        For an empty or repeated element list or ``n_bins < 1``.
    """
    values, species, _ = check_descriptor_arrays(values, species)
    elements = check_elements(elements)
    n_bins = _check_n_bins(n_bins)
    block = element_positions(species, elements)

    n_features = values.shape[1]
    lower = np.zeros((len(elements), n_features))
    upper = np.zeros((len(elements), n_features))
    present = np.zeros(len(elements), dtype=bool)
    for e, z in enumerate(elements):
        # A masked reduction instead of values[block == e] avoids copying the rows.
        mask = (block == e)[:, None]
        if not mask.any():
            logger.warning(
                "element Z=%d has no atoms in the data used to fit the DV-LAE bins, so "
                "its histogram block stays zero for these structures and its test "
                "atoms all count as out of range",
                z,
            )
            continue
        present[e] = True
        lower[e] = np.min(values, axis=0, where=mask, initial=np.inf)
        upper[e] = np.max(values, axis=0, where=mask, initial=-np.inf)

    width = (upper - lower) / n_bins
    n_constant = int(((width == 0) & present[:, None]).sum())
    if n_constant:
        logger.info(
            "%d (element, function) pairs are constant over the fitted atoms, so "
            "each puts all its atoms into bin 0",
            n_constant,
        )
    logger.info(
        "fitted DV-LAE bins: %d elements x %d functions x %d bins on %d atoms",
        len(elements), n_features, n_bins, values.shape[0],
    )
    return BinEdges(
        elements=elements,
        lower=lower,
        upper=upper,
        width=width,
        n_bins=n_bins,
        present=present,
    )


def bin_indices(
    values: np.ndarray, block: np.ndarray, edges: BinEdges
) -> tuple[np.ndarray, int]:
    """Return the bin of every atom value and the number of values outside the range.

    The bin of a value ``v`` is ``floor((v - lower) / width)``, corrected by one step
    where round-off puts ``v`` on the wrong side of the edge ``lower + b * width``,
    then clipped to ``[0, n_bins - 1]``. So the number of bins never depends on
    round-off, and each in-range value lands in the bin whose edges, as
    ``BinEdges.edges`` computes them, enclose it. Where the width is 0 (a constant
    function or an absent element), values up to ``lower`` go to bin 0 and larger
    values to the last bin.

    Parameters
    ----------
    values : ndarray of shape (n_atoms, n_features), float64
    block : ndarray of shape (n_atoms,), int64
        Element block of every atom, from ``element_positions``.
    edges : BinEdges

    Returns
    -------
    indices : ndarray of shape (n_atoms, n_features), int64
        Bin index in ``[0, n_bins - 1]``.
    n_out_of_range : int
        Number of values below ``lower`` or above ``upper``; always 0 on the fitted
        data. Every value of an element absent from the fitted data counts here.
    """
    lower = edges.lower[block]  # (n_atoms, n_features)
    width = edges.width[block]
    n_bins = edges.n_bins
    has_width = width > 0
    safe_width = np.where(has_width, width, 1.0)

    # First guess by division, then a one-step correction against the edges that
    # BinEdges.edges reports, so a value on an edge goes to the bin on its right.
    guess = np.floor((values - lower) / safe_width)
    guess = np.clip(guess, -1, n_bins).astype(np.int64)
    left_edge = lower + guess * safe_width
    right_edge = lower + (guess + 1) * safe_width  # not left_edge + width: round-off
    guess -= values < left_edge
    guess += values >= right_edge
    indices = np.where(has_width, guess, np.where(values > lower, n_bins - 1, 0))
    np.clip(indices, 0, n_bins - 1, out=indices)

    outside = (values < lower) | (values > edges.upper[block])
    outside |= ~edges.present[block][:, None]
    return indices, int(outside.sum())


def histogram_counts(
    values: np.ndarray,
    species: np.ndarray,
    offsets: np.ndarray,
    edges: BinEdges,
    *,
    return_out_of_range: bool = False,
) -> np.ndarray | tuple[np.ndarray, int]:
    """Count the atoms of every structure per (element, function, bin).

    Parameters
    ----------
    values : array_like of shape (n_atoms_total, n_features)
        Symmetry-function values, with the ``n_features`` of ``edges``.
    species : array_like of shape (n_atoms_total,)
        Atomic numbers, each in ``edges.elements``.
    offsets : array_like of shape (n_structures + 1,)
        Row offsets of the structures.
    edges : BinEdges
        Bins from ``fit_bin_edges`` on the training structures. Values outside their
        range (in test structures) are clipped into the end bins and counted.
    return_out_of_range : bool, default False
        Also return the number of clipped values.

    Returns
    -------
    counts : ndarray of shape (n_structures, n_elements, n_features, n_bins), int32
        Atom counts. ``counts[s, e, f].sum()`` is the number of atoms of element
        ``e`` in structure ``s``, for every function ``f``.
    n_out_of_range : int
        Only with ``return_out_of_range``: number of (atom, function) values outside
        the fitted range. A WARNING logs it whenever it is not 0.

    Raises
    ------
    InputError
        For invalid arrays, a feature count that differs from ``edges`` or atoms of an
        element not in ``edges.elements``.
    """
    values, species, offsets = check_descriptor_arrays(values, species, offsets)
    if values.shape[1] != edges.n_features:
        raise InputError(
            f"values has {values.shape[1]} features per atom but the bins were fitted "
            f"on {edges.n_features}",
            field="values",
            fix="compute training and test descriptors with the same symmetry "
            "function parameters",
        )
    block = element_positions(species, edges.elements)
    n_structures = offsets.size - 1
    n_elements, n_features, n_bins = edges.n_elements, edges.n_features, edges.n_bins
    structure = np.repeat(np.arange(n_structures, dtype=np.int64), np.diff(offsets))

    # Count in chunks of whole structures, about 2**20 values each, so the flat
    # index array and np.bincount's output stay small for large data sets.
    per_structure = n_elements * n_features * n_bins
    counts = np.zeros((n_structures, per_structure), dtype=np.int32)
    feature_offset = np.arange(n_features, dtype=np.int64) * n_bins
    atoms_per_chunk = max(1, 2**20 // max(n_features, 1))
    n_out_of_range = 0
    first = 0
    while first < n_structures:
        limit = offsets[first] + atoms_per_chunk
        last = int(np.searchsorted(offsets, limit, side="right")) - 1
        last = min(max(last, first + 1), n_structures)
        start, stop = offsets[first], offsets[last]

        indices, n_out = bin_indices(values[start:stop], block[start:stop], edges)
        n_out_of_range += n_out
        row = (structure[start:stop] - first) * n_elements + block[start:stop]
        flat = (row * (n_features * n_bins))[:, None] + feature_offset + indices
        chunk_counts = np.bincount(flat.ravel(), minlength=(last - first) * per_structure)
        counts[first:last] = chunk_counts.reshape(last - first, per_structure)
        first = last
    counts = counts.reshape(n_structures, n_elements, n_features, n_bins)

    if n_out_of_range:
        logger.warning(
            "%d of %d atom descriptor values lie outside the fitted DV-LAE bin range "
            "and were counted in the end bins (expected for test structures unlike "
            "any training structure)",
            n_out_of_range, values.size,
        )
    logger.info(
        "DV-LAE histograms: %d structures, %d atoms, %d bins per structure",
        n_structures, values.shape[0], n_elements * n_features * n_bins,
    )
    if return_out_of_range:
        return counts, n_out_of_range
    return counts


def vector_length(n_elements: int, n_features: int, n_bins: int, mode: str) -> int:
    """Return the length of a difference vector.

    ``n_elements * n_features * n_bins`` for the modes "occupancy" and "count", and
    ``n_elements * n_features`` for the mode "set".
    """
    _check_mode(mode)
    if mode == "set":
        return n_elements * n_features
    return n_elements * n_features * n_bins


def _check_mode(mode) -> str:
    if mode not in MODES:
        raise ConfigError(
            f"mode must be one of {list(MODES)}, got {mode!r}",
            field="materials.dvlae.mode",
            fix=f"set materials.dvlae.mode to one of {', '.join(MODES)}",
        )
    return mode


def difference_vectors(
    counts: np.ndarray, reference: int | np.ndarray, mode: str
) -> np.ndarray:
    """Compare every structure's histograms with those of a reference structure.

    Modes, with ``occupied = counts > 0``:

    ``"occupancy"``
        One 0/1 flag per (element, function, bin): 1 where the bin is occupied in the
        structure but not in the reference, or the other way round. Length
        ``n_elements * n_features * n_bins``.
    ``"count"``
        Absolute difference of the atom counts per (element, function, bin).
        Length ``n_elements * n_features * n_bins``.
    ``"set"``
        One 0/1 flag per (element, function): 1 where the set of occupied bins
        differs from the reference's. Length ``n_elements * n_features``.

    The entries are ordered element-major, then function, then bin, as in
    ``counts[s].ravel()``.

    Parameters
    ----------
    counts : ndarray of shape (n_structures, n_elements, n_features, n_bins), int
        Histograms from ``histogram_counts``.
    reference : int or ndarray of shape (n_elements, n_features, n_bins)
        Index of the reference structure in ``counts`` (``materials.dvlae.reference``
        in the config), or the reference's histograms. Pass the training reference's
        histograms when computing vectors of test structures, so both sets share
        one reference.
    mode : {"occupancy", "count", "set"}
        ``materials.dvlae.mode`` in the config.

    Returns
    -------
    ndarray of shape (n_structures, L), float32
        Difference vectors, with ``L`` given by ``vector_length``. float32 is exact
        for counts below 2**24.

    Raises
    ------
    ConfigError
        For an unknown mode or a reference index outside ``[0, n_structures)``.
    InputError
        For counts of the wrong shape or a reference array whose shape differs.
    """
    mode = _check_mode(mode)
    counts = np.asarray(counts)
    if counts.ndim != 4 or not np.issubdtype(counts.dtype, np.integer):
        raise InputError(
            f"counts must be an integer array of shape (n_structures, n_elements, "
            f"n_features, n_bins), got shape {counts.shape} and dtype {counts.dtype}",
            field="counts",
            fix="pass the output of histogram_counts",
        )
    if isinstance(reference, (int, np.integer)) and not isinstance(reference, bool):
        if not 0 <= reference < counts.shape[0]:
            raise ConfigError(
                f"reference={reference} is not a structure index in "
                f"[0, {counts.shape[0]})",
                field="materials.dvlae.reference",
                fix=f"set materials.dvlae.reference to an index below {counts.shape[0]}",
            )
        reference_counts = counts[reference]
    else:
        reference_counts = np.asarray(reference)
        if reference_counts.shape != counts.shape[1:]:
            raise InputError(
                f"reference histograms must have shape {counts.shape[1:]} to match "
                f"counts, got shape {reference_counts.shape}",
                field="reference",
                fix="pass an index into counts or the histograms of one structure "
                "computed with the same bins",
            )

    n_structures = counts.shape[0]
    if mode == "count":
        difference = counts.astype(np.int32, copy=False) - reference_counts.astype(np.int32)
        np.abs(difference, out=difference)
        return difference.reshape(n_structures, -1).astype(np.float32)
    flipped = (counts > 0) != (reference_counts > 0)  # (n_structures, E, F, B)
    if mode == "set":
        flipped = flipped.any(axis=-1)
    return flipped.reshape(n_structures, -1).astype(np.float32)


def nearest_training_distance(
    train_vectors: np.ndarray,
    test_vectors: np.ndarray,
    *,
    return_index: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Return each test vector's Euclidean distance to the nearest training vector.

    This distance in difference-vector space is the out-of-distribution score of a
    test structure: 0 when a training structure has identical histogram
    differences, large when no training structure resembles it.

    Parameters
    ----------
    train_vectors : array_like of shape (n_train, L)
    test_vectors : array_like of shape (n_test, L)
        Vectors against the same reference and bins as ``train_vectors``.
    return_index : bool, default False
        Also return the index of the nearest training vector.

    Returns
    -------
    distance : ndarray of shape (n_test,), float64
    index : ndarray of shape (n_test,), int64
        Only with ``return_index``.

    Raises
    ------
    InputError
        For empty training vectors, lengths that differ or non-finite entries.
    """
    train = _check_vectors(train_vectors, "train_vectors")
    test = _check_vectors(test_vectors, "test_vectors", allow_empty=True)
    if train.shape[0] == 0:
        raise InputError(
            "train_vectors is empty, but at least one training vector is needed",
            field="train_vectors",
        )
    if test.shape[1] != train.shape[1]:
        raise InputError(
            f"test_vectors have length {test.shape[1]} but train_vectors have length "
            f"{train.shape[1]}",
            field="test_vectors",
            fix="compute both with the same bins, reference and mode",
        )
    if test.shape[0] == 0:
        empty = np.zeros(0)
        return (empty, np.zeros(0, dtype=np.int64)) if return_index else empty

    # Brute force is exact and, for the hundreds to thousands of dimensions of
    # difference vectors, faster than tree searches. sklearn returns float32
    # distances for float32 input, so the vectors go in as float64; the squared
    # distances of integer-valued vectors are then exact.
    search = NearestNeighbors(n_neighbors=1, algorithm="brute")
    search.fit(train.astype(np.float64, copy=False))
    distance, index = search.kneighbors(test.astype(np.float64, copy=False))
    distance = distance[:, 0].astype(np.float64)
    logger.info(
        "nearest training distance of %d test vectors to %d training vectors: "
        "median %.3g, max %.3g",
        test.shape[0], train.shape[0], np.median(distance), distance.max(),
    )
    if return_index:
        return distance, index[:, 0].astype(np.int64)
    return distance


def _check_vectors(vectors, name: str, allow_empty: bool = False) -> np.ndarray:
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or not np.issubdtype(vectors.dtype, np.number):
        raise InputError(
            f"{name} must be a numeric 2-D array of shape (n, L), got shape "
            f"{vectors.shape} and dtype {vectors.dtype}",
            field=name,
        )
    if vectors.size and not np.isfinite(vectors).all():
        raise InputError(f"{name} contains NaN or infinite entries", field=name)
    return vectors
