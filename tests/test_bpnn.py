"""Tests of the Behler-Parrinello potential, its training and its evaluation."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import torch
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from equipipe.devices import resolve_device
from equipipe.errors import ConfigError
from equipipe.materials.bpnn import BehlerParrinelloPotential, PotentialConfig
from equipipe.materials.descriptors import SymmetryFunctionSet, batch_graphs, build_graph
from equipipe.materials.evaluation import error_metrics, learning_curve_table, predict
from equipipe.materials.training import TrainingConfig, train_potential

# A small descriptor set keeps every test fast; 4.5 Å covers the first two Pd shells.
SF = SymmetryFunctionSet(
    ["Pd", "H"],
    cutoff=4.5,
    g2_etas=(0.5, 2.0),
    g2_shifts=(1.5, 2.5, 3.5),
    g4_etas=(0.05,),
    g4_zetas=(1.0, 2.0),
    g4_lambdas=(-1.0, 1.0),
)
FAST = {"hidden": (8, 8), "batch_size": 4, "learning_rate": 5e-3, "device": "cpu", "log_interval": 1e-9}


def pdh_cell(seed: int, strain: float = 0.0, rattle: float = 0.05):
    """Return a rattled 4-Pd fcc cell with one octahedral H, labelled by EMT."""
    atoms = bulk("Pd", "fcc", a=3.89 * (1.0 + strain), cubic=True)
    atoms.append("H")
    atoms.positions[-1] = [atoms.cell[0, 0] / 2, 0.0, 0.0]  # octahedral site
    atoms.rattle(rattle, seed=seed)
    atoms.calc = EMT()
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
    atoms.info["id"] = f"pdh-{seed}"
    atoms.info["config_type"] = "bulk"
    return atoms


def pdh_set(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [pdh_cell(seed * 1000 + k, strain=float(rng.uniform(-0.03, 0.03))) for k in range(n)]


def random_model(atoms_list, seed: int = 0) -> BehlerParrinelloPotential:
    """Return a float64 model with random weights and constants fitted to ``atoms_list``."""
    torch.manual_seed(seed)
    model = BehlerParrinelloPotential(SF, PotentialConfig(hidden=(8, 8))).double()
    graphs = [build_graph(a, SF.cutoff, SF.elements) for a in atoms_list]
    batch = batch_graphs(graphs)
    positions = torch.from_numpy(np.concatenate([a.get_positions() for a in atoms_list]))
    from equipipe.materials.descriptors import symmetry_functions

    with torch.no_grad():
        model.fit_normalisation(symmetry_functions(SF, positions, batch), batch.species)
    return model


def model_energy(model: BehlerParrinelloPotential, atoms) -> float:
    graph = build_graph(atoms, SF.cutoff, SF.elements)
    positions = torch.from_numpy(atoms.get_positions())
    with torch.no_grad():
        return float(model(positions, graph)[0])


# ---------------------------------------------------------------------- physics of the model


def test_forces_match_finite_differences():
    atoms = pdh_cell(seed=1, rattle=0.1)
    model = random_model([atoms, pdh_cell(seed=2)])
    graph = build_graph(atoms, SF.cutoff, SF.elements)
    positions = torch.from_numpy(atoms.get_positions())
    _, forces = model.energy_and_forces(positions, graph)

    # Central differences with h = 1e-5 Å have a truncation error near 1e-10 eV/Å.
    step = 1e-5
    numeric = np.zeros((len(atoms), 3))
    for atom in range(len(atoms)):
        for axis in range(3):
            shifted = atoms.copy()
            shifted.positions[atom, axis] += step
            plus = model_energy(model, shifted)
            shifted.positions[atom, axis] -= 2 * step
            minus = model_energy(model, shifted)
            numeric[atom, axis] = -(plus - minus) / (2 * step)
    assert np.abs(numeric).max() > 1e-3  # the check is not trivially zero
    np.testing.assert_allclose(forces.numpy(), numeric, atol=1e-7)


def test_energy_invariant_under_rotation_and_translation():
    atoms = pdh_cell(seed=3, rattle=0.1)
    model = random_model([atoms])
    reference = model_energy(model, atoms)

    moved = atoms.copy()
    moved.rotate(37.0, (1.0, 2.0, 0.5), rotate_cell=True)
    moved.translate((0.3, -1.2, 2.7))
    assert model_energy(model, moved) == pytest.approx(reference, abs=1e-9)


def test_energy_invariant_under_same_element_permutation():
    atoms = pdh_cell(seed=4, rattle=0.1)
    model = random_model([atoms])
    reference = model_energy(model, atoms)

    permuted = atoms[[2, 0, 3, 1, 4]]  # the four Pd atoms reordered, H kept
    assert permuted.get_chemical_symbols() == atoms.get_chemical_symbols()
    assert model_energy(model, permuted) == pytest.approx(reference, abs=1e-9)


def test_energy_extensive_for_supercell():
    atoms = pdh_cell(seed=5, rattle=0.1)
    model = random_model([atoms])
    single = model_energy(model, atoms)
    double = model_energy(model, atoms.repeat((2, 1, 1)))
    assert double == pytest.approx(2 * single, abs=1e-8)


def test_batched_energies_equal_single_structures():
    structures = pdh_set(3, seed=6)
    model = random_model(structures)
    graph = batch_graphs([build_graph(a, SF.cutoff, SF.elements) for a in structures])
    positions = torch.from_numpy(np.concatenate([a.get_positions() for a in structures]))
    with torch.no_grad():
        batched = model(positions, graph).numpy()
    single = [model_energy(model, a) for a in structures]
    np.testing.assert_allclose(batched, single, atol=1e-10)


def test_energy_offset_least_squares_known_answer():
    model = BehlerParrinelloPotential(SF)
    # E = 4 * (-5) + n_H * (-2) per structure, so the offsets are exactly -5 and -2.
    counts = np.array([[4, 0], [4, 1], [4, 4]])
    energies = counts @ np.array([-5.0, -2.0])
    offset = model.fit_energy_offset(counts, energies)
    np.testing.assert_allclose(offset, [-5.0, -2.0], atol=1e-12)
    np.testing.assert_allclose(model.energy_offset.numpy(), [-5.0, -2.0], atol=1e-6)


# ---------------------------------------------------------------------- saving


def test_save_load_round_trip_weights_only(tmp_path):
    structures = pdh_set(3, seed=7)
    model = random_model(structures)
    model.energy_offset.copy_(torch.tensor([-4.0, -1.5]))
    path = tmp_path / "potential.pt"
    model.save(path)

    saved = torch.load(path, weights_only=True)
    loaded = BehlerParrinelloPotential.from_saved(saved)
    assert loaded.symmetry_function_set == SF
    assert loaded.config == model.config
    graph = batch_graphs([build_graph(a, SF.cutoff, SF.elements) for a in structures])
    positions = torch.from_numpy(np.concatenate([a.get_positions() for a in structures]))
    energy_a, forces_a = model.energy_and_forces(positions, graph)
    energy_b, forces_b = loaded.energy_and_forces(positions, graph)
    assert torch.equal(energy_a, energy_b)
    assert torch.equal(forces_a, forces_b)


# ---------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def pdh_training_set():
    return pdh_set(24, seed=10)


def test_training_lowers_validation_error(pdh_training_set):
    config = TrainingConfig(epochs=25, patience=25, seed=1, **FAST)
    model, history = train_potential(pdh_training_set, SF, config)
    first = history["epochs"][0]
    best = history["epochs"][history["best_epoch"] - 1]
    assert history["n_validation"] == 2  # round(0.1 * 24)
    assert best["validation_loss"] < 0.3 * first["validation_loss"]
    assert best["validation_force_rmse_ev_per_angstrom"] < 0.6 * first["validation_force_rmse_ev_per_angstrom"]
    assert all(record["seconds"] > 0 for record in history["epochs"])
    assert not model.training  # returned in evaluation mode


def test_resume_matches_uninterrupted_run(pdh_training_set, tmp_path):
    structures = pdh_training_set[:12]
    # lr_decay_patience=1 makes the learning-rate schedule part of the resumed state.
    config = TrainingConfig(epochs=6, patience=50, checkpoint_every=2, lr_decay_patience=1, seed=2, **FAST)
    uninterrupted, history_full = train_potential(structures, SF, config)

    # Interrupt the second run while it logs epoch 5, after the epoch-4 checkpoint.
    class Interrupt(Exception):
        pass

    class InterruptAtEpochFive(logging.Handler):
        def emit(self, record):
            if record.getMessage().startswith("epoch 5/"):
                raise Interrupt

    interrupted_log = logging.getLogger("test_bpnn.interrupted")
    interrupted_log.setLevel(logging.INFO)
    interrupted_log.addHandler(InterruptAtEpochFive())
    checkpoint = tmp_path / "checkpoint.pt"
    with pytest.raises(Interrupt):
        train_potential(structures, SF, config, checkpoint_path=checkpoint, log=interrupted_log)
    assert checkpoint.exists()

    resumed, history_resumed = train_potential(structures, SF, config, checkpoint_path=checkpoint)
    assert history_resumed["resumed_from_epoch"] == 4
    assert len(history_resumed["epochs"]) == 6
    # The checkpoint restores the weights, the RNG, the optimizer and the learning-rate
    # schedule, so on the CPU the resumed run repeats the same float64 operations and
    # the results are bitwise equal.
    losses_full = [r["validation_loss"] for r in history_full["epochs"]]
    losses_resumed = [r["validation_loss"] for r in history_resumed["epochs"]]
    assert losses_resumed == losses_full
    rates = [r["learning_rate"] for r in history_resumed["epochs"]]
    assert rates == [r["learning_rate"] for r in history_full["epochs"]]
    for name, value in uninterrupted.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name


def test_finished_checkpoint_returns_without_training(pdh_training_set, tmp_path):
    structures = pdh_training_set[:6]
    config = TrainingConfig(epochs=2, seed=3, **FAST)
    checkpoint = tmp_path / "checkpoint.pt"
    first, _ = train_potential(structures, SF, config, checkpoint_path=checkpoint)
    again, history = train_potential(structures, SF, config, checkpoint_path=checkpoint)
    assert history["resumed_from_epoch"] == 2
    assert len(history["epochs"]) == 2
    for name, value in first.state_dict().items():
        assert torch.equal(value, again.state_dict()[name]), name


def test_resume_rejects_changed_settings(pdh_training_set, tmp_path):
    structures = pdh_training_set[:6]
    checkpoint = tmp_path / "checkpoint.pt"
    train_potential(structures, SF, TrainingConfig(epochs=1, seed=4, **FAST), checkpoint_path=checkpoint)
    changed = TrainingConfig(epochs=1, seed=4, **{**FAST, "learning_rate": 1e-2})
    with pytest.raises(ValueError, match="other training settings.*learning_rate"):
        train_potential(structures, SF, changed, checkpoint_path=checkpoint)
    with pytest.raises(ValueError, match="other training structures"):
        train_potential(
            pdh_training_set[6:12], SF, TrainingConfig(epochs=1, seed=4, **FAST), checkpoint_path=checkpoint
        )


def test_two_structures_train_with_one_validation(pdh_training_set):
    _, history = train_potential(pdh_training_set[:2], SF, TrainingConfig(epochs=1, **FAST))
    assert history["n_train"] == 1
    assert history["n_validation"] == 1


def test_one_structure_rejected(pdh_training_set):
    with pytest.raises(ValueError, match="1 training structure.*at least 2"):
        train_potential(pdh_training_set[:1], SF, TrainingConfig(epochs=1, **FAST))


def test_structure_without_forces_rejected(pdh_training_set):
    structures = [a.copy() for a in pdh_training_set[:3]]  # copy() drops the calculator
    with pytest.raises(ValueError, match="pdh-10000 .*no reference energy and forces"):
        train_potential(structures, SF, TrainingConfig(epochs=1, **FAST))


def test_unknown_element_rejected():
    atoms = pdh_cell(seed=20)
    atoms[0].symbol = "Pt"
    with pytest.raises(ValueError, match=r"contains \['Pt'\].*add them to the element list"):
        train_potential([atoms, pdh_cell(seed=21)], SF, TrainingConfig(epochs=1, **FAST))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("validation_fraction", 1.0, "strictly between 0 and 1"),
        ("epochs", 0, "epochs=0 must be a positive integer"),
        ("force_weight", -1.0, "force_weight=-1.0 must be zero or positive"),
        ("activation", "relu6", "activation='relu6' is not one of"),
        ("dtype", "float16", "dtype='float16' is not one of"),
        ("lr_decay_factor", 0.0, r"lr_decay_factor=0.0 must lie in \(0, 1\]"),
    ],
    ids=["fraction", "epochs", "force-weight", "activation", "dtype", "lr-decay"],
)
def test_training_config_rejects_bad_value(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainingConfig(**{field: value})


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_cuda_request_without_cuda_raises_config_error(pdh_training_set):
    with pytest.raises(ConfigError, match="no CUDA device"):
        resolve_device("cuda")
    with pytest.raises(ConfigError, match="no CUDA device"):
        train_potential(pdh_training_set[:4], SF, TrainingConfig(epochs=1, **{**FAST, "device": "cuda"}))


# ---------------------------------------------------------------------- evaluation


def test_error_metrics_hand_computed():
    # Structure a: 1 atom, energy error +3 meV/atom, force components (1, -1, 1) eV/Å
    # off -> RMSE 1, MAE 1. Structure b: 2 atoms, error -4 meV/atom, components
    # (2, 0, 0, 2, 2, 2) -> RMSE sqrt(16/6), MAE 8/6.
    table = pd.DataFrame(
        {
            "id": ["a", "b"],
            "config_type": ["bulk", "surface"],
            "n_atoms": [1, 2],
            "energy_ref": [-4.0, -3.0],
            "energy_pred": [-3.997, -3.004],
            "energy_error_mev_per_atom": [3.0, -4.0],
            "force_rmse_ev_per_angstrom": [1.0, np.sqrt(16 / 6)],
            "force_mae_ev_per_angstrom": [1.0, 8 / 6],
        }
    )
    metrics = error_metrics(table)
    assert metrics["energy_rmse_mev_per_atom"] == pytest.approx(np.sqrt((9 + 16) / 2))
    assert metrics["energy_mae_mev_per_atom"] == pytest.approx(3.5)
    # Over all nine components: squares 3 + 16, absolute values 3 + 8.
    assert metrics["force_rmse_ev_per_angstrom"] == pytest.approx(np.sqrt(19 / 9))
    assert metrics["force_mae_ev_per_angstrom"] == pytest.approx(11 / 9)
    assert metrics["n_structures"] == 2
    assert metrics["n_atoms"] == 3


def test_error_metrics_rejects_foreign_table():
    with pytest.raises(ValueError, match="lacks columns.*pass the output of predict"):
        error_metrics(pd.DataFrame({"id": ["a"]}))


def test_predict_matches_direct_model_call():
    structures = pdh_set(4, seed=30)
    model = random_model(structures)
    model.fit_energy_offset(np.array([[4, 1]] * 4), np.array([a.get_potential_energy() for a in structures]))
    table = predict(model, structures, SF, device="cpu", batch_size=3)

    errors_energy, errors_force = [], []
    for atoms in structures:
        graph = build_graph(atoms, SF.cutoff, SF.elements)
        energy, forces = model.energy_and_forces(torch.from_numpy(atoms.get_positions()), graph)
        errors_energy.append(1000 * (float(energy[0].detach()) - atoms.get_potential_energy()) / len(atoms))
        errors_force.append(forces.detach().numpy() - atoms.get_forces())
    assert list(table["id"]) == [a.info["id"] for a in structures]
    np.testing.assert_allclose(table["energy_error_mev_per_atom"], errors_energy, atol=1e-8)
    all_components = np.concatenate(errors_force).ravel()
    metrics = error_metrics(table)
    assert metrics["force_rmse_ev_per_angstrom"] == pytest.approx(np.sqrt(np.mean(all_components**2)))
    assert metrics["force_mae_ev_per_angstrom"] == pytest.approx(np.mean(np.abs(all_components)))


def test_predict_rejects_other_descriptors():
    structures = pdh_set(2, seed=31)
    model = random_model(structures)
    other = SymmetryFunctionSet.default(["Pd", "H"], cutoff=5.0)
    with pytest.raises(ValueError, match="differ from the ones the potential was trained on"):
        predict(model, structures, other)


def test_learning_curve_table_aggregates_seeds():
    rows = [
        {"method": "random", "fraction": 0.5, "seed": 0, "energy_rmse_mev_per_atom": 2.0},
        {"method": "random", "fraction": 0.5, "seed": 1, "energy_rmse_mev_per_atom": 4.0},
        {"method": "random", "fraction": 0.5, "seed": 2, "energy_rmse_mev_per_atom": 9.0},
        {"method": "dvlae", "fraction": 0.5, "seed": 0, "energy_rmse_mev_per_atom": 1.0},
    ]
    table = learning_curve_table(rows).set_index(["method", "fraction"])
    random_row = table.loc[("random", 0.5)]
    assert random_row["n_seeds"] == 3
    assert random_row["energy_rmse_mev_per_atom_mean"] == pytest.approx(5.0)
    assert random_row["energy_rmse_mev_per_atom_std"] == pytest.approx(np.sqrt((9 + 1 + 16) / 2))
    assert random_row["energy_rmse_mev_per_atom_min"] == 2.0
    assert random_row["energy_rmse_mev_per_atom_max"] == 9.0
    assert np.isnan(table.loc[("dvlae", 0.5)]["energy_rmse_mev_per_atom_std"])
    assert "seed_mean" not in table.columns


# ---------------------------------------------------------------------- precomputed gradients


@pytest.mark.parametrize("angular", ["g4", "g5"])
def test_feature_gradients_match_autograd(angular):
    from dataclasses import replace

    from equipipe.materials.descriptor_gradients import (
        forces_from_gradients,
        symmetry_functions_with_gradients,
    )
    from equipipe.materials.descriptors import symmetry_functions

    sf = replace(SymmetryFunctionSet.default(["Pd", "H"], cutoff=5.0), angular=angular)
    atoms = pdh_cell(seed=40, rattle=0.2)
    graph = build_graph(atoms, sf.cutoff, sf.elements)
    positions = torch.from_numpy(atoms.get_positions())
    features, gradients = symmetry_functions_with_gradients(sf, positions, graph)
    assert gradients.shape == (graph.n_pairs, sf.n_features, 3)
    torch.testing.assert_close(features, symmetry_functions(sf, positions, graph), rtol=0, atol=1e-12)

    # A random linear "energy" of the features: autograd through the descriptors
    # and the stored bond-vector gradients must give the same forces.
    weights = torch.randn(features.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    moving = positions.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad((symmetry_functions(sf, moving, graph) * weights).sum(), moving)
    forces = forces_from_gradients(weights, gradients, graph.pair_i, graph.pair_j)
    assert gradient.abs().max() > 0.1
    torch.testing.assert_close(forces, -gradient, rtol=0, atol=1e-10)


def test_training_path_forces_equal_autograd_forces():
    from equipipe.materials.training import prepare_structures

    one_atom = bulk("Pd", "fcc", a=3.95)  # primitive cell: every neighbour is an image
    one_atom.calc = SinglePointCalculator(one_atom, energy=-1.0, forces=np.zeros((1, 3)))
    structures = [*pdh_set(2, seed=41), one_atom, pdh_cell(seed=42)]
    model = random_model(structures)
    batch = prepare_structures(structures, SF).batch([0, 1, 2, 3], torch.device("cpu"), torch.float64)
    energies, forces = batch.predict(model)

    graph = batch_graphs([build_graph(a, SF.cutoff, SF.elements) for a in structures])
    positions = torch.from_numpy(np.concatenate([a.get_positions() for a in structures]))
    reference_energies, reference_forces = model.energy_and_forces(positions, graph)
    torch.testing.assert_close(energies, reference_energies, rtol=0, atol=1e-10)
    torch.testing.assert_close(forces, reference_forces, rtol=0, atol=1e-10)
