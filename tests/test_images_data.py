"""Tests of the image readers and of load_dataset's selection and preprocessing."""

from __future__ import annotations

import gzip
import os
import pickle
import struct

import numpy as np
import pytest

from equipipe.errors import ConfigError, InputError
from equipipe.implicit.data import DataConfig, load_dataset, read_cifar_batch, read_idx

# --------------------------------------------------------------------------- helpers


def write_idx(path, array: np.ndarray, type_code: int = 0x08, compress: bool = False) -> None:
    """Write ``array`` as an IDX file (big-endian header and data)."""
    dtype = {0x08: ">u1", 0x0B: ">i2", 0x0D: ">f4"}[type_code]
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(dtype).tobytes()
    if compress:
        payload = gzip.compress(payload)
    path.write_bytes(payload)


def tiny_images(
    n_per_class: int, n_classes: int, seed: int, shape=(4, 4)
) -> tuple[np.ndarray, np.ndarray]:
    """Random uint8 images (no constant image) and labels 0..n_classes-1, shuffled."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_classes), n_per_class)
    rng.shuffle(labels)
    images = rng.integers(0, 256, size=(len(labels), *shape), dtype=np.uint8)
    images[:, 0, 0] = 0
    images[:, 0, 1] = 255
    return images, labels.astype(np.uint8)


def write_mnist_dir(
    directory, n_train_per_class=6, n_test_per_class=3, n_classes=3, compress=False
):
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if compress else ""
    train_x, train_y = tiny_images(n_train_per_class, n_classes, seed=1)
    test_x, test_y = tiny_images(n_test_per_class, n_classes, seed=2)
    write_idx(directory / f"train-images-idx3-ubyte{suffix}", train_x, compress=compress)
    write_idx(directory / f"train-labels-idx1-ubyte{suffix}", train_y, compress=compress)
    write_idx(directory / f"t10k-images-idx3-ubyte{suffix}", test_x, compress=compress)
    write_idx(directory / f"t10k-labels-idx1-ubyte{suffix}", test_y, compress=compress)
    return train_x, train_y, test_x, test_y


def cifar_batch_bytes(
    n: int, seed: int, python2_names: bool = False
) -> tuple[bytes, np.ndarray, list[int]]:
    """Pickle a batch laid out like the official CIFAR-10 files: protocol 2, bytes keys."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = [(seed + i) % 10 for i in range(n)]  # every class once per 10 images
    batch = {
        b"batch_label": b"training batch 1 of 5",
        b"labels": labels,
        b"data": data,
        b"filenames": [f"image_{i}.png".encode() for i in range(n)],
    }
    payload = pickle.dumps(batch, protocol=2)
    if python2_names:
        # The official files were written by numpy 1 under Python 2 and name numpy.core.
        payload = payload.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    return payload, data, labels


def python2_batch_bytes(data: np.ndarray, labels: list[int]) -> bytes:
    """Assemble a batch pickle opcode by opcode as Python 2's cPickle wrote the official files.

    Python 2 stores str (the keys and the raw pixel bytes) with the SHORT_BINSTRING (U) and
    BINSTRING (T) opcodes, which Python 3's pickler never emits, and names numpy.core.
    """
    raw = data.tobytes()
    array = (
        b"cnumpy.core.multiarray\n_reconstruct\n"
        + b"cnumpy\nndarray\n"
        + b"K\x00\x85U\x01b\x87R"  # _reconstruct(ndarray, (0,), "b")
        + b"(K\x01"  # state: (version 1, shape, dtype, fortran order, raw bytes)
        + b"M"
        + struct.pack("<H", data.shape[0])
        + b"M"
        + struct.pack("<H", data.shape[1])
        + b"\x86"
        + b"cnumpy\ndtype\nU\x02u1K\x00K\x01\x87R"  # dtype("u1", 0, 1)
        + b"(K\x03U\x01|NNN"  # dtype state 3: order "|", no subarray or fields, -1, -1, flags 0
        + (b"J" + struct.pack("<i", -1)) * 2
        + b"K\x00tb"
        + b"\x89T"
        + struct.pack("<I", len(raw))
        + raw
        + b"tb"
    )
    label_items = b"".join(b"K" + bytes([label]) for label in labels)
    return b"\x80\x02}(U\x04data" + array + b"U\x06labels](" + label_items + b"eu."


