"""Time and memory of DV-LAE selection on synthetic descriptor arrays.

Measures each step of the DV-LAE selection for data sets of 10^4 and 10^5 structures:
fitting the bins, histograms, difference vectors, the 2-D embedding (openTSNE and PCA)
and grid selection at a target fraction. The descriptors are synthetic but have the
shape of real ones: 8 to 32 atoms per structure, 2 elements, 40 symmetry functions,
30 bins. Each size runs in its own subprocess, so the peak resident memory reported
for it belongs to that size alone.

Usage::

    python benchmarks/bench_selection.py --sizes 10000 100000 --output table.md

Timing is wall-clock (``time.perf_counter``). Peak memory comes in two figures. The
first is the peak of numpy and Python allocations during each step (``tracemalloc``),
which misses openTSNE's and Annoy's native allocations. The second is the peak resident
set size of the whole process (``resource.getrusage``, which Linux reports in KiB).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import time
import tracemalloc

import numpy as np

ELEMENTS = [46, 1]  # Pd and H, as in palladium hydride


def synthetic_descriptors(
    n_structures: int, n_features: int, min_atoms: int, max_atoms: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Build per-atom descriptor arrays with cluster structure, as real data have.

    Structures belong to one of 50 prototypes (think bulk, strained, vacancy, surface
    cells at several hydrogen contents). An atom's values are its prototype's mean
    for its element times log-normal noise of 10 %, so values are positive and
    spread over a range as symmetry functions are.
    """
    rng = np.random.default_rng(seed)
    n_atoms = rng.integers(min_atoms, max_atoms + 1, size=n_structures)
    offsets = np.r_[0, np.cumsum(n_atoms)].astype(np.int64)
    n_total = int(offsets[-1])

    prototype_means = rng.gamma(2.0, 1.0, size=(50, len(ELEMENTS), n_features))
    prototype = rng.integers(0, 50, size=n_structures)
    hydrogen_share = rng.uniform(0.0, 0.6, size=n_structures)

    structure = np.repeat(np.arange(n_structures), n_atoms)
    is_hydrogen = rng.random(n_total) < hydrogen_share[structure]
    species = np.where(is_hydrogen, ELEMENTS[1], ELEMENTS[0]).astype(np.int64)
    block = is_hydrogen.astype(np.int64)

    values = np.empty((n_total, n_features))
    chunk = 1_000_000
    for start in range(0, n_total, chunk):
        stop = min(start + chunk, n_total)
        mean = prototype_means[prototype[structure[start:stop]], block[start:stop]]
        noise = rng.lognormal(0.0, 0.1, size=mean.shape)
        values[start:stop] = mean * noise
    return values, species, offsets


def timed(step: str, results: dict, function, *args, **kwargs):
    """Run ``function`` and store its wall time and tracemalloc figures under ``step``.

    ``traced_start_mib`` is what earlier steps left allocated (their outputs), and
    ``traced_peak_mib`` the peak during the step, so their difference is the extra
    memory the step itself needed at its peak.
    """
    tracemalloc.reset_peak()
    current, _ = tracemalloc.get_traced_memory()
    start = time.perf_counter()
    output = function(*args, **kwargs)
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    results[step] = {
        "seconds": seconds,
        "traced_start_mib": current / 2**20,
        "traced_peak_mib": peak / 2**20,
    }
    logging.info(
        "%s: %.2f s, traced %.0f MiB at start, peak %.0f MiB",
        step, seconds, current / 2**20, peak / 2**20,
    )
    return output


def run_one_size(args: argparse.Namespace) -> dict:
    """Run every step for ``args.single`` structures and return the measurements."""
    from equipipe.materials.dvlae import (
        difference_vectors,
        fit_bin_edges,
        histogram_counts,
    )
    from equipipe.materials.embedding import embed
    from equipipe.materials.selection import grid_select

    n = args.single
    values, species, offsets = synthetic_descriptors(
        n, args.features, args.min_atoms, args.max_atoms, args.seed
    )
    results: dict = {"n_structures": n, "n_atoms": int(offsets[-1]), "steps": {}}
    results["load_start"] = os.getloadavg()[0]
    steps = results["steps"]

    tracemalloc.start()
    edges = timed("fit bins", steps, fit_bin_edges, values, species, ELEMENTS, args.bins)
    counts = timed("histograms", steps, histogram_counts, values, species, offsets, edges)
    del values, species
    vectors = timed(
        f"difference vectors ({args.mode})", steps, difference_vectors, counts, 0, args.mode
    )
    results["vector_length"] = int(vectors.shape[1])
    del counts

    for method in args.embeddings:
        if method == "tsne" and n > args.max_tsne:
            steps["embedding (tsne)"] = {"skipped": f"more than --max-tsne={args.max_tsne}"}
            continue
        coords, _ = timed(
            f"embedding ({method})", steps, embed, vectors, method=method, seed=args.seed,
            perplexity=30.0, n_jobs=1, negative_gradient_method="fft",
        )
        selection = timed(
            f"grid selection ({method} map)", steps, grid_select, coords, k=1,
            seed=args.seed, fraction=args.fraction,
        )
        results[f"selected ({method} map)"] = int(selection.indices.size)
    tracemalloc.stop()
    results["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results["load_end"] = os.getloadavg()[0]
    return results


def machine_info() -> dict:
    """Collect CPU model, core count and library versions for the table header."""
    import openTSNE
    import sklearn

    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "openTSNE": openTSNE.__version__,
        "os": platform.platform(),
        "omp_threads": os.environ.get("OMP_NUM_THREADS", "unset"),
    }


