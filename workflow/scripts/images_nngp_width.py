"""Output covariance of random finite-width DEQs against the NNGP kernel, and normality."""

from equipipe.logs import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821

import logging  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from equipipe.devices import resolve_device  # noqa: E402
from equipipe.fileio import atomic_path, write_json  # noqa: E402
from equipipe.implicit import kernel_plots, nngp  # noqa: E402
from equipipe.implicit.training import center_inputs  # noqa: E402

logger = logging.getLogger("images_nngp_width")
settings = snakemake.params.nngp  # noqa: F821
finite = settings["finite_width"]
start = time.perf_counter()

data = np.load(snakemake.input.dataset)  # noqa: F821
x_train, x_test = data["X_train"], data["X_test"]
if snakemake.params.center_inputs:  # noqa: F821
    x_train, _ = center_inputs(x_train, x_test)
inputs = x_train[: finite["n_inputs"]]
device = resolve_device(snakemake.params.device, "images.device")  # noqa: F821

result = nngp.finite_width_covariance(
    inputs, finite["widths"], finite["n_networks"], settings["sigma_w"], settings["sigma_u"],
    settings["phi"], finite["seed"], tol=settings["tol"], max_iter=settings["max_iter"],
    device=device,
)
slopes = kernel_plots.plot_width_error(
    result.widths,
    {"E_v[f f] given W, U": result.errors, "sampled outputs f": result.sampled_errors},
    snakemake.output.figure,  # noqa: F821
)
variances = np.diag(result.kernel)
kernel_plots.plot_output_qq(result.outputs, variances, snakemake.output.qq)  # noqa: F821
normality = pd.DataFrame(nngp.output_normality(result.outputs, variances))

with atomic_path(snakemake.output.table) as temp:  # noqa: F821
    pd.DataFrame(
        {"width": result.widths, "relative_error": result.errors,
         "sampled_relative_error": result.sampled_errors, "max_iterations": result.iterations}
    ).to_csv(temp, index=False)
with atomic_path(snakemake.output.normality) as temp:  # noqa: F821
    normality.to_csv(temp, index=False)
slope = nngp.loglog_slope(result.widths, result.errors)
write_json(
    snakemake.output.metrics,  # noqa: F821
    {
        "loglog_slope": slope,
        "figure_slopes": {key: float(value) for key, value in slopes.items()},
        "min_normaltest_p_value": float(normality["normaltest_p_value"].min()),
        "min_shapiro_p_value": float(normality["shapiro_p_value"].min()),
        "n_networks": finite["n_networks"],
        "n_inputs": int(len(inputs)),
        "seconds": time.perf_counter() - start,
    },
)
logger.info(
    "finite-width covariance over widths %s: log-log slope %.3f, smallest normality p-value "
    "%.3g (%.1f s)",
    list(result.widths), slope, normality["normaltest_p_value"].min(), time.perf_counter() - start,
)
