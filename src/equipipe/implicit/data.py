"""Image data sets for the implicit networks and their Gaussian-process limit.

Readers for scikit-learn's digits (the default, shipped with scikit-learn), MNIST and
Fashion-MNIST IDX files (plain or gzip), CIFAR-10 python batches and ``.npz`` files with
arrays ``X`` and ``y``. :func:`load_dataset` reads one source, keeps the chosen classes,
splits off the held-out test set once, draws a seeded stratified subset of the training
set and preprocesses every image into a float64 row vector.

CIFAR-10 batches are pickles. They are read with a restricted unpickler that only
rebuilds numpy arrays, so a tampered file cannot run code: every other global is
rejected before it is imported.

An IDX file is big-endian. It starts with two zero bytes, a type code byte (0x08
unsigned byte, 0x09 signed byte, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64)
and a byte with the number of dimensions. One uint32 per dimension and the data in C
order follow. Source: Y. LeCun, C. Cortes and C. Burges, "The MNIST database of
handwritten digits".
"""

from __future__ import annotations

import gzip
import io
import logging
import os
import pickle
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from equipipe.errors import ConfigError, InputError

logger = logging.getLogger(__name__)

SOURCES = ("digits", "mnist", "fashion-mnist", "cifar10", "npz")
PREPROCESSING = ("standardize", "minmax")

# Fraction of the samples held out for testing when the source has no test split of
# its own (digits, an .npz file without test_path) and n_test is not set.
DEFAULT_TEST_FRACTION = 0.2

_IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

# Standard file names of the MNIST and Fashion-MNIST distributions; some mirrors use
# a dot in place of the dash before "idx".
_IDX_NAMES = {
    "train_images": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "train_labels": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "test_images": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "test_labels": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}

_CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR_TEST_BATCH = "test_batch"
_CIFAR_PIXELS = 3 * 32 * 32


@dataclass
class DataConfig:
    """Source, subset and preprocessing of the images to load.

    Parameters
    ----------
    source : {"digits", "mnist", "fashion-mnist", "cifar10", "npz"}, default "digits"
        ``digits`` is scikit-learn's 1,797 8x8 handwritten digits and needs no file.
    path : str, optional
        ``mnist``/``fashion-mnist``: directory with the four IDX files under their
        standard names (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
        ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each plain or with
        ``.gz``). ``cifar10``: the ``cifar-10-batches-py`` directory (``data_batch_1``
        to ``data_batch_5`` and ``test_batch``) or its parent. ``npz``: the file, with
        ``X`` of shape (n_samples, ...) and integer labels ``y`` of shape (n_samples,).
    test_path : str, optional
        ``npz`` only: a second file with the test samples. Without it the test set is
        split off ``path``.
    classes : list of int, optional
        Labels to keep; all labels present in the training data by default.
    n_per_class : int, optional
        Training samples drawn from each class. Mutually exclusive with ``n_total``.
    n_total : int, optional
        Training samples drawn in all, stratified by class.
    n_test : int, optional
        Test samples, stratified by class. By default the whole official test set
        (MNIST, Fashion-MNIST, CIFAR-10) or 20 % of the samples (digits, npz).
    preprocessing : {"standardize", "minmax"}, default "standardize"
        ``standardize``: each image separately gets zero mean and unit variance over its
        pixels, so every row has Euclidean norm sqrt(d) and x . x / d = 1.
        ``minmax``: pixel values are mapped to [0, 1] with the minimum and maximum of
        the training set (test values outside that range stay outside).
    seed : int, default 0
        Seed of the test split and of the training subset.
    """

    source: Literal["digits", "mnist", "fashion-mnist", "cifar10", "npz"] = "digits"
    path: str | None = None
    test_path: str | None = None
    classes: list[int] | None = None
    n_per_class: int | None = None
    n_total: int | None = None
    n_test: int | None = None
    preprocessing: Literal["standardize", "minmax"] = "standardize"
    seed: int = 0


