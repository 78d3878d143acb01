"""Dataset selection: DV-LAE grid selection on a 2-D map and three baselines.

``grid_select`` lays a square grid over the 2-D map of the difference vectors and keeps
at most ``k`` structures per occupied cell, so dense regions of the map (many similar
structures) are thinned while sparse regions are kept whole. The baselines pick the
same number of structures without the map: uniformly at random, by farthest-point
sampling, and by k-means clustering of structure-mean descriptors.

Every function returns sorted, distinct structure indices.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans
from sklearn.neighbors import NearestNeighbors

from equipipe.errors import ConfigError, InputError
from equipipe.materials.dvlae import (
    check_descriptor_arrays,
    check_elements,
    element_positions,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GridSelection:
    """Result of ``grid_select``.

    Attributes
    ----------
    indices : ndarray of shape (n_selected,), int64
        Selected structure indices, sorted.
    cell_size : float
        Side of the square grid cells, in map units.
    n_cells_occupied : int
        Number of grid cells that contain at least one structure.
    target_size : int or None
        Requested subset size when a fraction was given, else None.
    """

    indices: np.ndarray
    cell_size: float
    n_cells_occupied: int
    target_size: int | None = None


# Argument checks shared by the public functions.


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(
            f"seed must be a non-negative integer, got {seed!r}",
            field="materials.selection.seeds",
            fix="list non-negative integers under materials.selection.seeds",
        )
    return int(seed)


def _check_size(size, n: int) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise ConfigError(
            f"size must be an integer, got {size!r}",
            field="materials.selection.fractions",
        )
    if not 1 <= size <= n:
        raise ConfigError(
            f"size={size} must be between 1 and the number of structures n={n}",
            field="materials.selection.fractions",
            fix="use fractions in (0, 1] that keep at least one structure",
        )
    return int(size)


def _check_features(features) -> np.ndarray:
    features = np.asarray(features)
    if features.ndim != 2 or not np.issubdtype(features.dtype, np.number):
        raise InputError(
            f"features must be a numeric 2-D array of shape (n_structures, "
            f"n_features), got shape {features.shape} and dtype {features.dtype}",
            field="features",
            fix="pass structure_mean_descriptors(...) or another per-structure matrix",
        )
    bad_rows = np.flatnonzero(~np.isfinite(features).all(axis=1))
    if bad_rows.size:
        raise InputError(
            f"features contains NaN or infinite entries in {bad_rows.size} row(s), "
            f"first at structure {bad_rows[0]}",
            field="features",
        )
    return features.astype(np.float64, copy=False)


def _check_coords(coords) -> np.ndarray:
    coords = np.asarray(coords)
    if coords.ndim != 2 or coords.shape[1] != 2 or not np.issubdtype(
        coords.dtype, np.number
    ):
        raise InputError(
            f"coords must be a numeric array of shape (n_structures, 2), got shape "
            f"{coords.shape} and dtype {coords.dtype}",
            field="coords",
            fix="pass the 2-D map from embedding.embed",
        )
    if coords.shape[0] == 0:
        raise InputError("coords is empty; the map has no structures", field="coords")
    bad_rows = np.flatnonzero(~np.isfinite(coords).all(axis=1))
    if bad_rows.size:
        raise InputError(
            f"coords contains NaN or infinite entries in {bad_rows.size} row(s), "
            f"first at structure {bad_rows[0]}",
            field="coords",
            fix="recompute the embedding; NaN coordinates usually mean a diverged "
            "t-SNE run or NaN difference vectors",
        )
    return coords.astype(np.float64, copy=False)


def _standardize(features: np.ndarray) -> np.ndarray:
    """Scale every column to zero mean and unit variance; constant columns become 0."""
    std = features.std(axis=0)
    return (features - features.mean(axis=0)) / np.where(std > 0, std, 1.0)


# DV-LAE grid selection.


def _cell_keys(coords: np.ndarray, cell_size: float) -> np.ndarray:
    """Return one integer id per structure for the grid cell it falls into."""
    cell = np.floor((coords - coords.min(axis=0)) / cell_size).astype(np.int64)
    n_columns = int(cell[:, 1].max()) + 1
    return cell[:, 0] * n_columns + cell[:, 1]


def _subset_size(coords: np.ndarray, cell_size: float, k: int) -> int:
    """Number of structures that grid selection keeps: sum over cells of min(count, k)."""
    _, per_cell = np.unique(_cell_keys(coords, cell_size), return_counts=True)
    return int(np.minimum(per_cell, k).sum())


def _bisect_cell_size(
    coords: np.ndarray, k: int, target: int, tolerance: int, max_iter: int
) -> float:
    """Find a cell size whose subset size is within ``tolerance`` of ``target``.

    The search bisects log(cell size) between a size so small that every distinct
    point has its own cell and a size so large that one cell contains every point.
    The subset size falls, not always monotonically, as cells grow, so bisection
    keeps a bracket with size >= target at its small end and size < target at its
    large end, and returns the best cell size seen.
    """
    extent = float(np.ptp(coords, axis=0).max())
    if extent == 0.0:
        logger.warning(
            "all %d structures sit at the same map position; the grid has a single "
            "occupied cell and keeps %d of them whatever the cell size",
            coords.shape[0], min(k, coords.shape[0]),
        )
        return 1.0
    small, large = extent * 1e-9, extent * (1.0 + 1e-9)
    best_size, best_gap = large, abs(_subset_size(coords, large, k) - target)
    small_count = _subset_size(coords, small, k)
    if abs(small_count - target) < best_gap:
        best_size, best_gap = small, abs(small_count - target)
    if small_count < target:
        # Even the finest grid keeps fewer than requested, which happens only when
        # several structures share a map position.
        return best_size

    for _ in range(max_iter):
        if best_gap <= tolerance:
            break
        middle = math.sqrt(small * large)
        count = _subset_size(coords, middle, k)
        gap = abs(count - target)
        if gap < best_gap:
            best_size, best_gap = middle, gap
        if count >= target:
            small = middle
        else:
            large = middle
        if large / small - 1.0 < 1e-12:
            break
    return best_size


def grid_select(
    coords: np.ndarray,
    k: int = 1,
    seed: int = 0,
    cell_size: float | None = None,
    fraction: float | None = None,
    *,
    tolerance: int = 0,
    max_iter: int = 200,
) -> GridSelection:
    """Keep at most ``k`` structures per occupied cell of a square grid on the map.

    The grid starts at the minimum of each coordinate, so structure ``i`` falls into
    cell ``floor((coords[i] - coords.min(axis=0)) / cell_size)``. Within a cell that
    contains more than ``k`` structures, ``k`` of them are drawn at random with ``seed``.

    Give exactly one of ``cell_size`` and ``fraction``. With ``fraction``, the cell
    size is found by bisection on its logarithm so that the number of kept structures
    is ``round(fraction * n)`` within ``tolerance`` structures. The kept count changes
    in steps as the cell size grows, and a step can be larger than one, for example
    when two points leave a shared cell at the same cell size. When no cell size
    gives a count within the tolerance, the search stops after ``max_iter`` halvings
    or once the bracket is narrower than a relative 1e-12. It then returns the
    closest count it saw and logs a WARNING with the target and achieved sizes.

    Parameters
    ----------
    coords : array_like of shape (n_structures, 2)
        2-D map positions, from ``embedding.embed``.
    k : int, default 1
        Maximum number of structures kept per cell, ``materials.selection.k``.
    seed : int, default 0
        Seed of the draw within crowded cells, from ``materials.selection.seeds``.
    cell_size : float, optional
        Side of the grid cells in map units, ``materials.selection.cell_size``.
    fraction : float, optional
        Target fraction of structures to keep, in (0, 1], from
        ``materials.selection.fractions``.
    tolerance : int, default 0
        Accepted difference, in structures, between achieved and target size.
    max_iter : int, default 200
        Maximum number of bisection steps.

    Returns
    -------
    GridSelection

    Raises
    ------
    InputError
        For coordinates that are not of shape (n, 2), empty or not finite.
    ConfigError
        For ``k < 1``, both or neither of ``cell_size`` and ``fraction``, a cell size
        that is not positive, a fraction outside (0, 1] or one that keeps no
        structure, or a negative seed.
    """
    coords = _check_coords(coords)
    n = coords.shape[0]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(
            f"k must be an integer >= 1, got {k!r}",
            field="materials.selection.k",
            fix="set materials.selection.k to the number of structures kept per "
            "grid cell, for example 1",
        )
    seed = _check_seed(seed)
    if (cell_size is None) == (fraction is None):
        raise ConfigError(
            f"give exactly one of cell_size and fraction, got cell_size={cell_size!r} "
            f"and fraction={fraction!r}",
            field="materials.selection.cell_size",
            fix="set either materials.selection.cell_size or "
            "materials.selection.fractions, not both",
        )

    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, np.integer)) or tolerance < 0:
        raise InputError(
            f"tolerance must be an integer >= 0 (structures), got {tolerance!r}",
            field="tolerance",
        )
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise InputError(f"max_iter must be an integer >= 1, got {max_iter!r}", field="max_iter")

    target = None
    if cell_size is not None:
        if not (isinstance(cell_size, (int, float, np.number)) and cell_size > 0
                and math.isfinite(cell_size)):
            raise ConfigError(
                f"cell_size must be a positive finite number in map units, got "
                f"{cell_size!r}",
                field="materials.selection.cell_size",
                fix="set materials.selection.cell_size to a positive number",
            )
        cell_size = float(cell_size)
    else:
        if not (isinstance(fraction, (int, float, np.number)) and 0 < fraction <= 1):
            raise ConfigError(
                f"fraction must be in (0, 1], got {fraction!r}",
                field="materials.selection.fractions",
                fix="list fractions such as 0.1, 0.44, 1.0 under "
                "materials.selection.fractions",
            )
        target = int(round(fraction * n))
        if target < 1:
            raise ConfigError(
                f"fraction={fraction} of n={n} structures keeps no structure",
                field="materials.selection.fractions",
                fix=f"use a fraction of at least {1 / n:.3g}",
            )
        cell_size = _bisect_cell_size(coords, int(k), target, tolerance, max_iter)

    # Shuffle with the seed, group by cell (stable sort keeps the shuffled order
    # within a cell), then keep the first k of every group.
    keys = _cell_keys(coords, cell_size)
    permutation = np.random.default_rng(seed).permutation(n)
    order = permutation[np.argsort(keys[permutation], kind="stable")]
    sorted_keys = keys[order]
    group_start = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    group_sizes = np.diff(np.r_[group_start, n])
    rank = np.arange(n) - np.repeat(group_start, group_sizes)
    indices = np.sort(order[rank < k])

    selection = GridSelection(
        indices=indices,
        cell_size=cell_size,
        n_cells_occupied=int(group_start.size),
        target_size=target,
    )
    if target is not None and abs(indices.size - target) > tolerance:
        logger.warning(
            "grid selection kept %d structures, not the target %d (fraction %.4g of "
            "%d), because no cell size found by bisection keeps a count within %d of "
            "the target. The closest count is used",
            indices.size, target, fraction, n, tolerance,
        )
    logger.info(
        "grid selection: kept %d of %d structures (%.1f %%), cell size %.4g, "
        "%d occupied cells, k=%d, seed=%d",
        indices.size, n, 100.0 * indices.size / n, cell_size,
        selection.n_cells_occupied, k, seed,
    )
    return selection


# Baselines at a given subset size.


def random_select(n: int, size: int, seed: int) -> np.ndarray:
    """Draw ``size`` distinct structure indices uniformly at random.

    Parameters
    ----------
    n : int
        Number of structures.
    size : int
        Number to keep, in [1, n].
    seed : int
        Seed of numpy's default generator.

    Returns
    -------
    ndarray of shape (size,), int64, sorted
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"n must be a positive integer, got {n!r}", field="n")
    size = _check_size(size, int(n))
    seed = _check_seed(seed)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(int(n), size=size, replace=False)).astype(np.int64)


