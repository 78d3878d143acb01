"""Benchmark the wDTW-CD dynamic programming against dtaidistance's C DTW.

Both sides run on the same pair of seeded random-walk series for each length, in one
process, interleaved, and the best of ``--repeats`` runs counts (the machine may be
shared, so the minimum is the least disturbed run). Rates are DP cells (n * m) per
second. Two like-for-like pairs are timed:

- distance only: ``equipipe.events.alignment.wdtw_cd_distance`` (two rows of the
  accumulated cost, O(m) memory) against ``dtaidistance.dtw.distance(use_c=True)``
  (also two rows, no path);
- with the warping path: ``wdtw_cd`` (full cost and accumulated matrices plus the
  backtracked path) against ``dtaidistance.dtw.warping_paths(use_c=True)`` (full
  accumulated matrix) followed by ``dtaidistance.dtw.best_path`` (pure Python), and
  against ``warping_paths`` alone, which fills the matrix but returns no path.

wDTW-CD does more work per cell than DTW (a derivative difference, a square root and
a penalty per cell), so equal rates mean a faster kernel. Numba compilation happens
once before timing and is reported separately.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_wdtw.py --output results/bench_wdtw.md
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numba
import numpy as np
from dtaidistance import __version__ as dtaidistance_version
from dtaidistance import dtw as dtaidistance_dtw

from equipipe.events.alignment import wdtw_cd, wdtw_cd_distance

DEFAULT_LENGTHS = (100, 200, 500, 1000, 2000, 5000)


def parse_arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--lengths",
        type=int,
        nargs="+",
        default=list(DEFAULT_LENGTHS),
        help="series lengths n (both series have length n); default: %(default)s",
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed runs per method and length (best counts)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random-walk series")
    parser.add_argument("--output", type=Path, help="also write the markdown table to this file")
    return parser.parse_args(argv)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_lines() -> list[str]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return [
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores ({usable} usable), "
        f"load average at start {load}",
        f"- {platform.system()} {platform.release()}, Python {platform.python_version()}, "
        f"numpy {np.__version__}, numba {numba.__version__}, "
        f"dtaidistance {dtaidistance_version} (C library available: "
        f"{dtaidistance_dtw.try_import_c(verbose=False)})",
        f"- OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
        "single-threaded kernels on both sides",
    ]


def best_time(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def dtaidistance_with_path(x: np.ndarray, y: np.ndarray) -> None:
    _, paths = dtaidistance_dtw.warping_paths(x, y, use_c=True)
    dtaidistance_dtw.best_path(paths)


def time_length(n: int, repeats: int, rng: np.random.Generator) -> dict:
    x = np.cumsum(rng.normal(size=n))
    y = np.cumsum(rng.normal(size=n))
    cells = n * n

    # Check the two wDTW-CD entry points agree before timing them.
    full = wdtw_cd(x, y)
    assert abs(full.distance - wdtw_cd_distance(x, y)) <= 1e-9 * max(1.0, full.distance)
    del full

    # Interleave ours and theirs so a burst of load on a shared machine hits both.
    timings = {
        "ours_distance": [],
        "dtai_distance": [],
        "ours_path": [],
        "dtai_path": [],
        "dtai_matrix": [],
    }
    for _ in range(repeats):
        timings["ours_distance"].append(best_time(lambda: wdtw_cd_distance(x, y), 1))
        timings["dtai_distance"].append(
            best_time(lambda: dtaidistance_dtw.distance(x, y, use_c=True), 1)
        )
        timings["ours_path"].append(best_time(lambda: wdtw_cd(x, y), 1))
        timings["dtai_path"].append(best_time(lambda: dtaidistance_with_path(x, y), 1))
        timings["dtai_matrix"].append(
            best_time(lambda: dtaidistance_dtw.warping_paths(x, y, use_c=True), 1)
        )
    return {name: cells / min(values) for name, values in timings.items()}


def format_table(rows: dict[int, dict], compile_seconds: float) -> str:
    header = [
        "| n = m | wDTW-CD distance (Mcells/s) | dtaidistance `distance` C (Mcells/s) | ratio "
        "| wDTW-CD with path (Mcells/s) | dtaidistance `warping_paths` C + `best_path` "
        "(Mcells/s) | ratio | dtaidistance `warping_paths` C alone (Mcells/s) | ratio |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines = []
    for n, rates in rows.items():
        lines.append(
            f"| {n:,} | {rates['ours_distance'] / 1e6:.1f} | {rates['dtai_distance'] / 1e6:.1f} "
            f"| {rates['ours_distance'] / rates['dtai_distance']:.2f} "
            f"| {rates['ours_path'] / 1e6:.1f} | {rates['dtai_path'] / 1e6:.1f} "
            f"| {rates['ours_path'] / rates['dtai_path']:.2f} "
            f"| {rates['dtai_matrix'] / 1e6:.1f} "
            f"| {rates['ours_path'] / rates['dtai_matrix']:.2f} |"
        )
    footer = [
        "",
        "Numba compilation (or loading its on-disk cache) before timing: "
        f"{compile_seconds:.2f} s.",
    ]
    return "\n".join(header + lines + footer)


def main(argv=None) -> int:
    arguments = parse_arguments(argv)
    if arguments.repeats < 1 or any(n < 3 for n in arguments.lengths):
        print("--repeats must be >= 1 and every length >= 3", file=sys.stderr)
        return 2

    machine = machine_lines()
    start = time.perf_counter()
    warm_up = np.linspace(0.0, 1.0, 8)
    wdtw_cd(warm_up, warm_up[::-1])
    wdtw_cd_distance(warm_up, warm_up[::-1])
    compile_seconds = time.perf_counter() - start

    rng = np.random.default_rng(arguments.seed)
    rows = {}
    for n in arguments.lengths:
        rows[n] = time_length(n, arguments.repeats, rng)
        print(
            f"n={n}: distance {rows[n]['ours_distance'] / 1e6:.1f} vs "
            f"{rows[n]['dtai_distance'] / 1e6:.1f} Mcells/s, with path "
            f"{rows[n]['ours_path'] / 1e6:.1f} vs {rows[n]['dtai_path'] / 1e6:.1f} Mcells/s",
            file=sys.stderr,
        )

    report = "\n".join(
        [
            f"Command: `python benchmarks/bench_wdtw.py --repeats {arguments.repeats} "
            f"--lengths {' '.join(map(str, arguments.lengths))}`",
            "",
            *machine,
            "",
            format_table(rows, compile_seconds),
            "",
        ]
    )
    print(report)
    if arguments.output is not None:
        arguments.output.parent.mkdir(parents=True, exist_ok=True)
        arguments.output.write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
