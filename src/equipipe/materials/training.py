"""Training of a Behler-Parrinello potential on energies and forces.

The loss is ``energy_weight * MSE(energy per atom) + force_weight * MSE(force
components)``, in eV²/atom² and eV²/Å², minimised by Adam on mini-batches of
structures. A seeded part of the training structures is held back for validation:
it drives early stopping, and the weights of the epoch with the lowest validation
loss are restored at the end. Checkpoints written every few epochs let an
interrupted job resume where it stopped and reach the same result as an
uninterrupted run.

Precision: the default ``dtype="float64"`` keeps forces from autograd equal to
finite differences to about 1e-8 eV/Å and makes a resumed run match an
uninterrupted one to round-off. ``"float32"`` runs faster on a GPU, but total
energies of large cells (for example -83,000 eV for a 100-atom iron slab) then
carry rounding errors near 0.01 eV, so keep float64 unless speed matters more.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from equipipe.devices import resolve_device
from equipipe.fileio import atomic_path
from equipipe.logs import ProgressLogger
from equipipe.materials import descriptors
from equipipe.materials.bpnn import (
    BehlerParrinelloPotential,
    PotentialConfig,
    composition_counts,
    resolve_dtype,
)

logger = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1

# Config fields that may differ between the run that wrote a checkpoint and the
# run that resumes it: they do not change the arithmetic of the epochs already
# done, and a larger ``epochs`` continues a finished run.
_RESUME_FREE_FIELDS = ("device", "log_interval", "checkpoint_every", "epochs")


@dataclass(frozen=True)
class TrainingConfig:
    """Settings of one training job.

    Attributes
    ----------
    hidden : tuple of int, default (32, 32)
        Hidden-layer widths of each element's network.
    activation : {"tanh", "silu", "softplus"}, default "tanh"
        Smooth nonlinearity of the hidden layers.
    epochs : int, default 200
        Maximum number of passes over the training part.
    batch_size : int, default 16
        Structures per optimiser step.
    learning_rate : float, default 1e-3
        Adam step size.
    energy_weight : float, default 1.0
        Weight of the energy-per-atom MSE (eV²/atom²) in the loss.
    force_weight : float, default 0.1
        Weight of the force-component MSE (eV²/Å²) in the loss; 0 trains on
        energies only and skips the second derivative, which is about 3 times
        faster.
    validation_fraction : float, default 0.1
        Share of the training structures held back for early stopping; at least
        one structure is held back.
    patience : int, default 20
        Epochs without a lower validation loss before training stops.
    seed : int, default 0
        Seed of the validation split, the weight initialisation and the batch order.
    device : {"auto", "cpu", "cuda"}, default "auto"
        Where to train (see `equipipe.devices.resolve_device`).
    dtype : {"float64", "float32"}, default "float64"
        Floating-point precision of the model and data (see the module docstring).
    checkpoint_every : int, default 10
        Epochs between two checkpoints when a checkpoint path is given.
    log_interval : float, default 10.0
        Minimum seconds between two progress lines in the log.
    """

    hidden: tuple[int, ...] = (32, 32)
    activation: str = "tanh"
    epochs: int = 200
    batch_size: int = 16
    learning_rate: float = 1e-3
    energy_weight: float = 1.0
    force_weight: float = 0.1
    validation_fraction: float = 0.1
    patience: int = 20
    seed: int = 0
    device: str = "auto"
    dtype: str = "float64"
    checkpoint_every: int = 10
    log_interval: float = 10.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(int(width) for width in self.hidden))
        PotentialConfig(self.hidden, self.activation)
        resolve_dtype(self.dtype)
        for name in ("epochs", "batch_size", "patience", "checkpoint_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be a positive integer")
        for name in ("learning_rate", "log_interval"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)} must be positive")
        for name in ("energy_weight", "force_weight"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name}={getattr(self, name)} must be zero or positive")
        if self.energy_weight == 0 and self.force_weight == 0:
            raise ValueError("energy_weight and force_weight are both 0; set one above 0")
        if not 0 < self.validation_fraction < 1:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} must lie strictly "
                "between 0 and 1, for example 0.1"
            )

    @property
    def potential(self) -> PotentialConfig:
        """Architecture part of the config."""
        return PotentialConfig(self.hidden, self.activation)


# ---------------------------------------------------------------------- data


@dataclass
class StructureData:
    """Structures with precomputed neighbour graphs, ready for batching.

    Attributes
    ----------
    graphs : list of descriptors.StructureGraph
    positions : list of Tensor of shape (n_atoms, 3), Å
    forces : list of Tensor of shape (n_atoms, 3), eV/Å
    energies : Tensor of shape (n_structures,), eV
    n_atoms : Tensor of shape (n_structures,)
    ids : list of str
    """

    graphs: list[Any]
    positions: list[torch.Tensor]
    forces: list[torch.Tensor]
    energies: torch.Tensor
    n_atoms: torch.Tensor
    ids: list[str]

    def __len__(self) -> int:
        return len(self.graphs)

    def batch(self, indices: Sequence[int], device: torch.device, dtype: torch.dtype):
        """Concatenate the structures at ``indices`` into one batch on ``device``.

        Returns
        -------
        positions : Tensor of shape (n_atoms, 3)
        graph : descriptors.StructureGraph with ``structure_index``
        energies : Tensor of shape (n_batch,)
        n_atoms : Tensor of shape (n_batch,)
        forces : Tensor of shape (n_atoms, 3)
        """
        indices = [int(i) for i in indices]
        graph = descriptors.batch_graphs([self.graphs[i] for i in indices])
        graph = graph.to(device)
        positions = torch.cat([self.positions[i] for i in indices]).to(device, dtype)
        forces = torch.cat([self.forces[i] for i in indices]).to(device, dtype)
        index = torch.as_tensor(indices)
        return (
            positions,
            graph,
            self.energies[index].to(device, dtype),
            self.n_atoms[index].to(device, dtype),
            forces,
        )


def structure_id(atoms: Any, position: int) -> str:
    """Return ``atoms.info["id"]``, or ``"#<position>"`` when the frame has none."""
    return str(atoms.info.get("id", f"#{position}"))


def reference_energy_forces(atoms: Any, position: int) -> tuple[float, np.ndarray]:
    """Return the reference energy (eV) and forces (eV/Å) attached to ``atoms``.

    Raises
    ------
    ValueError
        If the structure has no calculator results, or they contain NaN.
    """
    name = structure_id(atoms, position)
    if atoms.calc is None:
        raise ValueError(
            f"structure {name} (position {position}) has no reference energy and "
            "forces; read structures with equipipe.materials.ingest.read_canonical"
        )
    try:
        energy = float(atoms.get_potential_energy())
        forces = np.asarray(atoms.get_forces(), dtype=np.float64)
    except Exception as error:  # ASE raises several types for missing results
        raise ValueError(
            f"structure {name} (position {position}) lacks a reference energy or "
            f"forces ({error}); read structures with "
            "equipipe.materials.ingest.read_canonical"
        ) from error
    if not math.isfinite(energy) or not np.isfinite(forces).all():
        raise ValueError(
            f"structure {name} (position {position}) has a non-finite reference "
            "energy or force; remove the frame at ingestion"
        )
    return energy, forces


def prepare_structures(
    atoms_list: Sequence[Any],
    symmetry_function_set: descriptors.SymmetryFunctionSet,
) -> StructureData:
    """Build the neighbour graph of every structure once and gather the references.

    Parameters
    ----------
    atoms_list : sequence of ase.Atoms
        Structures with a calculator that holds energy (eV) and forces (eV/Å).
    symmetry_function_set : descriptors.SymmetryFunctionSet
        Gives the cutoff of the neighbour lists and the element order.

    Raises
    ------
    ValueError
        If a structure lacks references or holds an element that the symmetry
        function set does not list.
    """
    known = set(symmetry_function_set.elements)
    graphs, positions, forces, energies, n_atoms, ids = [], [], [], [], [], []
    for position, atoms in enumerate(atoms_list):
        unknown = sorted(set(atoms.get_chemical_symbols()) - known)
        if unknown:
            raise ValueError(
                f"structure {structure_id(atoms, position)} contains {unknown}, which "
                f"the symmetry functions do not cover (elements "
                f"{list(symmetry_function_set.elements)}); add them to the element list"
            )
        energy, force = reference_energy_forces(atoms, position)
        graphs.append(_build_graph(atoms, symmetry_function_set))
        positions.append(torch.as_tensor(atoms.get_positions(), dtype=torch.float64))
        forces.append(torch.as_tensor(force, dtype=torch.float64))
        energies.append(energy)
        n_atoms.append(len(atoms))
        ids.append(structure_id(atoms, position))
    return StructureData(
        graphs=graphs,
        positions=positions,
        forces=forces,
        energies=torch.tensor(energies, dtype=torch.float64),
        n_atoms=torch.tensor(n_atoms, dtype=torch.float64),
        ids=ids,
    )


def _build_graph(atoms: Any, symmetry_function_set: descriptors.SymmetryFunctionSet):
    return descriptors.build_graph(
        atoms, symmetry_function_set.cutoff, elements=symmetry_function_set.elements
    )


def _batches(n_items: int, batch_size: int) -> list[list[int]]:
    return [list(range(start, min(start + batch_size, n_items))) for start in range(0, n_items, batch_size)]


def split_validation(n_structures: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split structure positions into a training and a validation part.

    The validation part holds ``round(fraction * n_structures)`` structures, at
    least 1, and the training part keeps at least 1.

    Raises
    ------
    ValueError
        If fewer than 2 structures are given.
    """
    if n_structures < 2:
        raise ValueError(
            f"{n_structures} training structure(s) given, but at least 2 are needed "
            "(one to fit, one to validate); keep a larger fraction of the dataset"
        )
    n_validation = min(max(1, round(fraction * n_structures)), n_structures - 1)
    order = np.random.default_rng(seed).permutation(n_structures)
    return np.sort(order[n_validation:]), np.sort(order[:n_validation])