@dataclass
class Dataset:
    """Preprocessed training and test images with their labels.

    Attributes
    ----------
    X_train : ndarray of shape (n_train, d), float64
    y_train : ndarray of shape (n_train,), int64
        Original labels (not remapped), each one of ``classes``.
    X_test : ndarray of shape (n_test, d), float64
    y_test : ndarray of shape (n_test,), int64
    classes : ndarray of shape (n_classes,), int64
        Sorted labels kept; column ``k`` of a one-hot target is ``classes[k]``.
    source : str
        Description of the files read and the selection made.
    image_shape : tuple of int
        Shape of one image before flattening, e.g. (8, 8) or (3, 32, 32).
    train_ids, test_ids : ndarray of str
        Stable id of each row: ``"<split>:<index in the source split>"``.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: np.ndarray
    source: str
    image_shape: tuple[int, ...] = ()
    train_ids: np.ndarray = field(default_factory=lambda: np.array([], dtype=str))
    test_ids: np.ndarray = field(default_factory=lambda: np.array([], dtype=str))

    def one_hot(self, y: np.ndarray) -> np.ndarray:
        """Return the one-hot targets of labels ``y`` as float64 of shape (len(y), n_classes)."""
        columns = np.searchsorted(self.classes, y)
        targets = np.zeros((len(y), len(self.classes)))
        targets[np.arange(len(y)), columns] = 1.0
        return targets


@dataclass
class _RawSplit:
    """Images and labels of one source split before selection: X (n, ...), y (n,)."""

    X: np.ndarray
    y: np.ndarray
    origin: str  # file (or description) that X came from, for error messages
    split: str  # "train" or "test", the prefix of the stable ids


# --------------------------------------------------------------------------- readers


def _open_maybe_gzip(path: Path) -> bytes:
    """Return the bytes of ``path``, decompressed when it starts with the gzip magic."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise InputError(
                f"gzip data is corrupt or truncated ({error})",
                path=path,
                fix="download the file again",
            ) from error
    return raw


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (plain or gzip) into a numpy array of its declared shape.

    Parameters
    ----------
    path : str or os.PathLike
        IDX file such as ``train-images-idx3-ubyte`` or ``t10k-labels-idx1-ubyte.gz``.

    Returns
    -------
    ndarray
        Array with the declared dimensions, in native byte order.

    Raises
    ------
    InputError
        If the file is missing, the header is invalid, or the data length does not
        match the declared dimensions.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("IDX file not found", path=path, fix="check the data path in the config")
    raw = _open_maybe_gzip(path)

    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise InputError(
            f"invalid IDX magic number {raw[:4].hex() or 'empty file'}: expected two zero "
            "bytes, a type code and the number of dimensions",
            path=path,
            location="bytes 0-3",
            fix="point the config at an uncompressed or gzip IDX file from the MNIST distribution",
        )
    type_code, n_dims = raw[2], raw[3]
    if type_code not in _IDX_DTYPES:
        raise InputError(
            f"unknown IDX type code 0x{type_code:02X}; expected one of "
            + ", ".join(f"0x{code:02X}" for code in _IDX_DTYPES),
            path=path,
            location="byte 2",
            fix="check that the file is an IDX file",
        )
    header_size = 4 + 4 * n_dims
    if n_dims == 0 or len(raw) < header_size:
        raise InputError(
            f"IDX header declares {n_dims} dimensions but the file has only {len(raw)} bytes",
            path=path,
            location="header",
            fix="download the file again",
        )

    dims = tuple(int(value) for value in np.frombuffer(raw, dtype=">u4", count=n_dims, offset=4))
    dtype = _IDX_DTYPES[type_code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    actual = len(raw) - header_size
    if actual != expected:
        raise InputError(
            f"IDX data has {actual} bytes but the header dimensions {dims} of "
            f"{dtype.name} need {expected}",
            path=path,
            location=f"bytes {header_size}-",
            fix="the file is truncated or not an IDX file; download it again",
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header_size).reshape(dims)
    return data.astype(dtype.newbyteorder("="))


def _find_idx_file(directory: Path, key: str) -> Path:
    for stem in _IDX_NAMES[key]:
        for suffix in ("", ".gz"):
            candidate = directory / f"{stem}{suffix}"
            if candidate.is_file():
                return candidate
    names = ", ".join(f"{stem}[.gz]" for stem in _IDX_NAMES[key])
    raise InputError(
        f"no {key.replace('_', ' ')} IDX file in the directory; looked for {names}",
        path=directory,
        field="path",
        fix="set data.path to the directory that contains the four MNIST-format IDX files",
    )


def _read_idx_pair(images_path: Path, labels_path: Path, split: str) -> _RawSplit:
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim < 2:
        raise InputError(
            f"image file has shape {images.shape}; expected (n_images, rows, columns)",
            path=images_path,
            fix="swap the image and label files if they are mixed up",
        )
    if labels.ndim != 1:
        raise InputError(
            f"label file has shape {labels.shape}; expected (n_labels,)",
            path=labels_path,
            fix="swap the image and label files if they are mixed up",
        )
    if len(images) != len(labels):
        raise InputError(
            f"{len(images)} images in {images_path.name} but {len(labels)} labels",
            path=labels_path,
            field="labels",
            fix="use the label file that belongs to the image file (train with train, t10k with t10k)",
        )
    return _RawSplit(images, labels.astype(np.int64), str(images_path), split)


def _read_idx_directory(directory: Path) -> tuple[_RawSplit, _RawSplit]:
    if not directory.is_dir():
        raise InputError(
            "MNIST data directory not found",
            path=directory,
            field="path",
            fix="set data.path to the directory with the IDX files",
        )
    train = _read_idx_pair(
        _find_idx_file(directory, "train_images"),
        _find_idx_file(directory, "train_labels"),
        "train",
    )
    test = _read_idx_pair(
        _find_idx_file(directory, "test_images"), _find_idx_file(directory, "test_labels"), "test"
    )
    if train.X.shape[1:] != test.X.shape[1:]:
        raise InputError(
            f"training images have shape {train.X.shape[1:]} but test images {test.X.shape[1:]}",
            path=test.origin,
            fix="use training and test files of the same data set",
        )
    return train, test


def _encode_latin1(text: str, encoding: str = "utf-8") -> bytes:
    # Python 3 pickles bytes with protocol 2 as a call to _codecs.encode(text, "latin1").
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r} is not allowed")
    return text.encode("latin1")


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickler that rebuilds numpy arrays and plain containers and rejects every other global.

    The globals below are all that CIFAR-10 batches need. The official files, pickled
    by Python 2, use ``numpy.core.multiarray._reconstruct``, ``numpy.ndarray`` and
    ``numpy.dtype``. Batches pickled by Python 3 with numpy 2 name ``numpy._core`` instead
    and call ``_codecs.encode`` for bytes. Pickle opcodes build dicts, lists, strings,
    bytes and ints without any global.
    """

    # ndarray.__reduce__ returns numpy's array rebuilding function, whichever private
    # module contains it in the installed numpy version.
    _RECONSTRUCT = np.zeros(0).__reduce__()[0]
    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
        ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _encode_latin1,
    }

    def find_class(self, module: str, name: str) -> object:
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"global {module}.{name} is not allowed in a CIFAR-10 batch"
            ) from None


def read_cifar_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 python batch without running code stored in the pickle.

    Parameters
    ----------
    path : str or os.PathLike
        A file such as ``data_batch_1`` or ``test_batch`` from ``cifar-10-python.tar.gz``.

    Returns
    -------
    images : ndarray of shape (n, 3, 32, 32), uint8
        Channels red, green, blue.
    labels : ndarray of shape (n,), int64
        Class indices 0 to 9.

    Raises
    ------
    InputError
        If the pickle refers to anything but numpy arrays (for example a function call
        such as ``os.system``), lacks ``data`` or ``labels``, or has wrong shapes, dtype
        or labels.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("CIFAR-10 batch not found", path=path, fix="check data.path in the config")
    try:
        batch = _ArrayOnlyUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except pickle.UnpicklingError as error:
        raise InputError(
            f"rejected pickle content: {error}; only numpy arrays, lists, dicts, strings and "
            "numbers are read",
            path=path,
            fix="use the original batches from cifar-10-python.tar.gz; this file may be tampered with",
        ) from error
    except (EOFError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise InputError(
            f"file is not a readable CIFAR-10 python batch ({type(error).__name__}: {error})",
            path=path,
            fix="use the batches from cifar-10-python.tar.gz",
        ) from error

    if not isinstance(batch, dict):
        raise InputError(
            f"batch is a {type(batch).__name__}; expected a dict with keys data and labels",
            path=path,
            fix="use the batches from cifar-10-python.tar.gz",
        )
    entries = {
        (key.decode("latin1") if isinstance(key, bytes) else key): value
        for key, value in batch.items()
    }
    for key in ("data", "labels"):
        if key not in entries:
            raise InputError(
                f"batch has no {key!r} entry; keys present: {sorted(map(str, entries))}",
                path=path,
                field=key,
                fix="use the batches from cifar-10-python.tar.gz",
            )

    data = entries["data"]
    if not isinstance(data, np.ndarray):
        description = type(data).__name__
    else:
        description = f"{data.dtype} array of shape {data.shape}"
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != _CIFAR_PIXELS
    ):
        raise InputError(
            f"data is a {description}; expected a uint8 array of shape (n, {_CIFAR_PIXELS})",
            path=path,
            field="data",
            fix="use the batches from cifar-10-python.tar.gz",
        )
    try:
        labels = np.asarray(entries["labels"], dtype=np.int64)
    except (TypeError, ValueError) as error:
        raise InputError(
            f"labels are not integers ({error})",
            path=path,
            field="labels",
            fix="use the batches from cifar-10-python.tar.gz",
        ) from error
    if labels.shape != (len(data),):
        raise InputError(
            f"{len(data)} images but labels of shape {labels.shape}",
            path=path,
            field="labels",
            fix="use the batches from cifar-10-python.tar.gz",
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise InputError(
            f"labels range from {labels.min()} to {labels.max()}; CIFAR-10 labels are 0 to 9",
            path=path,
            field="labels",
            fix="use the batches from cifar-10-python.tar.gz",
        )
    return data.reshape(-1, 3, 32, 32), labels


def _read_cifar_directory(directory: Path) -> tuple[_RawSplit, _RawSplit]:
    if (directory / "cifar-10-batches-py").is_dir():
        directory = directory / "cifar-10-batches-py"
    if not directory.is_dir():
        raise InputError(
            "CIFAR-10 directory not found",
            path=directory,
            field="path",
            fix="set data.path to the extracted cifar-10-batches-py directory",
        )
    missing = [
        name
        for name in (*_CIFAR_TRAIN_BATCHES, _CIFAR_TEST_BATCH)
        if not (directory / name).is_file()
    ]
    if missing:
        raise InputError(
            f"missing CIFAR-10 batches: {', '.join(missing)}",
            path=directory,
            field="path",
            fix="extract cifar-10-python.tar.gz completely and point data.path at cifar-10-batches-py",
        )
    parts = [read_cifar_batch(directory / name) for name in _CIFAR_TRAIN_BATCHES]
    train = _RawSplit(
        np.concatenate([images for images, _ in parts]),
        np.concatenate([labels for _, labels in parts]),
        str(directory),
        "train",
    )
    test_images, test_labels = read_cifar_batch(directory / _CIFAR_TEST_BATCH)
    test = _RawSplit(test_images, test_labels, str(directory / _CIFAR_TEST_BATCH), "test")
    return train, test


def read_npz(path: str | os.PathLike, split: str = "train") -> _RawSplit:
    """Read ``X`` (n_samples, ...) and integer labels ``y`` (n_samples,) from an ``.npz`` file.

    Object arrays are rejected (``allow_pickle=False``), so the file cannot run code.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(
            ".npz file not found", path=path, field="path", fix="check data.path in the config"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in ("X", "y") if key not in archive.files]
            if missing:
                raise InputError(
                    f"no array {' or '.join(missing)}; arrays present: {archive.files}",
                    path=path,
                    field=missing[0],
                    fix="save the file with np.savez(path, X=images, y=labels)",
                )
            X = archive["X"]
            y = archive["y"]
    except ValueError as error:
        # np.load raises ValueError for object arrays (pickles) and for non-npz content.
        raise InputError(
            f"cannot read the file as .npz without pickles ({error})",
            path=path,
            fix="save plain numeric arrays with np.savez(path, X=images, y=labels)",
        ) from error

    if X.ndim < 2 or not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise InputError(
            f"X is a {X.dtype} array of shape {X.shape}; expected numbers of shape (n_samples, ...)",
            path=path,
            field="X",
            fix="store one image per row, e.g. shape (n_samples, 784) or (n_samples, 28, 28)",
        )
    if y.shape != (len(X),):
        raise InputError(
            f"y has shape {y.shape} but X has {len(X)} samples; expected y of shape ({len(X)},)",
            path=path,
            field="y",
            fix="store one label per image",
        )
    if not np.issubdtype(y.dtype, np.integer):
        if (
            not np.issubdtype(y.dtype, np.floating)
            or not np.all(np.isfinite(y))
            or np.any(y != np.round(y))
        ):
            raise InputError(
                f"y has dtype {y.dtype} with non-integer values; labels must be integers",
                path=path,
                field="y",
                fix="store class labels as integers",
            )
    return _RawSplit(X, y.astype(np.int64), str(path), split)


