"""Training of a Behler-Parrinello potential on energies and forces.

The loss is ``energy_weight * MSE(energy per atom) + force_weight * MSE(force
components)``, in eV²/atom² and eV²/Å², minimised by Adam on mini-batches of
structures. The symmetry functions of the training structures and their
derivatives with respect to the bond vectors are computed once (see
`descriptor_gradients`), so a step only runs and differentiates the networks.
A seeded part of the training structures is held back for validation:
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
from equipipe.materials.descriptor_gradients import symmetry_functions_with_gradients
from equipipe.materials.bpnn import (
    BehlerParrinelloPotential,
    PotentialConfig,
    composition_counts,
    resolve_dtype,
)

logger = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1

# Config fields that may differ between the run that wrote a checkpoint and the
# run that resumes it, because they do not change the arithmetic of the epochs
# already done. A larger ``epochs`` continues a finished run.
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
        energies only and skips the feature gradients and their memory.
    validation_fraction : float, default 0.1
        Share of the training structures held back for early stopping; at least
        one structure is held back.
    patience : int, default 20
        Epochs without a lower validation loss before training stops.
    lr_decay_factor : float, default 0.5
        Factor applied to the learning rate when the validation loss has not
        improved for ``lr_decay_patience`` epochs (PyTorch's
        ``ReduceLROnPlateau``); 1.0 keeps it constant.
    lr_decay_patience : int, default 8
        Epochs without improvement before the learning rate drops. Keep it
        below ``patience`` so that a lower rate is tried before stopping.
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
    lr_decay_factor: float = 0.5
    lr_decay_patience: int = 8
    seed: int = 0
    device: str = "auto"
    dtype: str = "float64"
    checkpoint_every: int = 10
    log_interval: float = 10.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(int(width) for width in self.hidden))
        PotentialConfig(self.hidden, self.activation)
        resolve_dtype(self.dtype)
        for name in ("epochs", "batch_size", "patience", "lr_decay_patience", "checkpoint_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be a positive integer")
        for name in ("learning_rate", "log_interval"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)} must be positive")
        for name in ("energy_weight", "force_weight"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name}={getattr(self, name)} must be zero or positive")
        if not 0 < self.lr_decay_factor <= 1:
            raise ValueError(
                f"lr_decay_factor={self.lr_decay_factor} must lie in (0, 1], for example 0.5"
            )
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
class Batch:
    """Concatenated structures on one device, ready for the model.

    Attributes
    ----------
    features : Tensor of shape (n_atoms, n_features)
    feature_gradients : Tensor of shape (n_pairs, n_features, 3), or None
    pair_i, pair_j : Tensor of shape (n_pairs,)
    species, structure_index : Tensor of shape (n_atoms,)
    energies, n_atoms : Tensor of shape (n_structures,)
        Reference energies in eV and atom counts.
    forces : Tensor of shape (n_atoms, 3)
        Reference forces in eV/Å.
    """

    features: torch.Tensor
    feature_gradients: torch.Tensor | None
    pair_i: torch.Tensor
    pair_j: torch.Tensor
    species: torch.Tensor
    structure_index: torch.Tensor
    energies: torch.Tensor
    n_atoms: torch.Tensor
    forces: torch.Tensor

    @property
    def n_structures(self) -> int:
        """Number of structures in the batch."""
        return int(self.energies.shape[0])

    def predict(
        self, model: BehlerParrinelloPotential, create_graph: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return the model's energies (eV) and forces (eV/Å; None without gradients)."""
        if self.feature_gradients is None:
            energies = model.energy_from_features(
                self.features, self.species, self.structure_index, self.n_structures
            )
            return energies, None
        return model.energy_and_forces_from_features(
            self.features, self.feature_gradients, self.pair_i, self.pair_j,
            self.species, self.structure_index, self.n_structures, create_graph=create_graph,
        )