# ---------------------------------------------------------------------- evaluation helpers


def evaluate_errors(
    model: BehlerParrinelloPotential,
    data: StructureData,
    indices: Sequence[int],
    batch_size: int,
    device: torch.device,
    dtype: torch.dtype,
) -> dict[str, float]:
    """Return the energy-per-atom and force-component MSE of ``model`` on ``indices``.

    Returns
    -------
    dict
        ``energy_mse`` (eV²/atom²) and ``force_mse`` (eV²/Å²).
    """
    energy_sq, force_sq, n_components = 0.0, 0.0, 0
    for start in range(0, len(indices), batch_size):
        chunk = indices[start : start + batch_size]
        positions, graph, energies, n_atoms, forces = data.batch(chunk, device, dtype)
        predicted, predicted_forces = model.energy_and_forces(positions, graph)
        energy_sq += float((((predicted.detach() - energies) / n_atoms) ** 2).sum())
        force_sq += float(((predicted_forces.detach() - forces) ** 2).sum())
        n_components += forces.numel()
    return {
        "energy_mse": energy_sq / len(indices),
        "force_mse": force_sq / max(n_components, 1),
    }


# ---------------------------------------------------------------------- training


def _fingerprint(data: StructureData) -> str:
    digest = hashlib.sha256()
    for name, energy in zip(data.ids, data.energies.tolist(), strict=True):
        digest.update(f"{name}:{energy!r};".encode())
    return digest.hexdigest()