def write_cifar_dir(directory, n_per_batch=12):
    directory.mkdir(parents=True, exist_ok=True)
    for index in range(1, 6):
        (directory / f"data_batch_{index}").write_bytes(
            cifar_batch_bytes(n_per_batch, seed=index)[0]
        )
    (directory / "test_batch").write_bytes(cifar_batch_bytes(n_per_batch, seed=99)[0])


class ShellCommand:
    """Object whose unpickling would run a shell command."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


# --------------------------------------------------------------------------- digits


def test_digits_default_split_standardised():
    dataset = load_dataset(DataConfig())

    assert dataset.X_train.shape == (1438, 64)
    assert dataset.X_test.shape == (359, 64)
    assert dataset.X_train.dtype == np.float64
    assert dataset.classes.tolist() == list(range(10))
    np.testing.assert_allclose(dataset.X_train.mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(dataset.X_train.var(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.einsum("ij,ij->i", dataset.X_test, dataset.X_test) / 64, 1.0)
    assert not set(dataset.train_ids) & set(dataset.test_ids)
    assert len(set(dataset.train_ids)) == len(dataset.train_ids)


def test_digits_per_class_subset_seeded():
    config = DataConfig(classes=[7, 1, 3], n_per_class=15, n_test=30, seed=4)
    first = load_dataset(config)
    second = load_dataset(config)
    other_seed = load_dataset(DataConfig(classes=[7, 1, 3], n_per_class=15, n_test=30, seed=5))

    assert first.classes.tolist() == [1, 3, 7]
    assert np.unique(first.y_train, return_counts=True)[1].tolist() == [15, 15, 15]
    assert np.unique(first.y_test, return_counts=True)[1].tolist() == [10, 10, 10]
    assert (first.train_ids == second.train_ids).all()
    assert set(first.train_ids) != set(other_seed.train_ids)


def test_digits_total_subset_and_minmax():
    dataset = load_dataset(DataConfig(n_total=100, preprocessing="minmax"))

    assert dataset.X_train.shape == (100, 64)
    assert np.unique(dataset.y_train, return_counts=True)[1].tolist() == [10] * 10
    assert dataset.X_train.min() == 0.0
    assert dataset.X_train.max() == 1.0


def test_one_hot_columns_follow_classes():
    dataset = load_dataset(DataConfig(classes=[2, 5], n_per_class=3, n_test=4))
    targets = dataset.one_hot(np.array([5, 2, 5]))
    np.testing.assert_array_equal(targets, [[0, 1], [1, 0], [0, 1]])


# --------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_idx_round_trip_uint8(tmp_path, compress):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "images.idx"
    write_idx(path, array, compress=compress)

    read = read_idx(path)

    assert read.shape == (2, 3, 4)
    np.testing.assert_array_equal(read, array)


def test_idx_big_endian_int16_and_float32(tmp_path):
    shorts = np.array([-2, 258, 32767], dtype=np.int16)
    floats = np.array([[1.5, -0.25]], dtype=np.float32)
    write_idx(tmp_path / "shorts", shorts, type_code=0x0B)
    write_idx(tmp_path / "floats", floats, type_code=0x0D)

    # 258 = 0x0102 must not come back byte-swapped as 0x0201 = 513.
    assert read_idx(tmp_path / "shorts").tolist() == [-2, 258, 32767]
    assert read_idx(tmp_path / "floats").tolist() == [[1.5, -0.25]]


def test_idx_bad_magic_rejected(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01\x05")
    with pytest.raises(InputError, match="invalid IDX magic number 01020801"):
        read_idx(path)


def test_idx_unknown_type_code_rejected(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(b"\x00\x00\x07\x01\x00\x00\x00\x01\x05")
    with pytest.raises(InputError, match="unknown IDX type code 0x07"):
        read_idx(path)


def test_idx_truncated_data_rejected(tmp_path):
    path = tmp_path / "short"
    write_idx(path, np.zeros((3, 2, 2), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(
        InputError, match=r"IDX data has 11 bytes but the header dimensions \(3, 2, 2\)"
    ):
        read_idx(path)


def test_idx_corrupt_gzip_rejected(tmp_path):
    path = tmp_path / "broken.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x02\x01\x02")[:-6])
    with pytest.raises(InputError, match="gzip data is corrupt or truncated"):
        read_idx(path)


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_mnist_directory_loads(tmp_path, compress):
    train_x, train_y, test_x, test_y = write_mnist_dir(tmp_path / "mnist", compress=compress)

    dataset = load_dataset(DataConfig(source="mnist", path=str(tmp_path / "mnist"), n_per_class=4))

    assert dataset.X_train.shape == (12, 16)
    assert dataset.X_test.shape == (9, 16)
    assert dataset.image_shape == (4, 4)
    # Row k comes from source image int(train_ids[k].split(":")[1]); check one by value.
    row = int(dataset.train_ids[0].split(":")[1])
    source_row = train_x[row].reshape(-1).astype(float)
    expected = (source_row - source_row.mean()) / source_row.std()
    np.testing.assert_allclose(dataset.X_train[0], expected)
    assert dataset.y_train[0] == train_y[row]


def test_mnist_label_count_mismatch_rejected(tmp_path):
    write_mnist_dir(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(17, dtype=np.uint8))
    with pytest.raises(InputError, match="18 images in train-images-idx3-ubyte but 17 labels"):
        load_dataset(DataConfig(source="mnist", path=str(tmp_path)))


def test_mnist_missing_file_rejected(tmp_path):
    write_mnist_dir(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(InputError, match="no test labels IDX file"):
        load_dataset(DataConfig(source="fashion-mnist", path=str(tmp_path)))


def test_mnist_label_shape_rejected(tmp_path):
    write_mnist_dir(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros((18, 2), dtype=np.uint8))
    with pytest.raises(InputError, match=r"label file has shape \(18, 2\)"):
        load_dataset(DataConfig(source="mnist", path=str(tmp_path)))


# --------------------------------------------------------------------------- CIFAR-10


@pytest.mark.parametrize("python2_names", [False, True], ids=["numpy2", "numpy1-names"])
def test_cifar_batch_reads_real_format(tmp_path, python2_names):
    payload, data, labels = cifar_batch_bytes(5, seed=0, python2_names=python2_names)
    path = tmp_path / "data_batch_1"
    path.write_bytes(payload)

    images, read_labels = read_cifar_batch(path)

    assert images.shape == (5, 3, 32, 32)
    assert images.dtype == np.uint8
    np.testing.assert_array_equal(images.reshape(5, -1), data)
    assert read_labels.tolist() == labels


def test_cifar_batch_reads_python2_pickle(tmp_path):
    data = (np.arange(2 * 3072) % 256).astype(np.uint8).reshape(2, 3072)
    path = tmp_path / "data_batch_1"
    path.write_bytes(python2_batch_bytes(data, [3, 7]))

    images, labels = read_cifar_batch(path)

    np.testing.assert_array_equal(images.reshape(2, -1), data)
    assert labels.tolist() == [3, 7]


def test_cifar_rejects_os_system_pickle(tmp_path):
    marker = tmp_path / "command-ran"
    payload = pickle.dumps(
        {
            b"data": np.zeros((1, 3072), np.uint8),
            b"labels": [0],
            b"x": ShellCommand(f"touch {marker}"),
        },
        protocol=2,
    )
    path = tmp_path / "data_batch_1"
    path.write_bytes(payload)

    with pytest.raises(InputError, match=r"global (posix|os|nt)\.system is not allowed"):
        read_cifar_batch(path)
    assert not marker.exists()


def test_cifar_non_latin1_codec_rejected(tmp_path):
    # _codecs.encode is allowed for bytes, but only as a latin1 conversion.
    payload = b"\x80\x02c_codecs\nencode\nq\x00X\x03\x00\x00\x00abcq\x01X\x04\x00\x00\x00zlibq\x02\x86q\x03Rq\x04."
    path = tmp_path / "batch"
    path.write_bytes(payload)
    with pytest.raises(InputError, match="encoding 'zlib' is not allowed"):
        read_cifar_batch(path)


def test_cifar_wrong_data_shape_rejected(tmp_path):
    path = tmp_path / "batch"
    path.write_bytes(
        pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, protocol=2)
    )
    with pytest.raises(
        InputError, match=r"data is a uint8 array of shape \(2, 100\); expected a uint8 array"
    ):
        read_cifar_batch(path)


def test_cifar_label_count_mismatch_rejected(tmp_path):
    path = tmp_path / "batch"
    path.write_bytes(
        pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, protocol=2)
    )
    with pytest.raises(InputError, match=r"2 images but labels of shape \(1,\)"):
        read_cifar_batch(path)


def test_cifar_missing_labels_rejected(tmp_path):
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}, protocol=2))
    with pytest.raises(InputError, match="batch has no 'labels' entry"):
        read_cifar_batch(path)


def test_cifar_label_out_of_range_rejected(tmp_path):
    path = tmp_path / "batch"
    path.write_bytes(
        pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, protocol=2)
    )
    with pytest.raises(InputError, match="CIFAR-10 labels are 0 to 9"):
        read_cifar_batch(path)


def test_cifar_directory_loads(tmp_path):
    write_cifar_dir(tmp_path / "cifar-10-batches-py")

    dataset = load_dataset(DataConfig(source="cifar10", path=str(tmp_path), classes=[0, 1, 2]))

    assert dataset.X_train.shape[1] == 3072
    assert dataset.image_shape == (3, 32, 32)
    assert set(dataset.y_train.tolist()) <= {0, 1, 2}
    assert len(dataset.X_train) == sum(
        np.isin(cifar_batch_bytes(12, seed=index)[2], [0, 1, 2]).sum() for index in range(1, 6)
    )


def test_cifar_missing_batch_rejected(tmp_path):
    write_cifar_dir(tmp_path)
    (tmp_path / "data_batch_3").unlink()
    with pytest.raises(InputError, match="missing CIFAR-10 batches: data_batch_3"):
        load_dataset(DataConfig(source="cifar10", path=str(tmp_path)))


# --------------------------------------------------------------------------- npz


def test_npz_reads_and_splits(tmp_path):
    images, labels = tiny_images(10, 2, seed=3)
    np.savez(tmp_path / "data.npz", X=images, y=labels)

    dataset = load_dataset(DataConfig(source="npz", path=str(tmp_path / "data.npz"), n_test=4))

    assert dataset.X_train.shape == (16, 16)
    assert dataset.X_test.shape == (4, 16)
    assert np.unique(dataset.y_test, return_counts=True)[1].tolist() == [2, 2]


def test_npz_separate_test_file(tmp_path):
    train_x, train_y = tiny_images(5, 2, seed=3)
    test_x, test_y = tiny_images(3, 2, seed=4)
    np.savez(tmp_path / "train.npz", X=train_x.reshape(10, -1), y=train_y)
    np.savez(tmp_path / "test.npz", X=test_x.reshape(6, -1), y=test_y)

    dataset = load_dataset(
        DataConfig(
            source="npz", path=str(tmp_path / "train.npz"), test_path=str(tmp_path / "test.npz")
        )
    )

    assert len(dataset.X_train) == 10
    assert len(dataset.X_test) == 6
    assert dataset.test_ids[0].startswith("test:")


def test_npz_missing_y_rejected(tmp_path):
    np.savez(tmp_path / "data.npz", X=np.ones((4, 3)))
    with pytest.raises(InputError, match=r"no array y; arrays present: \['X'\]"):
        load_dataset(DataConfig(source="npz", path=str(tmp_path / "data.npz")))


def test_npz_label_length_mismatch_rejected(tmp_path):
    np.savez(tmp_path / "data.npz", X=np.ones((4, 3)), y=np.zeros(5, dtype=int))
    with pytest.raises(InputError, match=r"y has shape \(5,\) but X has 4 samples"):
        load_dataset(DataConfig(source="npz", path=str(tmp_path / "data.npz")))


def test_npz_nan_rejected(tmp_path):
    X = np.random.default_rng(0).normal(size=(10, 3))
    X[6, 1] = np.nan
    np.savez(tmp_path / "data.npz", X=X, y=np.arange(10) % 2)
    with pytest.raises(
        InputError, match=r"1 samples contain NaN or infinite values \(first: sample 6\)"
    ):
        load_dataset(DataConfig(source="npz", path=str(tmp_path / "data.npz")))


def test_npz_object_array_rejected(tmp_path):
    np.savez(tmp_path / "data.npz", X=np.array([{"a": 1}, None], dtype=object), y=np.array([0, 1]))
    with pytest.raises(InputError, match="cannot read the file as .npz without pickles"):
        load_dataset(DataConfig(source="npz", path=str(tmp_path / "data.npz")))


def test_npz_fractional_labels_rejected(tmp_path):
    np.savez(tmp_path / "data.npz", X=np.ones((3, 2)), y=np.array([0.0, 0.5, 1.0]))
    with pytest.raises(InputError, match="y has dtype float64 with non-integer values"):
        load_dataset(DataConfig(source="npz", path=str(tmp_path / "data.npz")))


def test_standardize_constant_image_rejected(tmp_path):
    X = np.random.default_rng(0).normal(size=(10, 4))
    X[:, :] = X[:, :1]  # every image constant
    np.savez(tmp_path / "data.npz", X=X, y=np.arange(10) % 2)
    with pytest.raises(InputError, match="have all pixels equal"):
        load_dataset(DataConfig(source="npz", path=str(tmp_path / "data.npz"), n_test=2))


# --------------------------------------------------------------------------- config errors


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (DataConfig(source="svhn"), "source='svhn' is not one of"),
        (DataConfig(preprocessing="zca"), "preprocessing='zca' is not one of"),
        (DataConfig(source="mnist"), "source='mnist' needs data.path"),
        (DataConfig(n_per_class=5, n_total=50), "n_per_class=5 and n_total=50 are both set"),
        (DataConfig(n_total=0), "n_total=0 must be a positive integer"),
        (DataConfig(classes=[3]), "must list at least two labels"),
        (DataConfig(n_total=5000), "n_total=5000 exceeds the 1438 samples available"),
        (DataConfig(n_test=1797), "n_test=1797 leaves fewer than one training sample per class"),
    ],
    ids=[
        "source",
        "preprocessing",
        "path",
        "both-sizes",
        "zero-total",
        "one-class",
        "too-many",
        "test-takes-all",
    ],
)
def test_invalid_config_rejected(config, message):
    with pytest.raises(ConfigError, match=message):
        load_dataset(config)


def test_absent_class_rejected():
    with pytest.raises(InputError, match=r"classes \[11\] do not occur in the labels"):
        load_dataset(DataConfig(classes=[1, 11]))


def test_too_few_per_class_rejected():
    with pytest.raises(InputError, match=r"class 0 has \d+ training samples but n_per_class=500"):
        load_dataset(DataConfig(n_per_class=500))


def test_missing_path_rejected(tmp_path):
    with pytest.raises(InputError, match="MNIST data directory not found"):
        load_dataset(DataConfig(source="mnist", path=str(tmp_path / "absent")))
