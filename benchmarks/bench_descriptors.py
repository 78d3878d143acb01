"""Benchmark symmetry-function descriptors with forces against dscribe's ACSF.

Both sides compute, for every structure, the symmetry functions of all atoms and their
derivatives with respect to all positions, then the forces of a linear model
``E = sum_atoms sum_features w_f G_f`` with fixed random weights (the work a potential
needs). equipipe gets the forces by one autograd backward pass. dscribe 2.1 gets them
from ``ACSF.derivatives(..., attach=True)``, which computes the full Jacobian
(n_atoms, n_atoms, 3, n_features) by central finite differences, contracted here with
the weights. Both run
on one thread. The same function set (``SymmetryFunctionSet.default``, G2 and G4) is
used on both sides, and the forces of the first structure of each dataset are
compared as a check that both did the same work.

A second table times the neighbour lists (pairs within the cutoff) of ASE and matscipy
on the same structures.

Usage::

    python benchmarks/bench_descriptors.py --output benchmarks/descriptors.md

Datasets: Fe-GAP22 frames (DB9 one-atom cells, DB10 two-atom cells, DB11 slabs of
about 24 atoms) from ``--fe-gap22`` when the folder exists, and PdH_x cells from
:func:`equipipe.materials.pdh.generate_pdh_dataset`.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from ase.io import read
from dscribe.descriptors import ACSF

from equipipe.materials.descriptors import (
    SymmetryFunctionSet,
    batch_graphs,
    build_graph,
    matscipy_neighbour_list,
    neighbour_list,
    symmetry_functions,
)
from equipipe.materials.pdh import generate_pdh_dataset

REPO = Path(__file__).resolve().parents[1]


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, required=True, help="markdown file to write the tables to")
    parser.add_argument("--fe-gap22", type=Path, default=REPO.parent / "shared" / "data" / "materials" / "fe-gap22",
                        help="folder with DB9.xyz, DB10.xyz, DB11.xyz (skipped when absent)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply the structures per dataset (100 DB9, 50 DB10, 6 DB11, 4 PdH) by this")
    parser.add_argument("--cutoff", type=float, default=6.0, help="cutoff radius in Å (default 6.0)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the PdH cells and the weights")
    return parser.parse_args()


# dscribe's numerical derivatives cost 2 x 3 x n_atoms descriptor evaluations per
# structure (8-15 s for a 24-atom slab on a shared 2-core machine), so the larger
# cells get fewer structures.
STRUCTURES = {"DB9": 100, "DB10": 50, "DB11": 6, "PdH": 4}


def load_datasets(arguments: argparse.Namespace) -> dict[str, tuple[list[str], list]]:
    def count(name: str) -> int:
        return max(1, round(STRUCTURES[name] * arguments.scale))

    datasets = {}
    folder = arguments.fe_gap22
    if folder.is_dir():
        for name in ("DB9", "DB10", "DB11"):
            # Spread the sample over the file, which is ordered by config_type.
            frames = read(folder / f"{name}.xyz", index=":")
            step = max(1, len(frames) // count(name))
            datasets[f"Fe-GAP22 {name}"] = (["Fe"], frames[::step][: count(name)])
    else:
        print(f"Fe-GAP22 folder {folder} not found; benchmarking PdH only")
    n_per_group = max(1, count("PdH") // 4)
    datasets["PdH_x (EMT MD)"] = (["Pd", "H"], generate_pdh_dataset(n_per_group, seed=arguments.seed))
    return datasets


def time_equipipe(sf, structures, weights, batched: bool) -> tuple[float, np.ndarray]:
    """Return seconds for descriptors and forces of all structures, and the first forces."""
    start = time.perf_counter()
    first_forces = None
    if batched:
        graphs = [build_graph(atoms, sf.cutoff, sf.elements) for atoms in structures]
        graph = batch_graphs(graphs)
        positions = torch.tensor(np.concatenate([a.get_positions() for a in structures]), requires_grad=True)
        energy = (symmetry_functions(sf, positions, graph) @ weights).sum()
        forces = -torch.autograd.grad(energy, positions)[0]
        first_forces = forces[: len(structures[0])].numpy()
    else:
        for atoms in structures:
            graph = build_graph(atoms, sf.cutoff, sf.elements)
            positions = torch.tensor(atoms.get_positions(), requires_grad=True)
            energy = (symmetry_functions(sf, positions, graph) @ weights).sum()
            forces = -torch.autograd.grad(energy, positions)[0]
            if first_forces is None:
                first_forces = forces.numpy()
    return time.perf_counter() - start, first_forces


def time_dscribe(sf, structures, weights) -> tuple[float, np.ndarray]:
    acsf = ACSF(
        r_cut=sf.cutoff,
        g2_params=[list(p) for p in sf.g2_parameters],
        g4_params=[list(p) for p in sf.angular_parameters],
        species=sf.elements,
        periodic=True,
    )
    columns = dscribe_columns(sf, acsf)
    weights_full = np.zeros(acsf.get_number_of_features())
    weights_full[columns] = weights.numpy()
    start = time.perf_counter()
    first_forces = None
    for atoms in structures:
        derivatives, _ = acsf.derivatives(atoms, attach=True, return_descriptor=True)
        # derivatives: (n_centres, n_atoms, 3, n_features) -> forces (n_atoms, 3)
        forces = -np.einsum("cakf,f->ak", derivatives, weights_full)
        if first_forces is None:
            first_forces = forces
    return time.perf_counter() - start, first_forces


def dscribe_columns(sf, acsf) -> list[int]:
    """Map our feature order onto dscribe's (species by atomic number, G1 first, pair blocks)."""
    from ase.data import atomic_numbers

    species = [int(z) for z in acsf._atomic_numbers]
    n_g2, n_angular = len(sf.g2_parameters), len(sf.angular_parameters)
    columns = []
    for element in sf.elements:
        start = species.index(atomic_numbers[element]) * (1 + n_g2) + 1
        columns += list(range(start, start + n_g2))
    for first, second in sf.element_pairs:
        a, b = species.index(atomic_numbers[first]), species.index(atomic_numbers[second])
        high, low = max(a, b), min(a, b)
        start = len(species) * (1 + n_g2) + (high * (high + 1) // 2 + low) * n_angular
        columns += list(range(start, start + n_angular))
    return columns


def time_neighbours(structures, cutoff: float, backend: str) -> float:
    start = time.perf_counter()
    for atoms in structures:
        neighbour_list("ijS", atoms, cutoff, backend)
    return time.perf_counter() - start


def machine_info() -> list[str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {name: importlib.metadata.version(name) for name in ("torch", "dscribe", "ase", "numpy")}
    if matscipy_neighbour_list is not None:
        versions["matscipy"] = importlib.metadata.version("matscipy")
    return [
        f"- CPU: {cpu}, {os.cpu_count()} logical cores visible, benchmark on 1 thread",
        f"- Python {platform.python_version()}, " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        f"- load average at start: {os.getloadavg()[0]:.1f} (other processes share the machine when > 0)",
    ]


def main() -> None:
    arguments = parse_arguments()
    torch.set_num_threads(1)
    load_at_start = machine_info()
    datasets = load_datasets(arguments)
    rng = np.random.default_rng(arguments.seed)

    rows = ["| dataset | structures | atoms | method | time (s) | atoms/s | vs dscribe | max force diff (eV/Å) |",
            "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |"]
    neighbour_rows = ["| dataset | structures | ASE (ms/structure) | matscipy (ms/structure) | speed-up |",
                      "| --- | ---: | ---: | ---: | ---: |"]
    for name, (elements, structures) in datasets.items():
        sf = SymmetryFunctionSet.default(elements, cutoff=arguments.cutoff)
        weights = torch.tensor(rng.normal(size=sf.n_features))
        n_atoms = sum(len(a) for a in structures)
        dscribe_seconds, dscribe_forces = time_dscribe(sf, structures, weights)
        results = [("dscribe ACSF.derivatives", dscribe_seconds, dscribe_forces)]
        for batched in (False, True):
            seconds, forces = time_equipipe(sf, structures, weights, batched)
            label = "equipipe, one batch" if batched else "equipipe, per structure"
            results.append((label, seconds, forces))
        for label, seconds, forces in results:
            difference = np.abs(forces - dscribe_forces).max()
            rows.append(
                f"| {name} | {len(structures)} | {n_atoms} | {label} | {seconds:.2f} | {n_atoms / seconds:,.0f} "
                f"| {dscribe_seconds / seconds:.1f}x | {difference:.1e} |"
            )
            print(rows[-1], flush=True)

        sample = structures[: min(len(structures), 30)]
        ase_seconds = time_neighbours(sample, sf.cutoff, "ase")
        if matscipy_neighbour_list is not None:
            matscipy_seconds = time_neighbours(sample, sf.cutoff, "matscipy")
            neighbour_rows.append(
                f"| {name} | {len(sample)} | {1e3 * ase_seconds / len(sample):.1f} "
                f"| {1e3 * matscipy_seconds / len(sample):.2f} | {ase_seconds / matscipy_seconds:.0f}x |"
            )
            print(neighbour_rows[-1], flush=True)

    text = "\n".join([
        "Descriptors and forces of a linear model on the symmetry functions "
        f"(SymmetryFunctionSet.default, G2 + G4, cutoff {arguments.cutoff} Å), one thread:",
        "",
        *rows,
        "",
        f"Neighbour lists (all pairs within {arguments.cutoff} Å, periodic images included):",
        "",
        *neighbour_rows,
        "",
        "Machine:",
        "",
        *load_at_start,
        "",
    ])
    print()
    print(text)
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    arguments.output.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