@dataclass
class StructureData:
    """Symmetry functions, their gradients and the references of a list of structures.

    Training positions never change, so the descriptors and their derivatives with
    respect to the bond vectors are computed once (see `descriptor_gradients`).
    Each training step then only runs the networks.

    Attributes
    ----------
    features : list of Tensor of shape (n_atoms, n_features)
    feature_gradients : list of Tensor of shape (n_pairs, n_features, 3), or None
        None when forces are not needed.
    pair_i, pair_j : list of Tensor of shape (n_pairs,)
        Pairs whose gradients are stored, with atom indices local to each
        structure; pairs from an atom to its own image are left out.
    species : list of Tensor of shape (n_atoms,)
    forces : list of Tensor of shape (n_atoms, 3), eV/Å
    energies : Tensor of shape (n_structures,), eV
    n_atoms : Tensor of shape (n_structures,)
    ids : list of str
    """

    features: list[torch.Tensor]
    feature_gradients: list[torch.Tensor] | None
    pair_i: list[torch.Tensor]
    pair_j: list[torch.Tensor]
    species: list[torch.Tensor]
    forces: list[torch.Tensor]
    energies: torch.Tensor
    n_atoms: torch.Tensor
    ids: list[str]

    def __len__(self) -> int:
        return len(self.features)

    def batch(self, indices: Sequence[int], device: torch.device, dtype: torch.dtype) -> Batch:
        """Concatenate the structures at ``indices`` into one `Batch` on ``device``."""
        indices = [int(i) for i in indices]
        sizes = [self.features[i].shape[0] for i in indices]
        atom_offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        pair_i = torch.cat([self.pair_i[i] + int(o) for i, o in zip(indices, atom_offsets, strict=True)])
        pair_j = torch.cat([self.pair_j[i] + int(o) for i, o in zip(indices, atom_offsets, strict=True)])
        structure_index = torch.repeat_interleave(torch.arange(len(indices)), torch.tensor(sizes))
        gradients = None
        if self.feature_gradients is not None:
            gradients = torch.cat([self.feature_gradients[i] for i in indices]).to(device, dtype)
        index = torch.as_tensor(indices)
        return Batch(
            features=torch.cat([self.features[i] for i in indices]).to(device, dtype),
            feature_gradients=gradients,
            pair_i=pair_i.to(device),
            pair_j=pair_j.to(device),
            species=torch.cat([self.species[i] for i in indices]).to(device),
            structure_index=structure_index.to(device),
            energies=self.energies[index].to(device, dtype),
            n_atoms=self.n_atoms[index].to(device, dtype),
            forces=torch.cat([self.forces[i] for i in indices]).to(device, dtype),
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
    with_gradients: bool = True,
    max_atoms_per_chunk: int = 1024,
) -> StructureData:
    """Compute the descriptors (and their gradients) of every structure once.

    Parameters
    ----------
    atoms_list : sequence of ase.Atoms
        Structures with a calculator that contains energy (eV) and forces (eV/Å).
    symmetry_function_set : descriptors.SymmetryFunctionSet
        Descriptors, cutoff and element order.
    with_gradients : bool, default True
        Also compute the feature derivatives that forces need. They take
        ``n_pairs * n_features * 3 * 8`` bytes, for example about 140 MB for
        1,800 iron structures at a 5 Å cutoff.
    max_atoms_per_chunk : int, default 1024
        Atoms computed together, which bounds the temporary memory.

    Raises
    ------
    ValueError
        If a structure lacks references or holds an element that the symmetry
        function set does not list.
    """
    known = set(symmetry_function_set.elements)
    energies, n_atoms, ids, forces = [], [], [], []
    for position, atoms in enumerate(atoms_list):
        unknown = sorted(set(atoms.get_chemical_symbols()) - known)
        if unknown:
            raise ValueError(
                f"structure {structure_id(atoms, position)} contains {unknown}, which "
                f"the symmetry functions do not cover (elements "
                f"{list(symmetry_function_set.elements)}); add them to the element list"
            )
        energy, force = reference_energy_forces(atoms, position)
        energies.append(energy)
        forces.append(torch.as_tensor(force, dtype=torch.float64))
        n_atoms.append(len(atoms))
        ids.append(structure_id(atoms, position))

    # A pair from an atom to its own periodic image moves with the atom, so its
    # bond vector never changes and its gradient adds nothing to the forces. Such
    # pairs are dropped, and one-atom cells (only such pairs) skip the gradients.
    features, gradients, pair_i, pair_j, species = [], [], [], [], []
    progress = ProgressLogger(logger, total=len(atoms_list), what="structure")
    for chunk, needs_gradients in _chunks_by_atoms(n_atoms, max_atoms_per_chunk, with_gradients):
        graphs = [_build_graph(atoms_list[i], symmetry_function_set) for i in chunk]
        batch = descriptors.batch_graphs(graphs)
        positions = torch.from_numpy(np.concatenate([atoms_list[i].get_positions() for i in chunk]))
        if needs_gradients:
            values, derivatives = symmetry_functions_with_gradients(symmetry_function_set, positions, batch)
            derivatives = torch.split(derivatives, [g.n_pairs for g in graphs])
        else:
            with torch.no_grad():
                values = descriptors.symmetry_functions(symmetry_function_set, positions, batch)
            derivatives = [None] * len(graphs)
        features += list(torch.split(values, [g.n_atoms for g in graphs]))
        for graph, derivative in zip(graphs, derivatives, strict=True):
            if derivative is None:
                moving_pairs = torch.zeros(graph.n_pairs, dtype=torch.bool)
                derivative = torch.zeros(0, symmetry_function_set.n_features, 3, dtype=torch.float64)
            else:
                moving_pairs = graph.pair_i != graph.pair_j
                derivative = derivative[moving_pairs]
            pair_i.append(graph.pair_i[moving_pairs])
            pair_j.append(graph.pair_j[moving_pairs])
            gradients.append(derivative)
            species.append(graph.species)
        progress.update(chunk[-1] + 1)
    return StructureData(
        features=features,
        feature_gradients=gradients if with_gradients else None,
        pair_i=pair_i,
        pair_j=pair_j,
        species=species,
        forces=forces,
        energies=torch.tensor(energies, dtype=torch.float64),
        n_atoms=torch.tensor(n_atoms, dtype=torch.float64),
        ids=ids,
    )


