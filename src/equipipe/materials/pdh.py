"""Synthetic palladium hydride (PdH_x) dataset sampled by Langevin molecular dynamics.

The workflow's default run needs a dataset without downloads, so this module builds one
with ASE: fcc palladium cells with hydrogen on octahedral interstitial sites at several
contents x, in four groups (``config_type``):

- ``bulk``: 2 x 2 x 2 conventional cell (32 Pd, 32 octahedral sites);
- ``strained``: the bulk cell under a random strain (normal up to 4 %, shear up to 2 %);
- ``vacancy``: the bulk cell with one Pd removed;
- ``surface``: a 3 x 3 x 4 Pd(111) slab with 8 Å of vacuum on each side, hydrogen in
  the fcc hollow sites of the top layer (coverage x) and in octahedral sites below it.

Each (group, temperature, x) starts from a seeded random hydrogen arrangement and
velocities, runs a short Langevin trajectory (``ase.md.langevin``) and keeps a frame every
few steps. Energies and forces come from ASE's EMT calculator.
With the defaults, 75 frames per group (300 in all) took 12 s of CPU time on one AMD
EPYC core with ASE 3.29.

EMT (effective medium theory, ``ase.calculators.emt.EMT``) is a simple analytic potential
standing in for DFT. It is fast enough to run on a laptop, but ASE's EMT hydrogen
parameters are rough. One hydrogen atom on an octahedral site of a 32-atom Pd cell raises
the EMT energy by about 15 eV, so the ideal PdH_x cells are far from an EMT minimum and
their forces reach 10-25 eV/Å. The
frames therefore follow the first tens of femtoseconds of palladium relaxing around
hydrogen under a strong thermostat rather than equilibrium PdH_x. The dataset exercises
the pipeline (descriptors, selection, training) on structures with the geometry of
palladium hydride; its energies do not describe palladium hydride.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from ase import Atoms
from ase.build import bulk, fcc111
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import Stationary

try:
    from ase.md.velocitydistribution import thermalize_momenta
except ImportError:  # ASE < 3.29 has only the older name, deprecated since 3.29.
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution as thermalize_momenta
from ase.units import fs

from equipipe.logs import ProgressLogger
from equipipe.materials.ingest import structure_id

logger = logging.getLogger(__name__)

GROUPS = ("bulk", "strained", "vacancy", "surface")
PD_LATTICE_CONSTANT = 3.88
"""Å, the EMT equilibrium lattice constant of fcc Pd (energy minimum on a 0.02 Å grid)."""
LATTICE_EXPANSION_PER_X = 0.2
"""Å per unit hydrogen content: an approximate Vegard-law expansion of PdH_x. EMT alone
would keep expanding the cell, so the lattice constant is set, not relaxed."""
# Fractional coordinates of the 4 octahedral sites of the conventional fcc cell.
OCTAHEDRAL_SITES = np.array([[0.5, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 0.5], [0.5, 0.5, 0.5]])


def generate_pdh_dataset(
    n_frames_per_group: int,
    seed: int,
    temperatures: Sequence[float] = (300.0, 600.0, 900.0),
    hydrogen_contents: Sequence[float] = (0.25, 0.5, 0.75),
    groups: Sequence[str] = GROUPS,
    equilibration_steps: int = 4,
    steps_between_frames: int = 2,
    timestep_fs: float = 2.0,
    friction_per_fs: float = 0.2,
    hydrogen_mass: float = 16.0,
) -> list[Atoms]:
    """Generate PdH_x frames with EMT energies and forces.

    Frames of a group are shared as evenly as possible among its (temperature, x)
    trajectories. Each trajectory starts with palladium displaced from its ideal sites by
    a Gaussian of ``0.05 sqrt(T / 300 K)`` Å per component (roughly its thermal vibration
    amplitude) and hydrogen on the site centres, runs ``equilibration_steps`` steps, then keeps a frame every
    ``steps_between_frames`` steps. Consecutive frames of a trajectory are correlated,
    as in any MD dataset, which is the redundancy that dataset selection removes.

    Hydrogen moves with the mass ``hydrogen_mass`` during MD: EMT's hydrogen well in
    palladium is stiff (about 70 eV/Å^2, a vibration period near 8 fs at 1 amu), and a
    heavier mass lets a 2 fs timestep integrate it stably. Masses do not change the
    Boltzmann distribution of configurations that the frames sample.

    Parameters
    ----------
    n_frames_per_group : int
        Frames per group (``config_type``), >= 1.
    seed : int
        Seed of every random choice; the same seed gives the same frames.
    temperatures : sequence of float, default (300, 600, 900)
        Langevin temperatures in K, each > 0.
    hydrogen_contents : sequence of float, default (0.25, 0.5, 0.75)
        Hydrogen per palladium site x, each in [0, 1]. For the surface group x is the
        coverage of the top-layer hollow sites and of the octahedral sites beneath.
    groups : sequence of str, default all four
        Subset of ``("bulk", "strained", "vacancy", "surface")``.
    equilibration_steps : int, default 4
        Steps discarded at the start of each trajectory.
    steps_between_frames : int, default 2
        Steps between kept frames, >= 1.
    timestep_fs : float, default 2.0
        MD timestep in fs.
    friction_per_fs : float, default 0.2
        Langevin friction in 1/fs. The strong coupling removes the energy that EMT
        releases as palladium relaxes around hydrogen, tens of eV per cell. With
        0.02/fs the cells heat to 5000-9000 K and hydrogen atoms pair up.
    hydrogen_mass : float, default 16.0
        Mass of hydrogen in amu during MD (see above); the frames store no masses.

    Returns
    -------
    list of ase.Atoms
        ``n_frames_per_group * len(groups)`` frames, each with a SinglePointCalculator
        (energy in eV, forces in eV/Å) and ``info`` keys ``id``
        (``pdh-<group>:<frame>:<hash>``), ``source`` (``"generated:pdh"``), ``frame``,
        ``config_type``, ``temperature_K`` and ``hydrogen_content``.
    """
    _validate(n_frames_per_group, temperatures, hydrogen_contents, groups,
              equilibration_steps, steps_between_frames, timestep_fs, friction_per_fs)
    if not hydrogen_mass > 0:
        raise ValueError(f"hydrogen_mass={hydrogen_mass} amu must be positive")
    root = np.random.SeedSequence(seed)
    group_seeds = dict(zip(GROUPS, root.spawn(len(GROUPS))))
    conditions = [(float(t), float(x)) for t in temperatures for x in hydrogen_contents]

    frames: list[Atoms] = []
    progress = ProgressLogger(logger, total=n_frames_per_group * len(groups), what="frame")
    for group in groups:
        counts = _share(n_frames_per_group, len(conditions))
        trajectory_seeds = group_seeds[group].spawn(len(conditions))
        group_frames: list[Atoms] = []
        for (temperature, content), count, trajectory_seed in zip(conditions, counts, trajectory_seeds):
            if count == 0:
                continue
            rng = np.random.default_rng(trajectory_seed)
            atoms = _build_cell(group, content, rng)
            palladium = atoms.numbers == 46
            thermal_displacement = 0.05 * np.sqrt(temperature / 300.0)  # Å
            atoms.positions[palladium] += rng.normal(0.0, thermal_displacement, size=(int(palladium.sum()), 3))
            masses = atoms.get_masses()
            masses[atoms.numbers == 1] = hydrogen_mass
            atoms.set_masses(masses)
            snapshots = _run_langevin(
                atoms, temperature, count, rng, equilibration_steps, steps_between_frames,
                timestep_fs, friction_per_fs,
            )
            for snapshot in snapshots:
                snapshot.info.update(config_type=group, temperature_K=temperature, hydrogen_content=content)
            group_frames.extend(snapshots)
            progress.update(len(frames) + len(group_frames))
        for index, atoms in enumerate(group_frames):
            energy = atoms.calc.results["energy"]
            atoms.info["id"] = structure_id(f"pdh-{group}", index, atoms, energy)
            atoms.info["source"] = "generated:pdh"
            atoms.info["frame"] = index
        frames.extend(group_frames)
    progress.update(len(frames), force=True)
    logger.info("generated %d PdH_x frames in %d groups (seed %d)", len(frames), len(groups), seed)
    return frames


def _validate(n_frames_per_group, temperatures, hydrogen_contents, groups,
              equilibration_steps, steps_between_frames, timestep_fs, friction_per_fs) -> None:
    if int(n_frames_per_group) != n_frames_per_group or n_frames_per_group < 1:
        raise ValueError(f"n_frames_per_group={n_frames_per_group} must be an integer >= 1")
    if not temperatures or any(not np.isfinite(t) or t <= 0 for t in temperatures):
        raise ValueError(f"temperatures={list(temperatures)} K must be a non-empty list of positive numbers")
    if not hydrogen_contents or any(not 0 <= x <= 1 for x in hydrogen_contents):
        raise ValueError(f"hydrogen_contents={list(hydrogen_contents)} must be a non-empty list of values in [0, 1]")
    unknown = [g for g in groups if g not in GROUPS]
    if not groups or unknown or len(set(groups)) != len(groups):
        raise ValueError(f"groups={list(groups)} must be distinct values from {GROUPS}")
    if equilibration_steps < 0 or steps_between_frames < 1:
        raise ValueError(
            f"equilibration_steps={equilibration_steps} must be >= 0 and "
            f"steps_between_frames={steps_between_frames} >= 1"
        )
    if timestep_fs <= 0 or friction_per_fs <= 0:
        raise ValueError(f"timestep_fs={timestep_fs} and friction_per_fs={friction_per_fs} must be positive")


def _share(total: int, parts: int) -> list[int]:
    """Split ``total`` into ``parts`` integers that differ by at most one."""
    base, extra = divmod(total, parts)
    return [base + (1 if k < extra else 0) for k in range(parts)]


def _build_cell(group: str, content: float, rng: np.random.Generator) -> Atoms:
    """Return the starting cell of ``group`` with hydrogen at content ``content``."""
    lattice_constant = PD_LATTICE_CONSTANT + LATTICE_EXPANSION_PER_X * content
    if group == "surface":
        return _surface_slab(lattice_constant, content, rng)

    palladium = bulk("Pd", "fcc", a=lattice_constant, cubic=True).repeat((2, 2, 2))
    # Octahedral sites of every conventional cell of the 2 x 2 x 2 supercell, in Å.
    cell_origins = np.array([[i, j, k] for i in range(2) for j in range(2) for k in range(2)], dtype=float)
    sites = ((cell_origins[:, None, :] + OCTAHEDRAL_SITES[None, :, :]).reshape(-1, 3)) * lattice_constant
    n_hydrogen = int(round(content * len(sites)))
    chosen = np.sort(rng.choice(len(sites), size=n_hydrogen, replace=False))
    atoms = palladium + Atoms(f"H{n_hydrogen}", positions=sites[chosen]) if n_hydrogen else palladium

    if group == "strained":
        strain = np.diag(rng.uniform(-0.04, 0.04, size=3))
        shear = rng.uniform(-0.02, 0.02, size=3)
        strain[0, 1] = strain[1, 0] = shear[0]
        strain[0, 2] = strain[2, 0] = shear[1]
        strain[1, 2] = strain[2, 1] = shear[2]
        atoms.set_cell(np.asarray(atoms.get_cell()) @ (np.eye(3) + strain), scale_atoms=True)
    elif group == "vacancy":
        palladium_indices = [k for k, s in enumerate(atoms.get_chemical_symbols()) if s == "Pd"]
        del atoms[int(rng.choice(palladium_indices))]
    return atoms


def _surface_slab(lattice_constant: float, content: float, rng: np.random.Generator) -> Atoms:
    """Return a Pd(111) slab with hydrogen in top-layer fcc hollows and sub-surface octahedral sites."""
    slab = fcc111("Pd", size=(3, 3, 4), a=lattice_constant, vacuum=8.0, periodic=False)
    slab.pbc = (True, True, False)
    layer_spacing = lattice_constant / np.sqrt(3.0)
    z_layers = np.unique(np.round(slab.positions[:, 2], 6))
    top = z_layers[-1]
    # In ABC stacking the fcc hollow of the top layer sits above an atom of the third
    # layer from the top, and the octahedral site between the top two layers lies
    # below that hollow.
    hollow_xy = slab.positions[np.isclose(slab.positions[:, 2], z_layers[-3])][:, :2]
    hollow_sites = np.column_stack([hollow_xy, np.full(len(hollow_xy), top + 0.9)])
    octahedral_sites = np.column_stack([hollow_xy, np.full(len(hollow_xy), top - 0.5 * layer_spacing)])
    sites = np.concatenate([hollow_sites, octahedral_sites])
    n_hydrogen = int(round(content * len(sites)))
    chosen = np.sort(rng.choice(len(sites), size=n_hydrogen, replace=False))
    if n_hydrogen:
        slab += Atoms(f"H{n_hydrogen}", positions=sites[chosen])
    return slab


def _run_langevin(
    atoms: Atoms,
    temperature: float,
    n_frames: int,
    rng: np.random.Generator,
    equilibration_steps: int,
    steps_between_frames: int,
    timestep_fs: float,
    friction_per_fs: float,
) -> list[Atoms]:
    """Run Langevin MD with EMT and return ``n_frames`` snapshots with their energy and forces."""
    atoms.calc = EMT()
    thermalize_momenta(atoms, temperature_K=temperature, rng=rng)
    Stationary(atoms)
    # fixcm=False because ASE 3.28+ deprecates fixcm=True, which samples NVT slightly wrongly.
    dynamics = Langevin(
        atoms, timestep=timestep_fs * fs, temperature_K=temperature,
        friction=friction_per_fs / fs, fixcm=False, rng=rng,
    )
    dynamics.run(equilibration_steps)
    snapshots = []
    for _ in range(n_frames):
        dynamics.run(steps_between_frames)
        snapshot = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        snapshot.calc = SinglePointCalculator(
            snapshot, energy=float(atoms.get_potential_energy()), forces=atoms.get_forces().copy()
        )
        snapshots.append(snapshot)
    return snapshots