def _comparable(config: TrainingConfig) -> dict[str, Any]:
    values = dataclasses.asdict(config)
    values["hidden"] = list(values["hidden"])
    for name in _RESUME_FREE_FIELDS:
        values.pop(name)
    return values


def _fit_constants(
    model: BehlerParrinelloPotential, data: StructureData, train_index: np.ndarray, batch_size: int
) -> None:
    species = [torch.as_tensor(data.graphs[i].species).numpy() for i in train_index]
    counts = composition_counts(species, len(model.elements))
    offset = model.fit_energy_offset(counts, data.energies[train_index].numpy())
    logger.info(
        "energy offsets (eV/atom): %s",
        ", ".join(f"{e}={o:.4f}" for e, o in zip(model.elements, offset, strict=True)),
    )

    # Descriptor statistics come from the training part only.
    features, species_all = [], []
    with torch.no_grad():
        for chunk in _batches(len(train_index), max(batch_size, 64)):
            positions, graph, *_ = data.batch(train_index[chunk], torch.device("cpu"), torch.float64)
            features.append(
                descriptors.symmetry_functions(model.symmetry_function_set, positions, graph)
            )
            species_all.append(torch.as_tensor(graph.species))
    model.fit_normalisation(torch.cat(features), torch.cat(species_all))