def farthest_point_select(
    features: np.ndarray, size: int, seed: int, *, standardize: bool = True
) -> np.ndarray:
    """Select ``size`` structures by greedy farthest-point (max-min) sampling.

    Starting from a structure drawn with ``seed``, every step adds the structure whose
    Euclidean distance to the nearest already selected one is largest. Ties go to the
    lowest index. Structures with identical features are picked only after all
    distinct ones.

    Parameters
    ----------
    features : array_like of shape (n_structures, n_features)
        Per-structure features, typically ``structure_mean_descriptors``.
    size : int
        Number to keep, in [1, n_structures].
    seed : int
        Seed of the starting structure.
    standardize : bool, default True
        Scale every feature to zero mean and unit variance first, so functions with
        large values do not dominate the distance.

    Returns
    -------
    ndarray of shape (size,), int64, sorted

    Notes
    -----
    Cost is O(size * n_structures * n_features) time and O(n_structures) extra memory.
    """
    features = _check_features(features)
    size = _check_size(size, features.shape[0])
    seed = _check_seed(seed)
    if standardize:
        features = _standardize(features)

    n = features.shape[0]
    selected = np.empty(size, dtype=np.int64)
    selected[0] = np.random.default_rng(seed).integers(n)
    nearest = np.linalg.norm(features - features[selected[0]], axis=1)
    nearest[selected[0]] = -1.0  # selected structures are never picked again
    for step in range(1, size):
        pick = int(np.argmax(nearest))
        selected[step] = pick
        distance = np.linalg.norm(features - features[pick], axis=1)
        np.minimum(nearest, distance, out=nearest)
        nearest[pick] = -1.0
    logger.info("farthest-point sampling: kept %d of %d structures, seed=%d", size, n, seed)
    return np.sort(selected)


