"""Train one implicit ReLU network (one variant, one width) by full-batch gradient descent."""

from equipipe.logs import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821

import logging  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from equipipe.devices import resolve_device  # noqa: E402
from equipipe.fileio import atomic_path, write_json  # noqa: E402
from equipipe.implicit.model import IllPosedEquilibriumError  # noqa: E402
from equipipe.implicit.solver import SolverConfig  # noqa: E402
from equipipe.implicit.training import (  # noqa: E402
    TrainingConfig,
    center_inputs,
    train_implicit_network,
)

logger = logging.getLogger("images_train")
settings = snakemake.params.training  # noqa: F821
variant = snakemake.wildcards.variant  # noqa: F821
factor = float(snakemake.wildcards.factor)  # noqa: F821
torch.set_num_threads(snakemake.threads)  # noqa: F821

data = np.load(snakemake.input.dataset)  # noqa: F821
x_train, x_test = data["X_train"], data["X_test"]
if settings["center_inputs"]:
    x_train, x_test = center_inputs(x_train, x_test)
classes = data["classes"]
# Labels become column indices 0..C-1 of the one-hot targets.
labels_train = np.searchsorted(classes, data["y_train"])
labels_test = np.searchsorted(classes, data["y_test"])
width = max(1, round(factor * len(labels_train)))

config = TrainingConfig(
    variant=variant,
    width=width,
    gamma=settings["gamma"],
    learning_rate=settings["learning_rate"][variant],
    steps=settings["steps"],
    solver=SolverConfig(**settings["solver"]),
    dtype=settings["dtype"],
    seed=settings["seed"],
    log_interval=settings["log_interval"],
)
device = resolve_device(snakemake.params.device, "images.device")  # noqa: F821
try:
    result = train_implicit_network(
        torch.from_numpy(x_train), torch.from_numpy(labels_train),
        torch.from_numpy(x_test), torch.from_numpy(labels_test),
        len(classes), config, device=device,
    )
    history, metrics = result.history, result.metrics
    metrics["status"] = "converged"
except IllPosedEquilibriumError as error:
    if settings["on_ill_posed"] == "fail":
        raise
    # Recorded rather than raised: the width sweep shows where well-posedness breaks.
    logger.error("%s; recorded as status ill-posed (images.training.on_ill_posed)", error)
    history = error.history
    metrics = {
        "variant": variant, "width": width, "n_train": int(len(labels_train)),
        "status": "ill-posed", "failed_step": error.step, "message": str(error),
        **error.initial_metrics,
    }
metrics["width_factor"] = factor

with atomic_path(snakemake.output.history) as temp:  # noqa: F821
    pd.DataFrame(history).to_csv(temp, index=False)
write_json(snakemake.output.metrics, metrics)  # noqa: F821
logger.info("variant %s, width %d (%.3g N): %s", variant, width, factor, metrics["status"])
