"""Tests of the symmetry-function descriptors: known values, dscribe, forces, batching."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, fcc111
from ase.data import atomic_numbers
from ase.io import read
from conftest import shared_data_path
from dscribe.descriptors import ACSF

from equipipe.errors import InputError
from equipipe.materials import descriptors as descriptors_module
from equipipe.materials.descriptors import (
    DescriptorSet,
    SymmetryFunctionSet,
    batch_graphs,
    build_graph,
    compute_descriptors,
    load_descriptors,
    save_descriptors,
    symmetry_functions,
)


def small_set(elements=("Pd", "H"), angular="g4", cutoff=6.0) -> SymmetryFunctionSet:
    return SymmetryFunctionSet(
        elements=list(elements),
        cutoff=cutoff,
        g2_etas=(0.5, 2.0),
        g2_shifts=(0.0, 1.5, 2.8),
        angular=angular,
        g4_etas=(0.005, 0.1),
        g4_zetas=(1.0, 2.5),
        g4_lambdas=(-1.0, 1.0),
    )


def pdh_cell(seed: int = 0) -> Atoms:
    """Rattled 2x2x2 conventional Pd cell (32 Pd) with 6 H on octahedral sites."""
    lattice_constant = 3.95
    atoms = bulk("Pd", "fcc", a=lattice_constant, cubic=True).repeat((2, 2, 2))
    sites = np.array([[0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5], [0.5, 0.5, 0.5], [1.5, 0, 0], [1, 1.5, 1]])
    atoms += Atoms("H6", positions=sites * lattice_constant)
    atoms.rattle(0.08, seed=seed)
    return atoms


def pdh_slab() -> Atoms:
    """Pd(111) slab, periodic in-plane, with two H above the top layer."""
    slab = fcc111("Pd", size=(2, 2, 3), a=3.95, vacuum=6.0)
    top = slab.positions[:, 2].max()
    slab += Atoms("H2", positions=[[1.0, 0.6, top + 0.9], [2.4, 1.9, top + 1.0]])
    slab.rattle(0.05, seed=3)
    return slab


def features(sf: SymmetryFunctionSet, atoms: Atoms) -> np.ndarray:
    graph = build_graph(atoms, sf.cutoff, sf.elements)
    return symmetry_functions(sf, torch.tensor(atoms.get_positions()), graph).numpy()


def dscribe_columns(sf: SymmetryFunctionSet, acsf: ACSF) -> list[int]:
    """Return the dscribe ACSF columns in our feature order.

    dscribe 2.1 orders neighbour species by atomic number, writes a G1 (sum of cutoff
    functions) before the G2 of each species, and places the angular block of species
    indices (a, b), a >= b, at a * (a + 1) / 2 + b.
    """
    species = [int(z) for z in acsf._atomic_numbers]
    n_g2 = len(sf.g2_parameters)
    n_angular = len(sf.angular_parameters)
    columns = []
    for element in sf.elements:
        block = species.index(atomic_numbers[element])
        start = block * (1 + n_g2) + 1
        columns += list(range(start, start + n_g2))
    angular_start = len(species) * (1 + n_g2)
    for first, second in sf.element_pairs:
        a, b = species.index(atomic_numbers[first]), species.index(atomic_numbers[second])
        high, low = max(a, b), min(a, b)
        start = angular_start + (high * (high + 1) // 2 + low) * n_angular
        columns += list(range(start, start + n_angular))
    return columns


def dscribe_features(sf: SymmetryFunctionSet, atoms: Atoms) -> np.ndarray:
    angular = [list(p) for p in sf.angular_parameters]
    acsf = ACSF(
        r_cut=sf.cutoff,
        g2_params=[list(p) for p in sf.g2_parameters],
        g4_params=angular if sf.angular == "g4" else None,
        g5_params=angular if sf.angular == "g5" else None,
        species=sf.elements,
        periodic=bool(atoms.pbc.any()),
    )
    return acsf.create(atoms)[:, dscribe_columns(sf, acsf)]


def assert_matches_dscribe(sf: SymmetryFunctionSet, ours: np.ndarray, reference: np.ndarray) -> None:
    """Compare with dscribe where dscribe is finite.

    For three collinear atoms round-off makes 1 + lambda cos(theta) slightly negative,
    and dscribe 2.1.2 raises it to a fractional zeta, which gives NaN; ours clamps it at 0.
    """
    assert ours.shape == reference.shape
    assert np.all(np.isfinite(ours))
    finite = np.isfinite(reference)
    nan_columns = {sf.feature_names[k] for k in np.flatnonzero(~finite.all(axis=0))}
    assert all("zeta=2.5" in name for name in nan_columns)
    np.testing.assert_allclose(ours[finite], reference[finite], rtol=1e-10, atol=1e-10)


def test_g2_dimer_known_value():
    sf = SymmetryFunctionSet(["H"], cutoff=6.0, g2_etas=[0.5], g2_shifts=[1.0])
    dimer = Atoms("H2", positions=[[0, 0, 0], [0, 0, 1.5]])
    # exp(-0.5 (1.5 - 1)^2) * 0.5 (cos(pi 1.5 / 6) + 1) = 0.882497 * 0.853553
    expected = 0.7532582233891434
    values = features(sf, dimer)
    assert values.shape == (2, 1)
    assert values[0, 0] == pytest.approx(expected, rel=1e-12)
    assert values[1, 0] == pytest.approx(expected, rel=1e-12)


def test_g2_beyond_cutoff_is_zero():
    sf = SymmetryFunctionSet(["H"], cutoff=3.0, g2_etas=[0.01], g2_shifts=[0.0])
    dimer = Atoms("H2", positions=[[0, 0, 0], [0, 0, 3.2]])
    assert np.all(features(sf, dimer) == 0.0)


def test_g4_triangle_known_value():
    sf = SymmetryFunctionSet(
        ["H"], cutoff=6.0, g2_etas=[1.0], g2_shifts=[0.0],
        angular="g4", g4_etas=[0.1], g4_zetas=[2.0], g4_lambdas=[1.0],
    )
    # Right angle at atom 0: r_ij = 1.5, r_ik = 2.0, r_jk = 2.5, cos(theta) = 0.
    triangle = Atoms("H3", positions=[[0, 0, 0], [1.5, 0, 0], [0, 2.0, 0]])
    # 2^(1-2) (1 + 0)^2 exp(-0.1 * 12.5) fc(1.5) fc(2.0) fc(2.5)
    # = 0.5 * 0.286505 * 0.853553 * 0.75 * 0.629410
    expected = 0.05772011217015147
    assert features(sf, triangle)[0, 1] == pytest.approx(expected, rel=1e-12)


def test_feature_names_match_layout():
    sf = small_set()
    assert sf.n_features == 2 * 6 + 3 * 8
    assert len(sf.feature_names) == sf.n_features
    assert sf.feature_names[0] == "G2[Pd](eta=0.5,rs=0)"
    assert sf.feature_names[12] == "G4[Pd-Pd](eta=0.005,zeta=1,lambda=-1)"
    assert sf.feature_names[-1] == "G4[H-H](eta=0.1,zeta=2.5,lambda=+1)"


def test_default_set_sizes():
    sf = SymmetryFunctionSet.default(["Pd", "H"])
    assert sf.cutoff == 6.0
    assert sf.n_features == 2 * 16 + 3 * 8
    assert max(sf.g2_shifts) < sf.cutoff


@pytest.mark.parametrize("angular", ["g4", "g5"])
@pytest.mark.parametrize("structure", ["bulk", "slab"])
def test_matches_dscribe_pdh(angular, structure):
    sf = small_set(angular=angular)
    atoms = pdh_cell() if structure == "bulk" else pdh_slab()
    assert_matches_dscribe(sf, features(sf, atoms), dscribe_features(sf, atoms))


@pytest.mark.shared_data
@pytest.mark.parametrize("angular", ["g4", "g5"])
def test_matches_dscribe_fe_gap22(angular):
    folder = shared_data_path("materials", "fe-gap22")
    frames = read(folder / "DB10.xyz", index="0:3") + read(folder / "DB11.xyz", index="0:200:100")
    sf = SymmetryFunctionSet.default(["Fe"], cutoff=5.0)
    sf.angular = angular
    for atoms in frames:
        assert_matches_dscribe(sf, features(sf, atoms), dscribe_features(sf, atoms))


def test_forces_match_finite_differences():
    sf = small_set()
    atoms = pdh_cell(seed=4)[::3]  # 13 atoms keep the finite-difference loop short
    atoms.set_cell(atoms.get_cell() * 0.8, scale_atoms=True)
    graph = build_graph(atoms, sf.cutoff, sf.elements)
    weights = torch.tensor(np.random.default_rng(0).normal(size=sf.n_features))

    def energy(positions: torch.Tensor) -> torch.Tensor:
        return (symmetry_functions(sf, positions, graph) @ weights).sum()

    positions = torch.tensor(atoms.get_positions(), requires_grad=True)
    forces = -torch.autograd.grad(energy(positions), positions)[0].numpy()

    step = 1e-5
    numeric = np.zeros_like(forces)
    for atom in range(len(atoms)):
        for axis in range(3):
            plus, minus = atoms.get_positions(), atoms.get_positions()
            plus[atom, axis] += step
            minus[atom, axis] -= step
            difference = energy(torch.tensor(plus)) - energy(torch.tensor(minus))
            numeric[atom, axis] = -difference.item() / (2 * step)
    assert np.abs(forces).max() > 0.1
    np.testing.assert_allclose(forces, numeric, atol=1e-6)


def test_features_invariant_under_rotation():
    sf = small_set()
    atoms = pdh_cell()
    rotated = atoms.copy()
    rotated.rotate(37.0, (1, 2, 3), rotate_cell=True)
    np.testing.assert_allclose(features(sf, rotated), features(sf, atoms), atol=1e-10)


def test_batch_equals_separate_graphs():
    sf = small_set()
    structures = [pdh_cell(0), pdh_slab(), pdh_cell(1)[:20]]
    graphs = [build_graph(a, sf.cutoff, sf.elements) for a in structures]
    batched = batch_graphs(graphs)
    positions = torch.tensor(np.concatenate([a.get_positions() for a in structures]))
    together = symmetry_functions(sf, positions, batched).numpy()
    separate = np.concatenate([features(sf, a) for a in structures])
    np.testing.assert_allclose(together, separate, rtol=1e-12, atol=1e-12)
    assert batched.n_structures == 3
    assert batched.structure_index.tolist() == [0] * 38 + [1] * 14 + [2] * 20


def test_neighbour_backends_agree():
    if descriptors_module.matscipy_neighbour_list is None:
        pytest.skip("matscipy is not installed, only the ASE neighbour list is available")
    sf = small_set()
    atoms = pdh_cell()
    by_ase = build_graph(atoms, sf.cutoff, sf.elements, backend="ase")
    by_matscipy = build_graph(atoms, sf.cutoff, sf.elements, backend="matscipy")
    positions = torch.tensor(atoms.get_positions())
    np.testing.assert_allclose(
        symmetry_functions(sf, positions, by_ase).numpy(),
        symmetry_functions(sf, positions, by_matscipy).numpy(),
        rtol=1e-12, atol=1e-12,
    )
    assert by_ase.n_pairs == by_matscipy.n_pairs
    assert by_ase.n_triplets == by_matscipy.n_triplets


def test_float32_follows_positions():
    sf = small_set()
    atoms = pdh_cell()
    graph = build_graph(atoms, sf.cutoff, sf.elements)
    values = symmetry_functions(sf, torch.tensor(atoms.get_positions(), dtype=torch.float32), graph)
    assert values.dtype == torch.float32
    np.testing.assert_allclose(values.numpy(), features(sf, atoms), rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_matches_cpu():
    sf = small_set()
    atoms = pdh_cell()
    graph = build_graph(atoms, sf.cutoff, sf.elements).to("cuda")
    positions = torch.tensor(atoms.get_positions(), device="cuda", requires_grad=True)
    values = symmetry_functions(sf, positions, graph)
    assert values.device.type == "cuda"
    np.testing.assert_allclose(values.detach().cpu().numpy(), features(sf, atoms), rtol=1e-10, atol=1e-10)

    weights = torch.linspace(-1.0, 1.0, sf.n_features, dtype=torch.float64)
    forces = -torch.autograd.grad((values @ weights.cuda()).sum(), positions)[0]
    cpu_positions = torch.tensor(atoms.get_positions(), requires_grad=True)
    cpu_values = symmetry_functions(sf, cpu_positions, build_graph(atoms, sf.cutoff, sf.elements))
    cpu_forces = -torch.autograd.grad((cpu_values @ weights).sum(), cpu_positions)[0]
    np.testing.assert_allclose(forces.cpu().numpy(), cpu_forces.numpy(), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"elements": []}, "elements=\\[\\] is empty"),
        ({"elements": ["Pd", "Xx"]}, "unknown chemical symbols"),
        ({"elements": ["Pd", "Pd"]}, "lists an element twice"),
        ({"cutoff": -1.0}, "cutoff=-1.0 Å must be a positive"),
        ({"g2_etas": [-0.5]}, "g2_etas contains \\[-0.5\\]"),
        ({"g2_shifts": [7.0]}, "g2_shifts contains \\[7.0\\]"),
        ({"angular": "g3"}, "angular='g3' is not supported"),
        ({"g4_zetas": [0.5]}, "g4_zetas contains \\[0.5\\]"),
        ({"g4_lambdas": [0.5]}, "g4_lambdas contains \\[0.5\\]"),
        ({"g4_etas": []}, "must all be empty"),
    ],
)
def test_invalid_parameters_rejected(arguments, message):
    values = {
        "elements": ["Pd", "H"], "cutoff": 6.0, "g2_etas": [0.5], "g2_shifts": [1.0],
        "angular": "g4", "g4_etas": [0.01], "g4_zetas": [1.0], "g4_lambdas": [1.0],
    }
    values.update(arguments)
    with pytest.raises(ValueError, match=message):
        SymmetryFunctionSet(**values)


def test_graph_for_other_elements_rejected():
    sf = small_set()
    atoms = pdh_cell()
    graph = build_graph(atoms, sf.cutoff)  # elements sorted by atomic number: H, Pd
    with pytest.raises(ValueError, match="build it with build_graph\\(atoms, sf.cutoff, elements=sf.elements\\)"):
        symmetry_functions(sf, torch.tensor(atoms.get_positions()), graph)


def test_graph_with_smaller_cutoff_rejected():
    sf = small_set()
    atoms = pdh_cell()
    graph = build_graph(atoms, 4.0, sf.elements)
    with pytest.raises(ValueError, match="graph cutoff 4.0 Å is smaller"):
        symmetry_functions(sf, torch.tensor(atoms.get_positions()), graph)


def test_unknown_element_in_structure_rejected():
    sf = small_set()
    atoms = pdh_cell()
    atoms[0].symbol = "Ni"
    with pytest.raises(ValueError, match="contains elements \\['Ni'\\]"):
        build_graph(atoms, sf.cutoff, sf.elements)
    atoms.info["id"] = "cell:0:abc"
    with pytest.raises(InputError, match="structure cell:0:abc contains elements \\['Ni'\\]"):
        compute_descriptors(sf, [atoms])


def test_compute_descriptors_layout():
    sf = small_set()
    structures = [pdh_cell(0), pdh_slab(), pdh_cell(1)]
    for k, atoms in enumerate(structures):
        atoms.info["id"] = f"s{k}"
    result = compute_descriptors(sf, structures, max_atoms_per_batch=40)
    assert result.values.shape == (38 + 14 + 38, sf.n_features)
    assert result.offsets.tolist() == [0, 38, 52, 90]
    assert result.ids.tolist() == ["s0", "s1", "s2"]
    assert result.species[:32].tolist() == [46] * 32
    assert result.species[32:38].tolist() == [1] * 6
    np.testing.assert_allclose(result.structure_values(1), features(sf, structures[1]), rtol=1e-12)


def test_save_load_round_trip(tmp_path):
    sf = small_set()
    structures = [pdh_cell(0), pdh_slab()]
    result = compute_descriptors(sf, structures)
    path = tmp_path / "descriptors.npz"
    save_descriptors(path, result)
    loaded = load_descriptors(path)
    np.testing.assert_array_equal(loaded.values, result.values)
    np.testing.assert_array_equal(loaded.species, result.species)
    np.testing.assert_array_equal(loaded.offsets, result.offsets)
    assert loaded.ids.tolist() == ["0", "1"]
    assert loaded.feature_names == sf.feature_names


def test_load_inconsistent_file_rejected(tmp_path):
    path = tmp_path / "broken.npz"
    broken = DescriptorSet(
        values=np.zeros((3, 2)), species=np.zeros(3, dtype=np.int64), offsets=np.array([0, 2]),
        ids=np.array(["a", "b"]), feature_names=["f0", "f1"],
    )
    save_descriptors(path, broken)
    with pytest.raises(InputError, match="inconsistent shapes"):
        load_descriptors(path)
    np.savez(tmp_path / "partial.npz", values=np.zeros((3, 2)))
    with pytest.raises(InputError, match="lacks arrays"):
        load_descriptors(tmp_path / "partial.npz")


def test_cutoff_function_smooth_at_cutoff():
    sf = SymmetryFunctionSet(["H"], cutoff=3.0, g2_etas=[0.0], g2_shifts=[0.0])
    just_inside = Atoms("H2", positions=[[0, 0, 0], [0, 0, 3.0 - 1e-4]])
    # fc(rc - d) = 0.5 (1 - cos(pi d / rc)) ~ (pi d / rc)^2 / 4
    expected = 0.25 * (math.pi * 1e-4 / 3.0) ** 2
    assert features(sf, just_inside)[0, 0] == pytest.approx(expected, rel=1e-6)
