"""Held-out test split of a structure table, stratified by a label column.

The split is made once, before any selection or training, so that no selection method
and no model uses the test structures.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)


def split_train_test(
    table: pd.DataFrame,
    test_fraction: float,
    seed: int,
    stratify_column: str | None = "config_type",
) -> tuple[list[str], list[str]]:
    """Split the structure ids of ``table`` into training and test ids.

    The test set has ``round(test_fraction * n)`` structures, at least 1 and at most
    ``n - 1``. When ``stratify_column`` is present and has more than one value, every
    stratum gives ``floor(test_fraction * size)`` structures to the test set and the
    remaining test places go to the strata with the largest fractional parts (ties
    broken by the seed). A stratum always keeps at least one training structure, so a
    stratum of one structure is never tested. When this rule caps a stratum, its places
    go to other strata.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per structure with a unique ``id`` column, e.g. from
        :func:`equipipe.materials.ingest.structure_table`.
    test_fraction : float
        Fraction of structures held out, in (0, 1).
    seed : int
        Seed of the random choice.
    stratify_column : str or None, default "config_type"
        Label to stratify by; None, an absent column or a single value give a plain
        random split. Missing labels form their own stratum.

    Returns
    -------
    train_ids, test_ids : list of str
        Disjoint, together all ids, each in table order.

    Raises
    ------
    ValueError
        If ``test_fraction`` is not in (0, 1), the table has fewer than 2 rows, no
        ``id`` column or duplicate ids, or every stratum has a single structure.
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table must be a pandas DataFrame, got {type(table).__name__}")
    if not (isinstance(test_fraction, (int, float)) and 0 < test_fraction < 1):
        raise ValueError(f"test_fraction={test_fraction!r} must be a number in (0, 1), e.g. 0.2")
    if "id" not in table.columns:
        raise ValueError(f"table has no 'id' column (columns: {list(table.columns)}); pass the structure table")
    n_structures = len(table)
    if n_structures < 2:
        raise ValueError(f"table has {n_structures} rows; a train/test split needs at least 2 structures")
    ids = table["id"].astype(str).to_numpy()
    duplicated = pd.Series(ids)[pd.Series(ids).duplicated()].unique()
    if len(duplicated):
        raise ValueError(f"table has duplicate ids {list(duplicated[:5])}; every structure needs a unique id")

    rng = np.random.default_rng(seed)
    n_test = min(max(round(test_fraction * n_structures), 1), n_structures - 1)
    labels = None
    if stratify_column is not None and stratify_column in table.columns:
        labels = table[stratify_column].astype("string").fillna("<missing>").to_numpy()
        if len(set(labels)) < 2:
            labels = None
    elif stratify_column is not None:
        logger.info("column %r not in the table; making an unstratified split", stratify_column)

    if labels is None:
        test_positions = rng.permutation(n_structures)[:n_test]
    else:
        test_positions = _stratified_positions(labels, n_test, test_fraction, rng)

    is_test = np.zeros(n_structures, dtype=bool)
    is_test[test_positions] = True
    train_ids = ids[~is_test].tolist()
    test_ids = ids[is_test].tolist()
    logger.info(
        "split %d structures into %d training and %d test (fraction %.3f, seed %d, %s)",
        n_structures, len(train_ids), len(test_ids), test_fraction, seed,
        "unstratified" if labels is None else f"stratified by {stratify_column}",
    )
    return train_ids, test_ids


def _stratified_positions(labels: np.ndarray, n_test: int, test_fraction: float,
                          rng: np.random.Generator) -> np.ndarray:
    """Return the row positions of a stratified test set of ``n_test`` rows."""
    strata = sorted(set(labels))
    members = {label: np.flatnonzero(labels == label) for label in strata}
    sizes = np.array([len(members[label]) for label in strata])
    capacity = sizes - 1  # every stratum keeps one training structure

    # Largest-remainder allocation: floors first, then the largest fractional parts.
    exact = test_fraction * sizes
    counts = np.minimum(np.floor(exact).astype(int), capacity)
    remainders = exact - np.floor(exact)
    tie_breaker = rng.random(len(strata))
    order = np.lexsort((tie_breaker, -remainders))
    while counts.sum() < n_test and (counts < capacity).any():
        for k in order:
            if counts.sum() >= n_test:
                break
            if counts[k] < capacity[k]:
                counts[k] += 1

    if counts.sum() == 0:
        raise ValueError(
            f"every one of the {len(strata)} strata has a single structure, so none can be held out; "
            "pass stratify_column=None or add structures"
        )
    positions = [rng.permutation(members[label])[:count] for label, count in zip(strata, counts)]
    total = int(counts.sum())
    if total != n_test:
        logger.warning(
            "test set has %d structures instead of %d: %d of %d strata have a single structure, "
            "which always stays in training",
            total, n_test, int((sizes == 1).sum()), len(strata),
        )
    return np.concatenate(positions) if positions else np.empty(0, dtype=int)