def kmeans_select(
    features: np.ndarray, size: int, seed: int, *, standardize: bool = True
) -> np.ndarray:
    """Select the structure nearest each centroid of a k-means clustering.

    scikit-learn's ``KMeans`` with ``n_clusters=size`` clusters the features. Each
    centroid then takes its nearest structure. When two centroids share a nearest
    structure, the centroid closer to it keeps it and the other takes its nearest
    structure not yet taken, so exactly ``size`` distinct structures come back.

    Parameters
    ----------
    features : array_like of shape (n_structures, n_features)
        Per-structure features, typically ``structure_mean_descriptors``.
    size : int
        Number of clusters and of structures kept, in [1, n_structures].
    seed : int
        ``random_state`` of ``KMeans``.
    standardize : bool, default True
        Scale every feature to zero mean and unit variance first.

    Returns
    -------
    ndarray of shape (size,), int64, sorted
    """
    features = _check_features(features)
    size = _check_size(size, features.shape[0])
    seed = _check_seed(seed)
    if standardize:
        features = _standardize(features)
    n = features.shape[0]

    kmeans = KMeans(n_clusters=size, random_state=seed, n_init="auto").fit(features)
    centroids = kmeans.cluster_centers_
    n_candidates = min(n, 8)
    search = NearestNeighbors(n_neighbors=n_candidates).fit(features)
    distance, candidates = search.kneighbors(centroids)

    # Centroids closest to their nearest structure choose first.
    taken = np.zeros(n, dtype=bool)
    chosen = np.empty(size, dtype=np.int64)
    n_conflicts = 0
    for c in np.argsort(distance[:, 0], kind="stable"):
        free = candidates[c][~taken[candidates[c]]]
        if free.size == 0:
            # All close candidates are taken: rank every structure for this centroid.
            full_order = np.argsort(np.linalg.norm(features - centroids[c], axis=1))
            free = full_order[~taken[full_order]]
        if free[0] != candidates[c][0]:
            n_conflicts += 1
        chosen[c] = free[0]
        taken[free[0]] = True
    logger.info(
        "k-means selection: kept %d of %d structures, seed=%d, %d centroids took a "
        "structure other than their nearest",
        size, n, seed, n_conflicts,
    )
    return np.sort(chosen)


