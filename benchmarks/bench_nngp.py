"""Time of the DEQ NNGP kernel on all 1,797 scikit-learn digits, with two references.

No installed library computes the kernel of a deep equilibrium model, so the
closed-form solver (:func:`equipipe.implicit.nngp.deq_nngp_kernel`, two stages: variances,
then the upper triangle of correlations) is compared in one run with:

* the straightforward joint recursion over the full (n, n) matrix with the same
  closed forms, on all digits: same fixed point, a second implementation;
* the same recursion with E[phi(a) phi(b)] estimated by sampling (Monte Carlo, fixed
  standard-normal draws, Sigma^(1/2) by eigendecomposition), on a subset of digits:
  an independent check of the closed forms.

Usage::

    python benchmarks/bench_nngp.py --output nngp.md

Timing is wall-clock (``time.perf_counter``), the best of ``--repeats`` runs for the
closed-form solver and one run for each reference. Inputs are standardised per image
(zero mean, unit variance, so x . x / d = 1), as ``load_dataset`` does by default.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time

import numpy as np
import scipy
import torch
from sklearn.datasets import load_digits

from equipipe.implicit.nngp import (
    _joint_recursion,
    deq_nngp_kernel,
    monte_carlo_nngp_kernel,
    smallest_eigenvalue,
)

logger = logging.getLogger("bench_nngp")


def standardised_digits() -> np.ndarray:
    """Return all 1,797 digits as rows of shape (64,) with zero mean and unit variance."""
    X = load_digits().data.astype(np.float64)
    X -= X.mean(axis=1, keepdims=True)
    return X / X.std(axis=1, keepdims=True)


def machine_info() -> dict:
    """Collect CPU model, core count and library versions for the table header."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = "%.1f, %.1f, %.1f" % os.getloadavg()
    except OSError:
        load = "unknown"
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "load": load,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "torch": torch.__version__,
        "os": platform.platform(),
        "omp_threads": os.environ.get("OMP_NUM_THREADS", "unset"),
    }


def run(args: argparse.Namespace) -> list[dict]:
    """Measure every method for each activation; return one row per measurement."""
    X = standardised_digits()
    subset = X[: args.mc_subset]
    rows = []
    for phi in ("relu", "erf"):
        settings = {"sigma_w": args.sigma_w, "sigma_u": args.sigma_u, "phi": phi, "tol": args.tol}

        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            kernel = deq_nngp_kernel(X, **settings)
            times.append(time.perf_counter() - start)
        rows.append(
            {
                "phi": phi,
                "method": "closed form, two stages (equipipe)",
                "inputs": len(X),
                "iterations": kernel.iterations,
                "time": min(times),
                "difference": 0.0,
                "smallest": smallest_eigenvalue(kernel.output),
            }
        )
        logger.info("%s closed form: %.2f s, %d iterations", phi, min(times), kernel.iterations)

        start = time.perf_counter()
        joint = _joint_recursion(X, args.sigma_w, args.sigma_u, phi, args.tol, 10_000)
        elapsed = time.perf_counter() - start
        rows.append(
            {
                "phi": phi,
                "method": "closed form, joint (n, n) recursion",
                "inputs": len(X),
                "iterations": joint.iterations,
                "time": elapsed,
                "difference": float(np.abs(joint.output - kernel.output).max()),
                "smallest": smallest_eigenvalue(joint.output),
            }
        )
        logger.info("%s joint recursion: %.2f s", phi, elapsed)

        exact_subset = deq_nngp_kernel(subset, **settings).output
        start = time.perf_counter()
        sampled = monte_carlo_nngp_kernel(
            subset,
            args.sigma_w,
            args.sigma_u,
            phi,
            n_samples=args.mc_samples,
            seed=0,
            tol=args.mc_tol,
        )
        elapsed = time.perf_counter() - start
        rows.append(
            {
                "phi": phi,
                "method": f"Monte Carlo, {args.mc_samples:,} samples",
                "inputs": len(subset),
                "iterations": sampled.iterations,
                "time": elapsed,
                "difference": float(np.abs(sampled.output - exact_subset).max()),
                "smallest": smallest_eigenvalue(sampled.output),
            }
        )
        logger.info("%s Monte Carlo: %.2f s", phi, elapsed)
    return rows


def markdown_table(rows: list[dict], args: argparse.Namespace) -> str:
    """Format the measurements as a markdown section body."""
    info = machine_info()
    lines = [
        f"Machine: {info['cpu']}, {info['cores']} cores available (load average "
        f"{info['load']} at the end of the run); Python {info['python']}, numpy "
        f"{info['numpy']}, SciPy {info['scipy']}, PyTorch {info['torch']}; {info['os']}; "
        f"OMP_NUM_THREADS={info['omp_threads']}.",
        "",
        f"Kernel settings: sigma_w={args.sigma_w}, sigma_u={args.sigma_u}, tolerance "
        f"{args.tol:g} ({args.mc_tol:g} for Monte Carlo); {args.repeats} repeats of the two-stage solver (best shown). "
        "Difference: largest absolute entry of K* minus the two-stage closed form on the "
        "same inputs (K*(x, x) = 1 for ReLU at these settings).",
        "",
        "| phi | method | inputs | iterations | time (s) | max abs difference | "
        "smallest eigenvalue |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row['phi']} | {row['method']} | {row['inputs']:,} | {row['iterations']} | "
            f"{row['time']:.2f} | {row['difference']:.2e} | {row['smallest']:.3e} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sigma-w", type=float, default=1.0, help="weight scale sigma_w")
    parser.add_argument("--sigma-u", type=float, default=1.0, help="input scale sigma_u")
    parser.add_argument("--tol", type=float, default=1e-10, help="recursion tolerance")
    parser.add_argument("--repeats", type=int, default=3, help="runs of the two-stage solver")
    parser.add_argument(
        "--mc-subset", type=int, default=100, help="digits in the Monte-Carlo comparison"
    )
    parser.add_argument(
        "--mc-samples", type=int, default=50_000, help="Gaussian samples per Monte-Carlo step"
    )
    parser.add_argument(
        "--mc-tol",
        type=float,
        default=1e-6,
        help="Monte-Carlo recursion tolerance; its sampling error is about 1e-2 anyway",
    )
    parser.add_argument("--output", help="markdown file to write the table to")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)

    table = markdown_table(run(args), args)
    print(table)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(table)


if __name__ == "__main__":
    main()
