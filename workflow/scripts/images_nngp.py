"""DEQ NNGP kernel: smallest eigenvalue against iteration and sigma_w, and GP regression."""

from equipipe.logs import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821

import logging  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from equipipe.fileio import atomic_path, write_json  # noqa: E402
from equipipe.implicit import kernel_plots, nngp  # noqa: E402
from equipipe.implicit.training import center_inputs  # noqa: E402

logger = logging.getLogger("images_nngp")
settings = snakemake.params.nngp  # noqa: F821
start = time.perf_counter()

data = np.load(snakemake.input.dataset)  # noqa: F821
x_train, x_test = data["X_train"], data["X_test"]
if snakemake.params.center_inputs:  # noqa: F821
    x_train, x_test = center_inputs(x_train, x_test)
classes = data["classes"]
kernel_options = {
    "sigma_u": settings["sigma_u"], "phi": settings["phi"],
    "tol": settings["tol"], "max_iter": settings["max_iter"],
}

# Kernel among the training and between test and training inputs at the fixed point.
train_kernel = nngp.deq_nngp_kernel(x_train, sigma_w=settings["sigma_w"], **kernel_options)
cross_kernel = nngp.deq_nngp_kernel(x_test, x_train, sigma_w=settings["sigma_w"], **kernel_options)
targets = np.zeros((len(data["y_train"]), len(classes)))
targets[np.arange(len(targets)), np.searchsorted(classes, data["y_train"])] = 1.0
predictions = nngp.nngp_regression(train_kernel.output, cross_kernel.output, targets, settings["ridge"])
accuracy = nngp.classification_accuracy(predictions, data["y_test"], classes)

iterations, smallest = nngp.kernel_eigen_history(x_train, settings["sigma_w"], **kernel_options)
sigma_ws = np.asarray(settings["sigma_w_grid"], dtype=float)
smallest_by_sigma = nngp.smallest_eigenvalue_vs_sigma_w(x_train, sigma_ws, **kernel_options)

with atomic_path(snakemake.output.history) as temp:  # noqa: F821
    pd.DataFrame({"iteration": iterations, "smallest_eigenvalue": smallest}).to_csv(temp, index=False)
with atomic_path(snakemake.output.sigma_w) as temp:  # noqa: F821
    pd.DataFrame({"sigma_w": sigma_ws, "smallest_eigenvalue": smallest_by_sigma}).to_csv(temp, index=False)
label = f"{settings['phi']}, sigma_u = {settings['sigma_u']:g}"
kernel_plots.plot_eigen_history(
    {f"{label}, sigma_w = {settings['sigma_w']:g}": (iterations, smallest)},
    snakemake.output.history_figure,  # noqa: F821
)
kernel_plots.plot_eigen_vs_sigma_w({label: (sigma_ws, smallest_by_sigma)}, snakemake.output.sigma_w_figure)  # noqa: F821
metrics = {
    "test_accuracy": accuracy,
    "n_train": int(len(x_train)),
    "n_test": int(len(x_test)),
    "sigma_w": settings["sigma_w"],
    "sigma_u": settings["sigma_u"],
    "phi": settings["phi"],
    "ridge": settings["ridge"],
    "kernel_iterations": int(train_kernel.iterations),
    "smallest_eigenvalue": float(smallest[-1]),
    "smallest_eigenvalue_by_sigma_w": dict(zip(map(str, sigma_ws), map(float, smallest_by_sigma))),
    "all_positive": bool(np.all(smallest_by_sigma > 0)),
    "seconds": time.perf_counter() - start,
}
write_json(snakemake.output.metrics, metrics)  # noqa: F821
logger.info(
    "NNGP kernel (%s, sigma_w=%g): test accuracy %.4f, smallest eigenvalue %.4g, "
    "positive for all %d sigma_w: %s (%.1f s)",
    settings["phi"], settings["sigma_w"], accuracy, metrics["smallest_eigenvalue"],
    len(sigma_ws), metrics["all_positive"], metrics["seconds"],
)
