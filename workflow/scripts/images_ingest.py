"""Read, split, subset and preprocess the image data set into one .npz file."""

from equipipe.logs import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821

import logging  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from equipipe.fileio import atomic_path, write_json  # noqa: E402
from equipipe.implicit.data import DataConfig, load_dataset  # noqa: E402

logger = logging.getLogger("images_ingest")
start = time.perf_counter()

dataset = load_dataset(DataConfig(**snakemake.params.data))  # noqa: F821
with atomic_path(snakemake.output.dataset) as temp:  # noqa: F821
    with open(temp, "wb") as handle:
        np.savez(
            handle,
            X_train=dataset.X_train,
            y_train=dataset.y_train,
            X_test=dataset.X_test,
            y_test=dataset.y_test,
            classes=dataset.classes,
            train_ids=dataset.train_ids,
            test_ids=dataset.test_ids,
        )
summary = {
    "source": dataset.source,
    "image_shape": list(dataset.image_shape),
    "n_train": int(len(dataset.y_train)),
    "n_test": int(len(dataset.y_test)),
    "n_features": int(dataset.X_train.shape[1]),
    "classes": dataset.classes.tolist(),
    "train_counts": np.unique(dataset.y_train, return_counts=True)[1].tolist(),
}
write_json(snakemake.output.summary, summary)  # noqa: F821
logger.info(
    "%s: %d training and %d test images of %d features, %d classes (%.1f s)",
    dataset.source, summary["n_train"], summary["n_test"], summary["n_features"],
    len(dataset.classes), time.perf_counter() - start,
)