# --------------------------------------------------------------------------- selection


def _check_config(config: DataConfig) -> None:
    if config.source not in SOURCES:
        raise ConfigError(
            f"source={config.source!r} is not one of {', '.join(SOURCES)}",
            field="source",
            fix="set data.source to digits, mnist, fashion-mnist, cifar10 or npz",
        )
    if config.preprocessing not in PREPROCESSING:
        raise ConfigError(
            f"preprocessing={config.preprocessing!r} is not one of {', '.join(PREPROCESSING)}",
            field="preprocessing",
            fix="set data.preprocessing to standardize or minmax",
        )
    if config.source != "digits" and not config.path:
        raise ConfigError(
            f"source={config.source!r} needs data.path",
            field="path",
            fix="set data.path to the data file or directory, or use source: digits",
        )
    if config.n_per_class is not None and config.n_total is not None:
        raise ConfigError(
            f"n_per_class={config.n_per_class} and n_total={config.n_total} are both set",
            field="n_per_class",
            fix="set only one of data.n_per_class and data.n_total",
        )
    for name in ("n_per_class", "n_total", "n_test"):
        value = getattr(config, name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ConfigError(
                f"{name}={value!r} must be a positive integer",
                field=name,
                fix=f"set data.{name} to a positive integer or remove it",
            )
    if config.classes is not None and len(config.classes) < 2:
        raise ConfigError(
            f"classes={config.classes!r} must list at least two labels",
            field="classes",
            fix="list two or more labels, or remove data.classes to keep all",
        )


def _check_finite(raw: _RawSplit) -> None:
    if np.issubdtype(raw.X.dtype, np.floating):
        bad_rows = np.flatnonzero(~np.isfinite(raw.X.reshape(len(raw.X), -1)).all(axis=1))
        if bad_rows.size:
            raise InputError(
                f"{bad_rows.size} samples contain NaN or infinite values (first: sample {bad_rows[0]})",
                path=raw.origin,
                location=f"sample {bad_rows[0]}",
                field="X",
                fix="remove or impute those samples before loading",
            )


def _keep_classes(raw: _RawSplit, classes: np.ndarray) -> np.ndarray:
    """Return the indices of ``raw`` whose label is in ``classes``."""
    return np.flatnonzero(np.isin(raw.y, classes))


def _stratified_take(
    indices: np.ndarray, y: np.ndarray, n_take: int, seed: int, origin: str, field_name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``indices`` into (taken, rest) with ``n_take`` taken, stratified by ``y[indices]``."""
    if n_take > len(indices):
        raise ConfigError(
            f"{field_name}={n_take} exceeds the {len(indices)} samples available",
            path=origin,
            field=field_name,
            fix=f"lower data.{field_name} to at most {len(indices)}",
        )
    if n_take == len(indices):
        return np.random.default_rng(seed).permutation(indices), indices[:0]
    labels = y[indices]
    _, counts = np.unique(labels, return_counts=True)
    if counts.min() < 2 or n_take < len(counts) or len(indices) - n_take < len(counts):
        raise ConfigError(
            f"cannot draw {field_name}={n_take} of {len(indices)} samples with every one of "
            f"{len(counts)} classes on both sides (smallest class has {counts.min()} samples)",
            path=origin,
            field=field_name,
            fix=f"choose data.{field_name} between {len(counts)} and {len(indices) - len(counts)}",
        )
    taken, rest = train_test_split(indices, train_size=n_take, stratify=labels, random_state=seed)
    return np.asarray(taken), np.asarray(rest)


def _take_per_class(
    indices: np.ndarray,
    y: np.ndarray,
    classes: np.ndarray,
    n_per_class: int,
    seed: int,
    origin: str,
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    chosen = []
    for label in classes:
        members = indices[y[indices] == label]
        if len(members) < n_per_class:
            raise InputError(
                f"class {label} has {len(members)} training samples but n_per_class={n_per_class}",
                path=origin,
                field="n_per_class",
                fix=f"lower data.n_per_class to at most {len(members)} or drop class {label} from data.classes",
            )
        chosen.append(rng.choice(members, size=n_per_class, replace=False))
    return rng.permutation(np.concatenate(chosen))


def _preprocess(
    X_train: np.ndarray, X_test: np.ndarray, method: str, origin: str
) -> tuple[np.ndarray, np.ndarray]:
    if method == "standardize":
        return _standardize(X_train, origin, "train"), _standardize(X_test, origin, "test")
    low, high = X_train.min(), X_train.max()
    if high <= low:
        raise InputError(
            f"all training pixels equal {low}, so min-max scaling is undefined",
            path=origin,
            field="X",
            fix="check the data file",
        )
    return (X_train - low) / (high - low), (X_test - low) / (high - low)


def _standardize(X: np.ndarray, origin: str, split: str) -> np.ndarray:
    centred = X - X.mean(axis=1, keepdims=True)
    scale = centred.std(axis=1, keepdims=True)
    constant = np.flatnonzero(scale[:, 0] == 0)
    if constant.size:
        raise InputError(
            f"{constant.size} {split} images have all pixels equal (first: row {constant[0]} "
            "of the selection), so per-sample standardisation divides by zero",
            path=origin,
            field="preprocessing",
            fix="use data.preprocessing: minmax or remove blank images from the data",
        )
    return centred / scale


# --------------------------------------------------------------------------- public entry


def _read_source(config: DataConfig) -> tuple[_RawSplit, _RawSplit | None, str]:
    """Return (train, official test or None, description) of the configured source."""
    if config.source == "digits":
        bunch = load_digits()
        raw = _RawSplit(bunch.images, bunch.target.astype(np.int64), "scikit-learn digits", "all")
        return raw, None, "scikit-learn load_digits (1,797 8x8 images, 10 classes)"
    path = Path(config.path).expanduser()
    if config.source in ("mnist", "fashion-mnist"):
        train, test = _read_idx_directory(path)
        return train, test, f"{config.source} IDX files in {path}"
    if config.source == "cifar10":
        train, test = _read_cifar_directory(path)
        return train, test, f"CIFAR-10 python batches in {path}"
    train = read_npz(path, split="all" if config.test_path is None else "train")
    test = None
    if config.test_path is not None:
        test = read_npz(Path(config.test_path).expanduser(), split="test")
        if test.X.shape[1:] != train.X.shape[1:]:
            raise InputError(
                f"test samples have shape {test.X.shape[1:]} but training samples {train.X.shape[1:]}",
                path=test.origin,
                field="X",
                fix="store test images with the same shape as the training images",
            )
    description = f".npz file {path}" + (f" with test file {config.test_path}" if test else "")
    return train, test, description


def load_dataset(config: DataConfig) -> Dataset:
    """Read, select, split and preprocess the images described by ``config``.

    Steps:

    1. Read the source and keep the labels in ``config.classes``.
    2. When the source has no test split of its own, split off the test set
       (stratified, seeded) before any training subset is drawn.
    3. Draw ``n_per_class`` or ``n_total`` training samples and ``n_test`` test samples
       (stratified, seeded).
    4. Flatten each image and preprocess it.

    Parameters
    ----------
    config : DataConfig

    Returns
    -------
    Dataset
        X arrays of shape (n, d) float64, y arrays of shape (n,) int64.

    Raises
    ------
    ConfigError
        For an invalid config value or a subset larger than the data.
    InputError
        For a missing or malformed file, mismatched image and label counts, NaN values,
        requested classes absent from the data, or too few samples in a class.
    """
    _check_config(config)
    train, test, description = _read_source(config)
    _check_finite(train)
    if test is not None:
        _check_finite(test)

    present = np.unique(train.y)
    if config.classes is None:
        classes = present
    else:
        classes = np.unique(np.asarray(config.classes, dtype=np.int64))
        absent = np.setdiff1d(classes, present)
        if absent.size:
            raise InputError(
                f"classes {absent.tolist()} do not occur in the labels, which are {present.tolist()}",
                path=train.origin,
                field="classes",
                fix="choose data.classes among the labels present",
            )
    if len(classes) < 2:
        raise InputError(
            f"the data contain only the label(s) {classes.tolist()}; classification needs two",
            path=train.origin,
            field="y",
            fix="use data with at least two classes",
        )

    # The test split comes first, so that no test sample can enter the training subset.
    train_pool = _keep_classes(train, classes)
    if test is None:
        n_test = config.n_test or max(len(classes), round(DEFAULT_TEST_FRACTION * len(train_pool)))
        if n_test > len(train_pool) - len(classes):
            raise ConfigError(
                f"n_test={n_test} leaves fewer than one training sample per class out of "
                f"{len(train_pool)} samples",
                path=train.origin,
                field="n_test",
                fix=f"lower data.n_test to at most {len(train_pool) - len(classes)}",
            )
        test_rows, train_pool = _stratified_take(
            train_pool, train.y, n_test, config.seed, train.origin, "n_test"
        )
        test = _RawSplit(train.X, train.y, train.origin, train.split)
    else:
        test_pool = _keep_classes(test, classes)
        missing = np.setdiff1d(classes, test.y[test_pool])
        if missing.size:
            raise InputError(
                f"classes {missing.tolist()} have no test samples",
                path=test.origin,
                field="classes",
                fix="drop those classes from data.classes or use a test file that contains them",
            )
        if config.n_test is None:
            test_rows = test_pool
        else:
            test_rows, _ = _stratified_take(
                test_pool, test.y, config.n_test, config.seed, test.origin, "n_test"
            )

    if config.n_per_class is not None:
        train_rows = _take_per_class(
            train_pool, train.y, classes, config.n_per_class, config.seed, train.origin
        )
    elif config.n_total is not None:
        train_rows, _ = _stratified_take(
            train_pool, train.y, config.n_total, config.seed, train.origin, "n_total"
        )
    else:
        train_rows = np.random.default_rng(config.seed).permutation(train_pool)

    X_train = train.X[train_rows].reshape(len(train_rows), -1).astype(np.float64)
    X_test = test.X[test_rows].reshape(len(test_rows), -1).astype(np.float64)
    X_train, X_test = _preprocess(X_train, X_test, config.preprocessing, train.origin)

    dataset = Dataset(
        X_train=X_train,
        y_train=train.y[train_rows].copy(),
        X_test=X_test,
        y_test=test.y[test_rows].copy(),
        classes=classes,
        source=f"{description}; classes {classes.tolist()}; {config.preprocessing}; seed {config.seed}",
        image_shape=tuple(int(size) for size in train.X.shape[1:]),
        train_ids=np.array([f"{train.split}:{row}" for row in train_rows]),
        test_ids=np.array([f"{test.split}:{row}" for row in test_rows]),
    )
    logger.info(
        "loaded %d training and %d test images of dimension %d, %d classes, from %s",
        len(X_train),
        len(X_test),
        X_train.shape[1],
        len(classes),
        description,
    )
    return dataset