def structure_mean_descriptors(
    values: np.ndarray,
    species: np.ndarray,
    offsets: np.ndarray,
    elements: list[int],
) -> np.ndarray:
    """Average the atoms' descriptors per structure and element.

    Parameters
    ----------
    values : array_like of shape (n_atoms_total, n_features)
    species : array_like of shape (n_atoms_total,)
        Atomic numbers, each in ``elements``.
    offsets : array_like of shape (n_structures + 1,)
    elements : list of int
        Atomic numbers, in the order of the blocks of the result.

    Returns
    -------
    ndarray of shape (n_structures, n_elements * n_features), float64
        Block ``e`` contains the mean over the structure's atoms of element
        ``elements[e]``, or zeros when the structure has no such atom.
    """
    values, species, offsets = check_descriptor_arrays(values, species, offsets)
    elements = check_elements(elements)
    block = element_positions(species, elements)
    n_structures = offsets.size - 1
    n_elements, n_features = len(elements), values.shape[1]

    group = np.repeat(np.arange(n_structures), np.diff(offsets)) * n_elements + block
    n_groups = n_structures * n_elements
    n_atoms = np.bincount(group, minlength=n_groups).astype(np.float64)
    means = np.zeros((n_groups, n_features))
    for f in range(n_features):
        means[:, f] = np.bincount(group, weights=values[:, f], minlength=n_groups)
    means /= np.where(n_atoms > 0, n_atoms, 1.0)[:, None]
    return means.reshape(n_structures, n_elements * n_features)


METHODS = ("dvlae", "random", "fps", "kmeans", "full")


def baseline_select(
    method: str, features: np.ndarray, size: int, seed: int
) -> np.ndarray:
    """Run the baseline ``method`` ("random", "fps", "kmeans" or "full") at ``size``.

    "full" returns every index and ignores ``size`` and ``seed``. DV-LAE selection
    needs the map and goes through ``grid_select`` instead.
    """
    features = _check_features(features)
    n = features.shape[0]
    if method == "random":
        return random_select(n, size, seed)
    if method == "fps":
        return farthest_point_select(features, size, seed)
    if method == "kmeans":
        return kmeans_select(features, size, seed)
    if method == "full":
        return np.arange(n, dtype=np.int64)
    raise ConfigError(
        f"method must be one of 'random', 'fps', 'kmeans', 'full' for a baseline, "
        f"got {method!r}",
        field="materials.selection.methods",
        fix="use grid_select for 'dvlae'",
    )