def _chunks_by_atoms(
    n_atoms: Sequence[int], max_atoms: int, with_gradients: bool
) -> list[tuple[list[int], bool]]:
    """Group consecutive structures into chunks of at most ``max_atoms`` atoms.

    Each chunk comes with a flag that says whether it needs feature gradients.
    One-atom cells never do, and a chunk contains only one kind.
    """
    chunks: list[tuple[list[int], bool]] = []
    total = 0
    for index, count in enumerate(n_atoms):
        needs = with_gradients and count > 1
        if not chunks or chunks[-1][1] != needs or total + count > max_atoms:
            chunks.append(([], needs))
            total = 0
        chunks[-1][0].append(index)
        total += count
    return chunks


def _build_graph(atoms: Any, symmetry_function_set: descriptors.SymmetryFunctionSet):
    return descriptors.build_graph(
        atoms, symmetry_function_set.cutoff, elements=symmetry_function_set.elements
    )


def _batches(n_items: int, batch_size: int) -> list[list[int]]:
    return [list(range(start, min(start + batch_size, n_items))) for start in range(0, n_items, batch_size)]


def split_validation(n_structures: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split structure positions into a training and a validation part.

    The validation part contains ``round(fraction * n_structures)`` structures, at
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
        ``energy_mse`` (eV²/atom²) and ``force_mse`` (eV²/Å²; NaN when ``data``
        contains no feature gradients).
    """
    energy_sq, force_sq, n_components = 0.0, 0.0, 0
    for chunk in _batches(len(indices), batch_size):
        batch = data.batch([indices[k] for k in chunk], device, dtype)
        predicted, predicted_forces = batch.predict(model)
        energy_sq += float((((predicted.detach() - batch.energies) / batch.n_atoms) ** 2).sum())
        if predicted_forces is not None:
            force_sq += float(((predicted_forces - batch.forces) ** 2).sum())
            n_components += batch.forces.numel()
    return {
        "energy_mse": energy_sq / len(indices),
        "force_mse": force_sq / n_components if n_components else math.nan,
    }


# ---------------------------------------------------------------------- training


def _loss(config: TrainingConfig, energy_mse: float, force_mse: float) -> float:
    if config.force_weight == 0:
        return config.energy_weight * energy_mse
    return config.energy_weight * energy_mse + config.force_weight * force_mse


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


def _fit_constants(model: BehlerParrinelloPotential, data: StructureData, train_index: np.ndarray) -> None:
    species = [data.species[i].numpy() for i in train_index]
    counts = composition_counts(species, len(model.elements))
    offset = model.fit_energy_offset(counts, data.energies[train_index].numpy())
    logger.info(
        "energy offsets (eV/atom): %s",
        ", ".join(f"{e}={o:.4f}" for e, o in zip(model.elements, offset, strict=True)),
    )

    # Descriptor statistics come from the training part only.
    features = torch.cat([data.features[i] for i in train_index])
    model.fit_normalisation(features, torch.cat([data.species[i] for i in train_index]))


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
    data = prepare_structures(train_atoms, symmetry_function_set, with_gradients=config.force_weight > 0)
    log.info(
        "prepared %d structures (%d atoms) in %.1f s; %d for training, %d for validation",
        len(data), int(data.n_atoms.sum()), time.perf_counter() - started,
        len(train_index), len(validation_index),
    )

    # Same seed, same initial weights and batch order.
    torch.manual_seed(config.seed)
    model = BehlerParrinelloPotential(symmetry_function_set, config.potential).to(dtype)
    _fit_constants(model, data, train_index)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=config.lr_decay_factor, patience=config.lr_decay_patience
    )
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
        state = _load_checkpoint(
            checkpoint_path, config, fingerprint, model, optimizer, scheduler, generator, device
        )
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
            batch = data.batch([train_list[order[i]] for i in chunk], device, dtype)
            predicted, predicted_forces = batch.predict(model, create_graph=True)
            energy_mse = (((predicted - batch.energies) / batch.n_atoms) ** 2).mean()
            loss = config.energy_weight * energy_mse
            if predicted_forces is not None:
                force_mse = ((predicted_forces - batch.forces) ** 2).mean()
                loss = loss + config.force_weight * force_mse
                force_sq += float(force_mse.detach()) * batch.forces.numel()
                n_components += batch.forces.numel()

            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            energy_sq += float(energy_mse.detach()) * len(chunk)

        # Validation decides early stopping and which weights are kept.
        model.eval()
        validation = evaluate_errors(
            model, data, validation_index.tolist(), max(config.batch_size, 64), device, dtype
        )
        train_energy_mse = energy_sq / len(train_list)
        train_force_mse = force_sq / n_components if n_components else math.nan
        train_loss = _loss(config, train_energy_mse, train_force_mse)
        validation_loss = _loss(config, validation["energy_mse"], validation["force_mse"])
        learning_rate = optimizer.param_groups[0]["lr"]
        if config.lr_decay_factor < 1:
            scheduler.step(validation_loss)
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
            "learning_rate": learning_rate,
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
            _save_checkpoint(
                checkpoint_path, config, fingerprint, model, optimizer, scheduler, generator, state
            )

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
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau,
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
        "scheduler": scheduler.state_dict(),
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
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau,
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
    scheduler.load_state_dict(checkpoint["scheduler"])
    generator.set_state(checkpoint["generator"])
    state = dict(checkpoint["state"])
    state["best_state"] = {k: v.to(device) for k, v in state["best_state"].items()}
    return state
