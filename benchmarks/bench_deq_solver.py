"""Benchmark the forward equilibrium solve: equipipe's Anderson solver against torchdeq's.

Both solvers get the same implicit ReLU layer z = ReLU(gamma A z / sqrt(m) + U x / sqrt(d))
on all 1,797 scikit-learn digits (per-sample standardised) as one batch, the same
relative tolerance max_i ||f(z_i) - z_i|| / ||f(z_i)||, Anderson memory 5 and no
damping, and start from z = 0. Each cell is the median wall time of ``--repeats`` solves.
"evaluations" counts calls of the layer map. The residual is recomputed from the z each
solver returns, so both residual columns measure the same thing.

Run: ``python benchmarks/bench_deq_solver.py --output bench_deq_solver.md``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from torchdeq.solver.anderson import anderson_solver

from equipipe.implicit.model import ImplicitReLUNetwork
from equipipe.implicit.solver import SolverConfig, anderson_solve


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo, or the platform's processor string."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def relative_residual(layer, z: torch.Tensor) -> float:
    image = layer(z)
    return float(((image - z).norm(dim=1) / image.norm(dim=1).clamp_min(1e-300)).max())


def time_solver(solve, repeats: int) -> tuple[float, int, float]:
    """Return (median seconds, layer evaluations, residual) of ``solve`` over ``repeats`` runs."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        z, evaluations = solve()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), evaluations, z


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[100, 400],
                        help="widths m of the implicit layer (default: 100 400)")
    parser.add_argument("--gammas", type=float, nargs="+", default=[0.25, 0.45],
                        help="gamma values; gamma ||A||_2 / sqrt(m) is about 2 gamma (default: 0.25 0.45)")
    parser.add_argument("--tol", type=float, default=1e-6, help="relative tolerance (default: 1e-6)")
    parser.add_argument("--repeats", type=int, default=3, help="solves per cell, median reported (default: 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    parser.add_argument("--torchdeq-lam", type=float, default=1e-4,
                        help="torchdeq's absolute Anderson regularisation lam (default: 1e-4, its own default)")
    parser.add_argument("--output", type=Path, help="write the markdown table to this file")
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)

    images, _ = load_digits(return_X_y=True)
    images = (images - images.mean(axis=1, keepdims=True)) / images.std(axis=1, keepdims=True)
    x = torch.from_numpy(images)  # (1797, 64), float64

    rows = []
    for gamma in arguments.gammas:
        for width in arguments.widths:
            network = ImplicitReLUNetwork(64, width, 10, gamma, seed=0)
            norm = network.spectral_norm(exact=True)
            with torch.no_grad():
                injection = network.injection(x)  # (1797, m)
                weight = network.A.detach()
                scale = network.scale

                evaluations = [0]

                def layer(z: torch.Tensor) -> torch.Tensor:
                    evaluations[0] += 1
                    return torch.relu(scale * z @ weight.T + injection)

                config = SolverConfig(tol=arguments.tol, max_iter=500, memory=5)

                def ours():
                    evaluations[0] = 0
                    result = anderson_solve(layer, torch.zeros_like(injection), config)
                    return result.z, evaluations[0]

                def theirs():
                    evaluations[0] = 0
                    z, _, _ = anderson_solver(
                        layer, torch.zeros_like(injection), max_iter=500, tol=arguments.tol,
                        stop_mode="rel", m=5, lam=arguments.torchdeq_lam, tau=1.0,
                    )
                    return z, evaluations[0]

                our_time, our_evaluations, our_z = time_solver(ours, arguments.repeats)
                their_time, their_evaluations, their_z = time_solver(theirs, arguments.repeats)
                evaluations[0] = 0
                rows.append(
                    {
                        "gamma": gamma, "width": width, "norm": norm,
                        "ours_s": our_time, "ours_evals": our_evaluations,
                        "ours_res": relative_residual(layer, our_z),
                        "theirs_s": their_time, "theirs_evals": their_evaluations,
                        "theirs_res": relative_residual(layer, their_z),
                        "difference": float((our_z - their_z).norm() / their_z.norm()),
                    }
                )
                print(rows[-1], flush=True)

    lines = [
        "| gamma | m | spectral norm | equipipe s | equipipe evals | equipipe residual "
        "| torchdeq s | torchdeq evals | torchdeq residual | rel. difference of z |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['gamma']:g} | {row['width']} | {row['norm']:.3f} | {row['ours_s']:.3f} | "
            f"{row['ours_evals']} | {row['ours_res']:.1e} | {row['theirs_s']:.3f} | "
            f"{row['theirs_evals']} | {row['theirs_res']:.1e} | {row['difference']:.1e} |"
        )
    machine = (
        f"Machine: {cpu_model()}, {os.cpu_count()} logical CPUs, torch threads "
        f"{arguments.threads}; Python {platform.python_version()}, torch {torch.__version__}, "
        f"torchdeq {version('torchdeq')}, numpy {np.__version__}. Batch: 1,797 digits, d = 64, "
        f"float64, relative tolerance {arguments.tol:g}, median of {arguments.repeats} solves, "
        f"torchdeq lam {arguments.torchdeq_lam:g}. "
        "Spectral norm: gamma ||A||_2 / sqrt(m), the contraction factor bound."
    )
    text = "\n".join([machine, "", *lines]) + "\n"
    print(text)
    if arguments.output:
        arguments.output.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