def train_potential(
    train_atoms: Sequence[Any],
    symmetry_function_set: descriptors.SymmetryFunctionSet,
    config: TrainingConfig | None = None,
    checkpoint_path: str | os.PathLike | None = None,
    log: logging.Logger | None = None,
) -> tuple[BehlerParrinelloPotential, dict[str, Any]]:
    """Train a Behler-Parrinello potential on energies and forces.

    Parameters
    ----------
    train_atoms : sequence of ase.Atoms
        Training structures with reference energy (eV) and forces (eV/Å); a
        validation part is split off them (see `split_validation`). The held-out
        test set must not be among them.
    symmetry_function_set : descriptors.SymmetryFunctionSet
        Descriptors of the potential; its cutoff sets the neighbour lists.
    config : TrainingConfig, optional
        Defaults when omitted.
    checkpoint_path : path, optional
        File for checkpoints. When it exists and was written by a run with the
        same config and training structures, training resumes from it. A run
        that stopped early is returned without training; a run that reached
        its epochs continues when ``config.epochs`` is larger now.
    log : logging.Logger, optional
        Logger of the progress lines; this module's logger when omitted.

    Returns
    -------
    model : BehlerParrinelloPotential
        The weights of the epoch with the lowest validation loss, on the CPU.
    history : dict
        ``epochs`` (one dict per epoch: epoch, train_loss, validation_loss,
        train/validation energy RMSE in meV/atom and force RMSE in eV/Å,
        seconds, learning_rate), ``best_epoch``, ``stopped_early``,
        ``seconds_per_epoch`` (mean), ``n_train``, ``n_validation``, ``device``,
        ``dtype``, ``resumed_from_epoch``.

    Raises
    ------
    ValueError
        On fewer than 2 structures, a structure without references, or a
        checkpoint written with another config or other structures.
    ConfigError
        If ``config.device`` is ``"cuda"`` and no CUDA device is visible.
    """
    config = config if config is not None else TrainingConfig()
    log = log if log is not None else logger
    device = resolve_device(config.device, "device")
    dtype = resolve_dtype(config.dtype)
    train_index, validation_index = split_validation(
        len(train_atoms), config.validation_fraction, config.seed
    )

    started = time.perf_counter()
    data = prepare_structures(train_atoms, symmetry_function_set)
    log.info(
        "prepared %d structures (%d atoms) in %.1f s; %d for training, %d for validation",
        len(data), int(data.n_atoms.sum()), time.perf_counter() - started,
        len(train_index), len(validation_index),
    )

    # Same seed, same initial weights and batch order.
    torch.manual_seed(config.seed)
    model = BehlerParrinelloPotential(symmetry_function_set, config.potential).to(dtype)
    _fit_constants(model, data, train_index, config.batch_size)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    generator = torch.Generator().manual_seed(config.seed)

    state = {
        "epoch": 0,
        "best_loss": math.inf,
        "best_epoch": 0,
        "best_state": copy.deepcopy(model.state_dict()),
        "epochs_since_best": 0,
        "history": [],
        "stopped_early": False,
    }
    fingerprint = _fingerprint(data)
    resumed_from = 0
    if checkpoint_path is not None and os.path.exists(checkpoint_path):
        state = _load_checkpoint(checkpoint_path, config, fingerprint, model, optimizer, generator, device)
        resumed_from = state["epoch"]
        log.info("resumed from %s at epoch %d", checkpoint_path, resumed_from)

    train_list = train_index.tolist()
    progress = ProgressLogger(log, total=config.epochs, interval=config.log_interval, what="epoch")
    while not state["stopped_early"] and state["epoch"] < config.epochs:
        epoch_start = time.perf_counter()
        epoch = state["epoch"] + 1

        # One pass over the training part in a seeded random order.
        model.train()
        order = torch.randperm(len(train_list), generator=generator).tolist()
        energy_sq, force_sq, n_components = 0.0, 0.0, 0
        for chunk in _batches(len(order), config.batch_size):
            batch = [train_list[order[i]] for i in chunk]
            positions, graph, energies, n_atoms, forces = data.batch(batch, device, dtype)
            if config.force_weight > 0:
                predicted, predicted_forces = model.energy_and_forces(positions, graph, create_graph=True)
                force_mse = ((predicted_forces - forces) ** 2).mean()
            else:
                predicted = model(positions, graph)
                predicted_forces = None
                force_mse = predicted.new_zeros(())
            energy_mse = (((predicted - energies) / n_atoms) ** 2).mean()
            loss = config.energy_weight * energy_mse + config.force_weight * force_mse

            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

            energy_sq += float(energy_mse.detach()) * len(batch)
            force_sq += float(force_mse.detach()) * forces.numel()
            n_components += forces.numel()

        # Validation decides early stopping and which weights are kept.
        model.eval()
        validation = evaluate_errors(
            model, data, validation_index.tolist(), max(config.batch_size, 64), device, dtype
        )
        train_energy_mse = energy_sq / len(train_list)
        train_force_mse = force_sq / max(n_components, 1)
        train_loss = config.energy_weight * train_energy_mse + config.force_weight * train_force_mse
        validation_loss = (
            config.energy_weight * validation["energy_mse"]
            + config.force_weight * validation["force_mse"]
        )
        if validation_loss < state["best_loss"]:
            state["best_loss"] = validation_loss
            state["best_epoch"] = epoch
            state["best_state"] = copy.deepcopy(model.state_dict())
            state["epochs_since_best"] = 0
        else:
            state["epochs_since_best"] += 1

        seconds = time.perf_counter() - epoch_start
        record = {
            "epoch": epoch,
            "train_loss": train_loss,
            "validation_loss": validation_loss,
            "train_energy_rmse_mev_per_atom": 1000.0 * math.sqrt(train_energy_mse),
            "train_force_rmse_ev_per_angstrom": math.sqrt(train_force_mse),
            "validation_energy_rmse_mev_per_atom": 1000.0 * math.sqrt(validation["energy_mse"]),
            "validation_force_rmse_ev_per_angstrom": math.sqrt(validation["force_mse"]),
            "seconds": seconds,
            "learning_rate": optimizer.param_groups[0]["lr"],
        }
        state["history"].append(record)
        state["epoch"] = epoch
        state["stopped_early"] = state["epochs_since_best"] >= config.patience
        finished = state["stopped_early"] or epoch >= config.epochs

        progress.update(
            epoch,
            "train loss %.4g, validation loss %.4g, validation energy RMSE %.2f meV/atom, "
            "force RMSE %.4f eV/Å, %.2f s/epoch"
            % (
                train_loss,
                validation_loss,
                record["validation_energy_rmse_mev_per_atom"],
                record["validation_force_rmse_ev_per_angstrom"],
                seconds,
            ),
            force=epoch == 1 or finished,
        )
        if checkpoint_path is not None and (epoch % config.checkpoint_every == 0 or finished):
            _save_checkpoint(checkpoint_path, config, fingerprint, model, optimizer, generator, state)

    if state["stopped_early"]:
        log.info(
            "stopped early at epoch %d: no lower validation loss for %d epochs",
            state["epoch"], config.patience,
        )
    model.load_state_dict(state["best_state"])
    model.to("cpu").eval()
    history = _summarise(state, config, len(train_index), len(validation_index), device, resumed_from)
    log.info(
        "best epoch %d of %d: validation energy RMSE %.2f meV/atom, force RMSE %.4f eV/Å, %.2f s/epoch",
        history["best_epoch"], state["epoch"],
        history["best_validation_energy_rmse_mev_per_atom"],
        history["best_validation_force_rmse_ev_per_angstrom"],
        history["seconds_per_epoch"],
    )
    return model, history