def markdown_table(runs: list[dict], args: argparse.Namespace) -> str:
    """Format the measurements of all sizes as a markdown section body."""
    info = machine_info()
    lines = [
        f"Machine: {info['cpu']}, {info['cores']} cores available; Python "
        f"{info['python']}, numpy {info['numpy']}, scikit-learn {info['scikit-learn']}, "
        f"openTSNE {info['openTSNE']}; {info['os']}; OMP_NUM_THREADS="
        f"{info['omp_threads']}.",
        "",
        f"Synthetic descriptors: {args.min_atoms} to {args.max_atoms} atoms per "
        f"structure (uniform), {len(ELEMENTS)} elements, {args.features} symmetry "
        f"functions, {args.bins} bins, mode {args.mode}, reference structure 0; grid "
        f"selection with k=1 at fraction {args.fraction}. openTSNE settings: "
        "perplexity 30, n_jobs=1, negative_gradient_method='fft', 250 "
        "early-exaggeration + 500 iterations, exact brute-force neighbour search "
        "(scikit-learn), t-SNE only up to --max-tsne structures.",
        "",
        "Traced memory counts numpy and Python allocations made after the input "
        "descriptor array (values, 8 bytes per atom and function) was built; the "
        "extra column is the peak during the step minus what was allocated at its "
        "start. openTSNE's native allocations are not traced, so the peak RSS of "
        "the run covers them.",
        "",
        "| structures | atoms | step | time (s) | traced at start (MiB) "
        "| traced peak (MiB) | extra (MiB) |",
        "| ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for run in runs:
        for step, measured in run["steps"].items():
            if "skipped" in measured:
                lines.append(
                    f"| {run['n_structures']:,} | {run['n_atoms']:,} | {step} | "
                    f"skipped ({measured['skipped']}) | | | |"
                )
                continue
            lines.append(
                f"| {run['n_structures']:,} | {run['n_atoms']:,} | {step} | "
                f"{measured['seconds']:.2f} | {measured['traced_start_mib']:.0f} | "
                f"{measured['traced_peak_mib']:.0f} | "
                f"{measured['traced_peak_mib'] - measured['traced_start_mib']:.0f} |"
            )
    lines += [
        "",
        "| structures | vector length | kept at the fraction | peak RSS of the run (MiB) "
        "| 1-min load average, start / end |",
        "| ---: | ---: | --- | ---: | --- |",
    ]
    for run in runs:
        kept = ", ".join(
            f"{run[key]:,} ({key.split('(')[1].rstrip(')')})"
            for key in run if key.startswith("selected")
        )
        lines.append(
            f"| {run['n_structures']:,} | {run['vector_length']:,} | {kept} | "
            f"{run['peak_rss_mib']:.0f} | {run.get('load_start', float('nan')):.1f} / "
            f"{run.get('load_end', float('nan')):.1f} |"
        )
    return "\n".join(lines) + "\n"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000],
                        help="numbers of structures to run (default: 10000 100000)")
    parser.add_argument("--features", type=int, default=40,
                        help="symmetry functions per atom (default: 40)")
    parser.add_argument("--bins", type=int, default=30, help="bins per function (default: 30)")
    parser.add_argument("--min-atoms", type=int, default=8, help="minimum atoms per structure (default: 8)")
    parser.add_argument("--max-atoms", type=int, default=32, help="maximum atoms per structure (default: 32)")
    parser.add_argument("--mode", default="occupancy", choices=["occupancy", "count", "set"],
                        help="difference-vector mode (default: occupancy)")
    parser.add_argument("--embeddings", nargs="+", default=["tsne", "pca"],
                        choices=["tsne", "pca"], help="map methods to time (default: tsne pca)")
    parser.add_argument("--max-tsne", type=int, default=10**9,
                        help="skip t-SNE above this many structures")
    parser.add_argument("--fraction", type=float, default=0.44,
                        help="target fraction of grid selection (default: 0.44)")
    parser.add_argument("--seed", type=int, default=0, help="seed of data and methods")
    parser.add_argument("--output", help="write the markdown table to this file")
    parser.add_argument("--single", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.single is not None:
        print(json.dumps(run_one_size(args)))
        return

    runs = []
    for n in args.sizes:
        logging.info("running %d structures in a subprocess", n)
        child_argv = [sys.executable, __file__, *(argv or sys.argv[1:]), "--single", str(n)]
        completed = subprocess.run(child_argv, stdout=subprocess.PIPE, text=True, check=True)
        runs.append(json.loads(completed.stdout.strip().splitlines()[-1]))
    table = markdown_table(runs, args)
    print(table)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(table)


if __name__ == "__main__":
    main()
