"""Behler-Parrinello neural-network potential on atom-centred symmetry functions.

The total energy of a structure is a sum of atomic energies, and each atomic energy
is the output of a small multilayer perceptron (one per element) applied to the
standardised symmetry functions of that atom (J. Behler and M. Parrinello, Phys. Rev.
Lett. 98, 146401, 2007). Forces are minus the gradient of the total energy with
respect to the positions, computed by autograd through the descriptors, so they are
exactly conservative.

Two fitted constants per element make training easier. The descriptor mean and
standard deviation over the training atoms standardise the network inputs. A
per-element energy offset, fitted by least squares of the energy per atom on the
composition, takes the large constant part of the energy, so the networks learn
only the residual.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from equipipe.materials import descriptors
from equipipe.materials.descriptor_gradients import forces_from_gradients

logger = logging.getLogger(__name__)

ACTIVATIONS = {"tanh": nn.Tanh, "silu": nn.SiLU, "softplus": nn.Softplus}
DTYPES = {"float64": torch.float64, "float32": torch.float32}
FORMAT_VERSION = 1


@dataclass(frozen=True)
class PotentialConfig:
    """Architecture of the per-element networks.

    Attributes
    ----------
    hidden : tuple of int, default (32, 32)
        Width of each hidden layer; the output layer has one unit (eV).
    activation : {"tanh", "silu", "softplus"}, default "tanh"
        Nonlinearity after each hidden layer. It must be smooth, because forces are
        the gradient of the output and training differentiates them once more.
    """

    hidden: tuple[int, ...] = (32, 32)
    activation: str = "tanh"

    def __post_init__(self) -> None:
        hidden = tuple(int(width) for width in self.hidden)
        object.__setattr__(self, "hidden", hidden)
        if not hidden or any(width < 1 for width in hidden):
            raise ValueError(
                f"hidden={self.hidden} must list one or more positive layer widths, "
                "for example (32, 32)"
            )
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"activation={self.activation!r} is not one of {sorted(ACTIVATIONS)}"
            )


def resolve_dtype(name: str) -> torch.dtype:
    """Return the torch dtype for ``"float64"`` or ``"float32"``."""
    if name not in DTYPES:
        raise ValueError(f"dtype={name!r} is not one of {sorted(DTYPES)}")
    return DTYPES[name]


def _build_mlp(n_features: int, config: PotentialConfig) -> nn.Sequential:
    layers: list[nn.Module] = []
    width_in = n_features
    for width in config.hidden:
        layers.append(nn.Linear(width_in, width))
        layers.append(ACTIVATIONS[config.activation]())
        width_in = width
    layers.append(nn.Linear(width_in, 1))
    return nn.Sequential(*layers)


class BehlerParrinelloPotential(nn.Module):
    """Sum of per-element atomic-energy networks on symmetry functions.

    Parameters
    ----------
    symmetry_function_set : descriptors.SymmetryFunctionSet
        Descriptor definition; its element order fixes the element index used in
        the graphs and in the buffers below.
    config : PotentialConfig, optional
        Hidden layers and activation; the defaults when omitted.

    Attributes
    ----------
    feature_mean, feature_std : Tensor of shape (n_elements, n_features)
        Standardisation of the descriptors per element (see `fit_normalisation`).
    energy_offset : Tensor of shape (n_elements,)
        Constant energy per atom of each element in eV (see `fit_energy_offset`).
    """

    def __init__(
        self,
        symmetry_function_set: descriptors.SymmetryFunctionSet,
        config: PotentialConfig | None = None,
    ) -> None:
        super().__init__()
        self.symmetry_function_set = symmetry_function_set
        self.config = config if config is not None else PotentialConfig()
        self.elements = tuple(symmetry_function_set.elements)
        n_elements = len(self.elements)
        n_features = symmetry_function_set.n_features

        self.networks = nn.ModuleList(
            _build_mlp(n_features, self.config) for _ in range(n_elements)
        )
        self.register_buffer("feature_mean", torch.zeros(n_elements, n_features))
        self.register_buffer("feature_std", torch.ones(n_elements, n_features))
        self.register_buffer("energy_offset", torch.zeros(n_elements))

    # ------------------------------------------------------------------ fitting

    @torch.no_grad()
    def fit_normalisation(self, features: torch.Tensor, species: torch.Tensor) -> None:
        """Set the per-element descriptor mean and standard deviation.

        Parameters
        ----------
        features : Tensor of shape (n_atoms, n_features)
            Symmetry functions of the training atoms.
        species : Tensor of shape (n_atoms,)
            Element index of each atom.

        Notes
        -----
        A feature that is constant over an element's training atoms (for example
        every angular function of a one-atom cell) keeps a scale of 1 so that it
        is only shifted. An element without training atoms keeps mean 0 and
        scale 1, and a warning names it.
        """
        for index, element in enumerate(self.elements):
            rows = features[species == index]
            if rows.shape[0] == 0:
                logger.warning(
                    "no training atom of element %s: its descriptors stay unscaled and "
                    "its network is untrained; add structures that contain %s",
                    element, element,
                )
                continue
            mean = rows.mean(dim=0)
            std = rows.std(dim=0, unbiased=False)
            scale_floor = 1e-6 * std.abs().max().clamp_min(1.0)
            std = torch.where(std > scale_floor, std, torch.ones_like(std))
            self.feature_mean[index] = mean.to(self.feature_mean)
            self.feature_std[index] = std.to(self.feature_std)

    @torch.no_grad()
    def fit_energy_offset(self, counts: np.ndarray, energies: np.ndarray) -> np.ndarray:
        """Fit the per-element energy offset by least squares on composition.

        Solves ``energy / n_atoms ~ (counts / n_atoms) @ offset`` over the training
        structures, so each structure weighs the same, as in the energy-per-atom
        loss. With collinear compositions (for example every structure has the same
        H:Pd ratio) the minimum-norm solution is taken, which still removes the
        mean energy per atom.

        Parameters
        ----------
        counts : ndarray of shape (n_structures, n_elements)
            Number of atoms of each element in each structure.
        energies : ndarray of shape (n_structures,)
            Total energies in eV.

        Returns
        -------
        ndarray of shape (n_elements,)
            The fitted offsets in eV/atom (also stored in ``energy_offset``).
        """
        counts = np.asarray(counts, dtype=np.float64)
        energies = np.asarray(energies, dtype=np.float64)
        n_atoms = counts.sum(axis=1, keepdims=True)
        fractions = counts / n_atoms
        offset, *_ = np.linalg.lstsq(fractions, energies / n_atoms[:, 0], rcond=None)
        self.energy_offset.copy_(torch.as_tensor(offset))
        return offset

    # ------------------------------------------------------------------ forward

    def atomic_energies_from_features(
        self, features: torch.Tensor, species: torch.Tensor
    ) -> torch.Tensor:
        """Compute the energy of every atom in eV from its symmetry functions.

        Parameters
        ----------
        features : Tensor of shape (n_atoms, n_features)
            Unscaled symmetry functions, in the model's dtype and device.
        species : Tensor of shape (n_atoms,)
            Element index of each atom.

        Returns
        -------
        Tensor of shape (n_atoms,)
        """
        energies = features.new_zeros(features.shape[0])
        for index, network in enumerate(self.networks):
            mask = species == index
            if not bool(mask.any()):
                continue
            scaled = (features[mask] - self.feature_mean[index]) / self.feature_std[index]
            atom_energy = network(scaled).squeeze(-1) + self.energy_offset[index]
            energies = energies.masked_scatter(mask, atom_energy)
        return energies

    def energy_from_features(
        self,
        features: torch.Tensor,
        species: torch.Tensor,
        structure_index: torch.Tensor,
        n_structures: int,
    ) -> torch.Tensor:
        """Sum the atomic energies per structure.

        Parameters
        ----------
        features : Tensor of shape (n_atoms, n_features)
        species, structure_index : Tensor of shape (n_atoms,)
            Element index and structure index of each atom.
        n_structures : int

        Returns
        -------
        Tensor of shape (n_structures,)
            Total energies in eV.
        """
        atom_energy = self.atomic_energies_from_features(features, species)  # (n_atoms,)
        totals = atom_energy.new_zeros(n_structures)
        return totals.index_add(0, structure_index, atom_energy)

    def forward(self, positions: torch.Tensor, graph: Any) -> torch.Tensor:
        """Compute the total energy of each structure in eV.

        Parameters
        ----------
        positions : Tensor of shape (n_atoms, 3)
            Cartesian positions in Å of all atoms of the batch, in the model's
            dtype and device.
        graph : descriptors.StructureGraph
            Graph of one structure, or a batch from `descriptors.batch_graphs`.

        Returns
        -------
        Tensor of shape (n_structures,)
        """
        features = descriptors.symmetry_functions(
            self.symmetry_function_set, positions, graph
        )  # (n_atoms, n_features)
        return self.energy_from_features(
            features, graph.species, graph.structure_index, graph.n_structures
        )

    def energy_and_forces(
        self, positions: torch.Tensor, graph: Any, create_graph: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Compute energies and forces, with forces = -dE/dr by autograd.

        Parameters
        ----------
        positions : Tensor of shape (n_atoms, 3)
            Cartesian positions in Å. They are detached and marked for gradients
            here, so the caller's tensor is left as it is.
        graph : descriptors.StructureGraph
            Graph of one structure or of a batch.
        create_graph : bool, default False
            Keep the graph of the force computation, which is needed to
            differentiate a force loss with respect to the weights. Without it,
            both outputs are detached.

        Returns
        -------
        energies : Tensor of shape (n_structures,)
            Total energies in eV.
        forces : Tensor of shape (n_atoms, 3)
            Forces in eV/Å.
        """
        positions = positions.detach().requires_grad_(True)
        with torch.enable_grad():
            energies = self(positions, graph)
            (gradient,) = torch.autograd.grad(
                energies.sum(), positions, create_graph=create_graph
            )
        if not create_graph:
            energies = energies.detach()
        return energies, -gradient

    def energy_and_forces_from_features(
        self,
        features: torch.Tensor,
        feature_gradients: torch.Tensor,
        pair_i: torch.Tensor,
        pair_j: torch.Tensor,
        species: torch.Tensor,
        structure_index: torch.Tensor,
        n_structures: int,
        create_graph: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Compute energies and forces from precomputed features and their gradients.

        Gives the same numbers as `energy_and_forces` (up to round-off) without
        differentiating through the descriptors, which makes training on forces
        fast: only the networks are differentiated, and the chain rule to the
        positions is one contraction with ``feature_gradients``.

        Parameters
        ----------
        features : Tensor of shape (n_atoms, n_features)
        feature_gradients : Tensor of shape (n_pairs, n_features, 3)
            From `descriptor_gradients.symmetry_functions_with_gradients`.
        pair_i, pair_j : Tensor of shape (n_pairs,)
            Centre and neighbour atom of each pair.
        species, structure_index : Tensor of shape (n_atoms,)
        n_structures : int
        create_graph : bool, default False
            Keep the graph for a force loss; without it both outputs are detached.

        Returns
        -------
        energies : Tensor of shape (n_structures,), eV
        forces : Tensor of shape (n_atoms, 3), eV/Å
        """
        features = features.detach().requires_grad_(True)
        with torch.enable_grad():
            energies = self.energy_from_features(features, species, structure_index, n_structures)
            (energy_gradient,) = torch.autograd.grad(
                energies.sum(), features, create_graph=create_graph
            )  # (n_atoms, n_features)
            forces = forces_from_gradients(energy_gradient, feature_gradients, pair_i, pair_j)
        if not create_graph:
            energies, forces = energies.detach(), forces.detach()
        return energies, forces

    # ------------------------------------------------------------------ saving

    def hyperparameters(self) -> dict[str, Any]:
        """Return the JSON-serialisable settings that rebuild this model's layout."""
        return {
            "format_version": FORMAT_VERSION,
            "potential": dataclasses.asdict(self.config),
            "symmetry_functions": descriptors_to_dict(self.symmetry_function_set),
            "dtype": str(self.energy_offset.dtype).removeprefix("torch."),
        }

    def save(self, path: Any) -> None:
        """Write the state dict and hyperparameters to ``path`` atomically.

        The file contains only tensors, strings, numbers, lists and dicts, so
        ``torch.load(path, weights_only=True)`` reads it.
        """
        from equipipe.fileio import atomic_path

        state = {k: v.detach().cpu() for k, v in self.state_dict().items()}
        with atomic_path(path) as temp:
            torch.save({"hyperparameters": self.hyperparameters(), "state_dict": state}, temp)

    @classmethod
    def from_saved(cls, saved: dict[str, Any]) -> BehlerParrinelloPotential:
        """Rebuild a model from the dict that `save` writes (after ``torch.load``)."""
        hyper = saved["hyperparameters"]
        if hyper.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"saved potential has format_version={hyper.get('format_version')!r}, "
                f"expected {FORMAT_VERSION}; retrain it with this version of equipipe"
            )
        potential_config = hyper["potential"]
        config = PotentialConfig(
            hidden=tuple(potential_config["hidden"]),
            activation=potential_config["activation"],
        )
        model = cls(descriptors_from_dict(hyper["symmetry_functions"]), config)
        model.to(resolve_dtype(hyper["dtype"]))
        model.load_state_dict(saved["state_dict"])
        return model

    @classmethod
    def load(cls, path: Any, map_location: str | torch.device = "cpu") -> BehlerParrinelloPotential:
        """Read a model written by `save`, with ``weights_only=True``."""
        saved = torch.load(path, map_location=map_location, weights_only=True)
        return cls.from_saved(saved)


def descriptors_to_dict(symmetry_function_set: descriptors.SymmetryFunctionSet) -> dict:
    """Return the constructor arguments of a symmetry-function set as plain data."""
    if hasattr(symmetry_function_set, "to_dict"):
        return symmetry_function_set.to_dict()
    return _plain(dataclasses.asdict(symmetry_function_set))


def descriptors_from_dict(data: dict) -> descriptors.SymmetryFunctionSet:
    """Rebuild a symmetry-function set from `descriptors_to_dict` output."""
    cls = descriptors.SymmetryFunctionSet
    if hasattr(cls, "from_dict"):
        return cls.from_dict(data)
    return cls(**data)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def composition_counts(species: Sequence[np.ndarray], n_elements: int) -> np.ndarray:
    """Count the atoms of each element per structure.

    Parameters
    ----------
    species : sequence of int ndarray
        Element index of every atom, one array per structure.
    n_elements : int

    Returns
    -------
    ndarray of shape (n_structures, n_elements)
    """
    return np.stack(
        [np.bincount(np.asarray(s), minlength=n_elements) for s in species]
    ).astype(np.float64)