def _summarise(
    state: dict[str, Any],
    config: TrainingConfig,
    n_train: int,
    n_validation: int,
    device: torch.device,
    resumed_from: int,
) -> dict[str, Any]:
    epochs = state["history"]
    best = epochs[state["best_epoch"] - 1] if state["best_epoch"] > 0 else {}
    seconds = [record["seconds"] for record in epochs]
    return {
        "epochs": epochs,
        "best_epoch": state["best_epoch"],
        "best_validation_energy_rmse_mev_per_atom": best.get("validation_energy_rmse_mev_per_atom", math.nan),
        "best_validation_force_rmse_ev_per_angstrom": best.get("validation_force_rmse_ev_per_angstrom", math.nan),
        "stopped_early": state["stopped_early"],
        "seconds_per_epoch": float(np.mean(seconds)) if seconds else math.nan,
        "n_train": n_train,
        "n_validation": n_validation,
        "device": str(device),
        "dtype": config.dtype,
        "resumed_from_epoch": resumed_from,
    }


# ---------------------------------------------------------------------- checkpoints


def _save_checkpoint(
    path: str | os.PathLike,
    config: TrainingConfig,
    fingerprint: str,
    model: BehlerParrinelloPotential,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    state: dict[str, Any],
) -> None:
    checkpoint = {
        "checkpoint_version": CHECKPOINT_VERSION,
        "config": _comparable(config),
        "fingerprint": fingerprint,
        "hyperparameters": model.hyperparameters(),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "generator": generator.get_state(),
        "state": {**state, "best_state": {k: v.detach().cpu() for k, v in state["best_state"].items()}},
    }
    with atomic_path(path) as temp:
        torch.save(checkpoint, temp)


def _load_checkpoint(
    path: str | os.PathLike,
    config: TrainingConfig,
    fingerprint: str,
    model: BehlerParrinelloPotential,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    device: torch.device,
) -> dict[str, Any]:
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if checkpoint.get("checkpoint_version") != CHECKPOINT_VERSION:
        raise ValueError(
            f"checkpoint {path} has version {checkpoint.get('checkpoint_version')!r}, "
            f"expected {CHECKPOINT_VERSION}; delete it to train from the start"
        )
    saved_config = checkpoint["config"]
    current = _comparable(config)
    changed = sorted(k for k in current if saved_config.get(k) != current[k])
    if changed:
        raise ValueError(
            f"checkpoint {path} was written with other training settings "
            f"({', '.join(f'{k}: {saved_config.get(k)!r} -> {current[k]!r}' for k in changed)}); "
            "delete it to train from the start, or restore those settings"
        )
    if checkpoint["fingerprint"] != fingerprint:
        raise ValueError(
            f"checkpoint {path} was written for other training structures; delete it "
            "to train from the start on the current ones"
        )

    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    generator.set_state(checkpoint["generator"])
    state = dict(checkpoint["state"])
    state["best_state"] = {k: v.to(device) for k, v in state["best_state"].items()}
    return state
