"""Atom-centred symmetry functions in PyTorch, differentiable with respect to positions.

The radial (G2) and angular (G4 or G5) functions of Behler (J. Chem. Phys. 134, 074106,
2011) with the cosine cutoff ``fc(r) = 0.5 (cos(pi r / rc) + 1)`` for ``r < rc`` and 0
beyond. For a centre atom ``i`` with neighbours ``j`` and ``k`` inside the cutoff:

- ``G2 = sum_j exp(-eta (r_ij - r_s)^2) fc(r_ij)``, one block per neighbour element;
- ``G4 = sum_{j<k} 2^(1-zeta) (1 + lambda cos theta_ijk)^zeta
  exp(-eta (r_ij^2 + r_ik^2 + r_jk^2)) fc(r_ij) fc(r_ik) fc(r_jk)``;
- ``G5`` as G4 without the ``r_jk`` terms.

Each unordered neighbour pair ``{j, k}`` is counted once, as in n2p2 and dscribe 2.1
(Behler's 2011 paper sums over ordered pairs, which doubles G4 and G5). One angular
block belongs to every unordered pair of neighbour elements. Distances are in Å,
``eta`` in Å^-2 and ``r_s`` in Å.

The functions are computed on a :class:`StructureGraph` (pair and triplet index lists
from ASE's neighbour list) with ``index_add`` scatters, so that forces follow from
autograd through the positions and a batch of structures is one large graph.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from ase import Atoms
from ase.data import atomic_numbers as ASE_ATOMIC_NUMBERS
from ase.neighborlist import neighbor_list as ase_neighbor_list

try:
    from matscipy.neighbours import neighbour_list as matscipy_neighbour_list
except ImportError:  # matscipy is optional, ASE's neighbour list gives the same pairs.
    matscipy_neighbour_list = None

from equipipe.errors import InputError
from equipipe.logs import ProgressLogger

logger = logging.getLogger(__name__)

ANGULAR_KINDS = ("g4", "g5")


@dataclass
class SymmetryFunctionSet:
    """Parameters of a set of atom-centred symmetry functions.

    The features of every centre atom have the same layout. First comes the G2 block of
    each neighbour element (in ``elements`` order), with one function for every
    ``(eta, shift)`` combination. Then comes the angular block of each unordered pair of
    neighbour elements (``(e0, e0), (e0, e1), ..., (e1, e1), ...``), with one function
    for every ``(eta, zeta, lambda)`` combination.

    Parameters
    ----------
    elements : list of str
        Chemical symbols, in the order of the feature blocks.
    cutoff : float
        Cutoff radius ``rc`` in Å.
    g2_etas : sequence of float
        Widths ``eta`` of the radial Gaussians in Å^-2, each >= 0.
    g2_shifts : sequence of float
        Centres ``r_s`` of the radial Gaussians in Å, each in ``[0, cutoff)``.
    angular : {"g4", "g5"}
        G4 includes the distance between the two neighbours, G5 does not.
    g4_etas : sequence of float
        Widths ``eta`` of the angular Gaussians in Å^-2, each >= 0.
    g4_zetas : sequence of float
        Angular resolutions ``zeta``, each >= 1.
    g4_lambdas : sequence of float
        Angular phases ``lambda``, each -1 or +1.
    """

    elements: list[str]
    cutoff: float
    g2_etas: Sequence[float]
    g2_shifts: Sequence[float]
    angular: str = "g4"
    g4_etas: Sequence[float] = ()
    g4_zetas: Sequence[float] = ()
    g4_lambdas: Sequence[float] = ()

    def __post_init__(self) -> None:
        self.elements = list(self.elements)
        self.cutoff = float(self.cutoff)
        self.g2_etas = tuple(float(v) for v in self.g2_etas)
        self.g2_shifts = tuple(float(v) for v in self.g2_shifts)
        self.g4_etas = tuple(float(v) for v in self.g4_etas)
        self.g4_zetas = tuple(float(v) for v in self.g4_zetas)
        self.g4_lambdas = tuple(float(v) for v in self.g4_lambdas)
        self._validate()

    def _validate(self) -> None:
        if not self.elements:
            raise ValueError("elements=[] is empty; list the chemical symbols, e.g. ['Pd', 'H']")
        unknown = [e for e in self.elements if e not in ASE_ATOMIC_NUMBERS or e == "X"]
        if unknown:
            raise ValueError(f"elements contains unknown chemical symbols {unknown}; use symbols such as 'Pd', 'H'")
        if len(set(self.elements)) != len(self.elements):
            raise ValueError(f"elements={self.elements} lists an element twice; list each element once")
        if not (math.isfinite(self.cutoff) and self.cutoff > 0):
            raise ValueError(f"cutoff={self.cutoff} Å must be a positive finite number")
        if not self.g2_etas or not self.g2_shifts:
            raise ValueError("g2_etas and g2_shifts must each contain at least one value")
        _check_values("g2_etas", self.g2_etas, lambda v: v >= 0, ">= 0 (Å^-2)")
        _check_values("g2_shifts", self.g2_shifts, lambda v: 0 <= v < self.cutoff, f"in [0, cutoff={self.cutoff}) Å")
        if self.angular not in ANGULAR_KINDS:
            raise ValueError(f"angular={self.angular!r} is not supported; expected one of {ANGULAR_KINDS}")
        n_angular_lists = sum(bool(v) for v in (self.g4_etas, self.g4_zetas, self.g4_lambdas))
        if n_angular_lists not in (0, 3):
            raise ValueError(
                "g4_etas, g4_zetas and g4_lambdas must all be empty (no angular functions) or all non-empty; "
                f"got {len(self.g4_etas)}, {len(self.g4_zetas)} and {len(self.g4_lambdas)} values"
            )
        _check_values("g4_etas", self.g4_etas, lambda v: v >= 0, ">= 0 (Å^-2)")
        _check_values("g4_zetas", self.g4_zetas, lambda v: v >= 1, ">= 1")
        _check_values("g4_lambdas", self.g4_lambdas, lambda v: v in (-1.0, 1.0), "-1 or 1")

    @classmethod
    def default(cls, elements: Sequence[str], cutoff: float = 6.0) -> SymmetryFunctionSet:
        """Build the default set for metals and their hydrides.

        Radial: 8 Gaussians centred every 0.6 Å from 1.0 Å (below the shortest
        metal-hydrogen bond, about 1.7 Å) to 5.2 Å, each at two widths
        (``eta`` = 0.5 and 2.0 Å^-2, standard deviations 1.0 and 0.5 Å). Shifted
        Gaussians separate the neighbour shells of close-packed metals (first shells at
        2.5-2.9 Å, second at 2.9-4.0 Å), which Gaussians centred at zero blur
        together. Angular: G4 with ``eta`` = 0.005 and 0.05 Å^-2 (the whole
        cutoff sphere and the first shells), ``zeta`` = 1 and 4, ``lambda`` = -1 and 1.
        With two elements this gives 2 x 16 radial and 3 x 8 angular functions.

        Parameters
        ----------
        elements : sequence of str
            Chemical symbols.
        cutoff : float, default 6.0
            Cutoff radius in Å; shifts at or beyond it are dropped.
        """
        shifts = [round(1.0 + 0.6 * k, 10) for k in range(8)]
        shifts = [s for s in shifts if s < cutoff]
        return cls(
            elements=list(elements),
            cutoff=cutoff,
            g2_etas=(0.5, 2.0),
            g2_shifts=shifts or (0.0,),
            angular="g4",
            g4_etas=(0.005, 0.05),
            g4_zetas=(1.0, 4.0),
            g4_lambdas=(-1.0, 1.0),
        )

    @property
    def g2_parameters(self) -> list[tuple[float, float]]:
        """``(eta, shift)`` of each radial function inside one element block."""
        return list(itertools.product(self.g2_etas, self.g2_shifts))

    @property
    def angular_parameters(self) -> list[tuple[float, float, float]]:
        """``(eta, zeta, lambda)`` of each angular function inside one element-pair block."""
        return list(itertools.product(self.g4_etas, self.g4_zetas, self.g4_lambdas))

    @property
    def element_pairs(self) -> list[tuple[str, str]]:
        """Unordered neighbour-element pairs, in the order of the angular blocks."""
        return list(itertools.combinations_with_replacement(self.elements, 2))

    @property
    def n_features(self) -> int:
        """Number of features per atom."""
        return len(self.elements) * len(self.g2_parameters) + len(self.element_pairs) * len(self.angular_parameters)

    @property
    def feature_names(self) -> list[str]:
        """Readable name of every feature, e.g. ``G2[H](eta=0.5,rs=1.6)``."""
        names = [
            f"G2[{element}](eta={eta:g},rs={shift:g})"
            for element in self.elements
            for eta, shift in self.g2_parameters
        ]
        kind = self.angular.upper()
        names += [
            f"{kind}[{first}-{second}](eta={eta:g},zeta={zeta:g},lambda={lam:+g})"
            for first, second in self.element_pairs
            for eta, zeta, lam in self.angular_parameters
        ]
        return names


def _check_values(name: str, values: Sequence[float], is_valid, expected: str) -> None:
    bad = [v for v in values if not (math.isfinite(v) and is_valid(v))]
    if bad:
        raise ValueError(f"{name} contains {bad}; each value must be {expected}")


@dataclass
class StructureGraph:
    """Pairs and triplets of atoms within a cutoff, for one structure or a batch.

    Attributes
    ----------
    species : torch.LongTensor of shape (n_atoms,)
        Index of each atom's element in ``elements``.
    numbers : torch.LongTensor of shape (n_atoms,)
        Atomic numbers.
    pair_i, pair_j : torch.LongTensor of shape (n_pairs,)
        Centre and neighbour atom of each pair; ``pair_i`` is sorted. Both directions
        of a bond are listed.
    pair_shift : torch.DoubleTensor of shape (n_pairs, 3)
        Cartesian shift in Å, so that the bond vector is
        ``positions[pair_j] - positions[pair_i] + pair_shift``.
    triplet_a, triplet_b : torch.LongTensor of shape (n_triplets,)
        Indices into the pair list of two different pairs with the same centre atom,
        ``triplet_a < triplet_b``: each unordered neighbour pair appears once.
    structure_index : torch.LongTensor of shape (n_atoms,)
        Index of each atom's structure within the batch (all 0 for one structure).
    elements : tuple of str
        Chemical symbols that ``species`` indexes.
    cutoff : float
        Cutoff radius in Å that the pair list was built with.
    n_structures : int
        Number of structures in the graph.
    """

    species: torch.Tensor
    numbers: torch.Tensor
    pair_i: torch.Tensor
    pair_j: torch.Tensor
    pair_shift: torch.Tensor
    triplet_a: torch.Tensor
    triplet_b: torch.Tensor
    structure_index: torch.Tensor
    elements: tuple[str, ...] = field(default=())
    cutoff: float = 0.0
    n_structures: int = 1

    @property
    def n_atoms(self) -> int:
        """Number of atoms."""
        return int(self.species.shape[0])

    @property
    def n_pairs(self) -> int:
        """Number of directed pairs."""
        return int(self.pair_i.shape[0])

    @property
    def n_triplets(self) -> int:
        """Number of triplets (centre and an unordered pair of neighbours)."""
        return int(self.triplet_a.shape[0])

    def to(self, device: torch.device | str) -> StructureGraph:
        """Return a copy with every tensor on ``device``."""
        tensors = {
            name: getattr(self, name).to(device)
            for name in (
                "species", "numbers", "pair_i", "pair_j", "pair_shift",
                "triplet_a", "triplet_b", "structure_index",
            )
        }
        return replace(self, **tensors)


NEIGHBOUR_BACKENDS = ("auto", "ase", "matscipy")


def neighbour_list(quantities: str, atoms: Atoms, cutoff: float, backend: str = "auto") -> tuple[np.ndarray, ...]:
    """Return ``neighbor_list(quantities, atoms, cutoff)`` from matscipy or ASE.

    Both return every ordered pair with distance < cutoff, periodic images included.
    ``"auto"`` picks matscipy when it is installed and the cell has three independent
    vectors (matscipy inverts the cell), and ASE otherwise. At a 6 Å cutoff matscipy
    1.3.1 built the lists 48 to 420 times faster than ASE 3.29 on Fe-GAP22 and PdH_x
    cells (benchmarks/bench_descriptors.py, recorded in docs/benchmarks.md).
    """
    if backend not in NEIGHBOUR_BACKENDS:
        raise ValueError(f"backend={backend!r} is invalid; expected one of {NEIGHBOUR_BACKENDS}")
    if backend == "matscipy" and matscipy_neighbour_list is None:
        raise ValueError("backend='matscipy' but matscipy is not installed; install it or use backend='ase'")
    full_cell = atoms.cell.rank == 3
    use_matscipy = backend == "matscipy" or (backend == "auto" and matscipy_neighbour_list is not None and full_cell)
    if use_matscipy:
        if not full_cell:
            raise ValueError("matscipy needs three independent cell vectors; use backend='ase' for this structure")
        return matscipy_neighbour_list(quantities, atoms, float(cutoff))
    return ase_neighbor_list(quantities, atoms, float(cutoff))


def build_graph(
    atoms: Atoms,
    cutoff: float,
    elements: Sequence[str] | None = None,
    backend: str = "auto",
) -> StructureGraph:
    """Build the pair and triplet lists of ``atoms`` within ``cutoff``.

    Parameters
    ----------
    atoms : ase.Atoms
        Structure; periodic directions follow ``atoms.pbc``.
    cutoff : float
        Cutoff radius in Å (pairs with distance < cutoff).
    elements : sequence of str, optional
        Chemical symbols that ``species`` indexes; pass ``SymmetryFunctionSet.elements``.
        By default the elements present, sorted by atomic number.
    backend : {"auto", "ase", "matscipy"}, default "auto"
        Neighbour-list implementation, see :func:`neighbour_list`.

    Returns
    -------
    StructureGraph

    Raises
    ------
    ValueError
        If ``cutoff`` is not positive or an atom's element is not in ``elements``.
    """
    if not (math.isfinite(cutoff) and cutoff > 0):
        raise ValueError(f"cutoff={cutoff} Å must be a positive finite number")
    symbols = atoms.get_chemical_symbols()
    if elements is None:
        elements = sorted(set(symbols), key=lambda s: ASE_ATOMIC_NUMBERS[s])
    elements = tuple(elements)
    element_index = {e: k for k, e in enumerate(elements)}
    missing = sorted(set(symbols) - set(elements))
    if missing:
        raise ValueError(
            f"structure {atoms.get_chemical_formula()} contains elements {missing} "
            f"that are not in elements={list(elements)}; add them to the element list"
        )
    species = np.array([element_index[s] for s in symbols], dtype=np.int64)

    # Directed pairs, sorted by centre atom so that each centre's pairs are contiguous.
    pair_i, pair_j, pair_shift_cells = neighbour_list("ijS", atoms, cutoff, backend)
    order = np.argsort(pair_i, kind="stable")
    pair_i, pair_j, pair_shift_cells = pair_i[order], pair_j[order], pair_shift_cells[order]
    pair_shift = pair_shift_cells @ np.asarray(atoms.get_cell(complete=True))  # (n_pairs, 3) Å

    triplet_a, triplet_b = _triplets_from_sorted_centres(pair_i, len(atoms))
    return StructureGraph(
        species=torch.from_numpy(species),
        numbers=torch.from_numpy(atoms.get_atomic_numbers().astype(np.int64)),
        pair_i=torch.from_numpy(pair_i.astype(np.int64)),
        pair_j=torch.from_numpy(pair_j.astype(np.int64)),
        pair_shift=torch.from_numpy(np.ascontiguousarray(pair_shift, dtype=np.float64)),
        triplet_a=torch.from_numpy(triplet_a),
        triplet_b=torch.from_numpy(triplet_b),
        structure_index=torch.zeros(len(atoms), dtype=torch.long),
        elements=elements,
        cutoff=float(cutoff),
        n_structures=1,
    )


def _triplets_from_sorted_centres(pair_i: np.ndarray, n_atoms: int) -> tuple[np.ndarray, np.ndarray]:
    """Return every pair of pair indices ``a < b`` with the same centre, without loops.

    ``pair_i`` must be sorted. Pair ``a`` is combined with every later pair of its
    centre, i.e. with ``end[centre] - a - 1`` partners.
    """
    counts = np.bincount(pair_i, minlength=n_atoms)
    ends = np.cumsum(counts)  # one past the last pair of each centre
    pair_index = np.arange(len(pair_i), dtype=np.int64)
    n_partners = ends[pair_i] - pair_index - 1  # (n_pairs,)
    triplet_a = np.repeat(pair_index, n_partners)
    # Position of each triplet inside the run of its first pair: 0, 1, ..., n_partners - 1.
    run_starts = np.cumsum(n_partners) - n_partners
    within_run = np.arange(len(triplet_a), dtype=np.int64) - np.repeat(run_starts, n_partners)
    triplet_b = triplet_a + 1 + within_run
    return triplet_a, triplet_b


def batch_graphs(graphs: Sequence[StructureGraph]) -> StructureGraph:
    """Concatenate several graphs into one, offsetting atom and pair indices.

    Atom ``k`` of structure ``s`` in the result is atom ``k - offset[s]`` of
    ``graphs[s]``; pass positions concatenated in the same order, e.g.
    ``torch.cat([p_0, p_1, ...])``. ``structure_index`` gives the structure each atom
    came from.

    Raises
    ------
    ValueError
        If ``graphs`` is empty or the graphs differ in elements.
    """
    if not graphs:
        raise ValueError("graphs is empty; pass at least one StructureGraph")
    elements = graphs[0].elements
    for k, graph in enumerate(graphs):
        if graph.elements != elements:
            raise ValueError(
                f"graph {k} has elements {list(graph.elements)} but graph 0 has {list(elements)}; "
                "build every graph with the same elements=... argument"
            )

    atom_offsets = np.cumsum([0] + [g.n_atoms for g in graphs])
    pair_offsets = np.cumsum([0] + [g.n_pairs for g in graphs])
    structure_offsets = np.cumsum([0] + [g.n_structures for g in graphs])
    return StructureGraph(
        species=torch.cat([g.species for g in graphs]),
        numbers=torch.cat([g.numbers for g in graphs]),
        pair_i=torch.cat([g.pair_i + int(o) for g, o in zip(graphs, atom_offsets)]),
        pair_j=torch.cat([g.pair_j + int(o) for g, o in zip(graphs, atom_offsets)]),
        pair_shift=torch.cat([g.pair_shift for g in graphs]),
        triplet_a=torch.cat([g.triplet_a + int(o) for g, o in zip(graphs, pair_offsets)]),
        triplet_b=torch.cat([g.triplet_b + int(o) for g, o in zip(graphs, pair_offsets)]),
        structure_index=torch.cat([g.structure_index + int(o) for g, o in zip(graphs, structure_offsets)]),
        elements=elements,
        cutoff=min(g.cutoff for g in graphs),
        n_structures=int(structure_offsets[-1]),
    )


def symmetry_functions(sf: SymmetryFunctionSet, positions: torch.Tensor, graph: StructureGraph) -> torch.Tensor:
    """Compute the symmetry functions of every atom, differentiably in ``positions``.

    Parameters
    ----------
    sf : SymmetryFunctionSet
        Function parameters.
    positions : torch.Tensor of shape (n_atoms, 3)
        Cartesian positions in Å; the result takes its dtype and device. Set
        ``requires_grad`` to get forces by autograd.
    graph : StructureGraph
        Pairs and triplets built with ``cutoff >= sf.cutoff`` and ``elements = sf.elements``,
        on the same device as ``positions``.

    Returns
    -------
    torch.Tensor of shape (n_atoms, sf.n_features)
        Features in the order of ``sf.feature_names``.

    Raises
    ------
    ValueError
        If the graph was built for other elements, a smaller cutoff or another number
        of atoms.
    """
    _check_graph(sf, positions, graph)
    dtype, device = positions.dtype, positions.device
    n_atoms = positions.shape[0]
    n_elements = len(sf.elements)

    # Bond vectors and cutoff function of every pair.
    pair_i, pair_j = graph.pair_i, graph.pair_j
    vectors = positions[pair_j] - positions[pair_i] + graph.pair_shift.to(dtype=dtype, device=device)  # (n_pairs, 3)
    distances = torch.linalg.vector_norm(vectors, dim=1)  # (n_pairs,)
    fc = _cosine_cutoff(distances, sf.cutoff)  # (n_pairs,)

    # Radial G2: scatter each pair into the block of its neighbour's element.
    g2_params = torch.tensor(sf.g2_parameters, dtype=dtype, device=device)  # (n_g2, 2)
    g2_eta, g2_shift = g2_params[:, 0], g2_params[:, 1]
    g2_terms = torch.exp(-g2_eta * (distances[:, None] - g2_shift) ** 2) * fc[:, None]  # (n_pairs, n_g2)
    radial = torch.zeros(n_atoms * n_elements, len(g2_params), dtype=dtype, device=device)
    radial = radial.index_add(0, pair_i * n_elements + graph.species[pair_j], g2_terms)
    radial = radial.reshape(n_atoms, n_elements * len(g2_params))
    if not sf.angular_parameters:
        return radial

    # Angular G4/G5 over the triplets (centre i, neighbours j and k).
    first, second = graph.triplet_a, graph.triplet_b
    vectors_ij, vectors_ik = vectors[first], vectors[second]  # (n_triplets, 3)
    if sf.angular == "g4":
        # fc(r_jk) and its derivative vanish for r_jk >= rc, so those triplets add nothing.
        vectors_jk = vectors_ik - vectors_ij
        distances_jk = torch.linalg.vector_norm(vectors_jk, dim=1)
        inside = torch.nonzero(distances_jk < sf.cutoff).squeeze(1)
        first, second = first[inside], second[inside]
        vectors_ij, vectors_ik, distances_jk = vectors_ij[inside], vectors_ik[inside], distances_jk[inside]
    distances_ij, distances_ik = distances[first], distances[second]
    cos_theta = (vectors_ij * vectors_ik).sum(dim=1) / (distances_ij * distances_ik)
    squared_sum = distances_ij**2 + distances_ik**2
    cutoff_product = fc[first] * fc[second]
    if sf.angular == "g4":
        squared_sum = squared_sum + distances_jk**2
        cutoff_product = cutoff_product * _cosine_cutoff(distances_jk, sf.cutoff)

    etas = torch.tensor(sf.g4_etas, dtype=dtype, device=device)
    radial_part = torch.exp(-etas * squared_sum[:, None]) * cutoff_product[:, None]  # (n_triplets, n_eta)
    # Round-off can push 1 + lambda cos slightly below 0, where a fractional power is NaN.
    # A scalar exponent per column is faster than a tensor of exponents.
    angular_columns = [
        2.0 ** (1.0 - zeta) * (1.0 + lam * cos_theta).clamp(min=0.0) ** zeta
        for zeta, lam in itertools.product(sf.g4_zetas, sf.g4_lambdas)
    ]
    angular_part = torch.stack(angular_columns, dim=1)  # (n_triplets, n_zeta_lambda)
    terms = (radial_part[:, :, None] * angular_part[:, None, :]).reshape(len(first), -1)  # (n_triplets, n_ang)

    pair_table = _element_pair_table(n_elements, device)
    n_element_pairs = n_elements * (n_elements + 1) // 2
    centres = pair_i[first]
    block = pair_table[graph.species[pair_j[first]], graph.species[pair_j[second]]]
    angular = torch.zeros(n_atoms * n_element_pairs, terms.shape[1], dtype=dtype, device=device)
    angular = angular.index_add(0, centres * n_element_pairs + block, terms)
    angular = angular.reshape(n_atoms, n_element_pairs * terms.shape[1])
    return torch.cat([radial, angular], dim=1)


def _cosine_cutoff(distances: torch.Tensor, cutoff: float) -> torch.Tensor:
    inside = distances < cutoff
    value = 0.5 * (torch.cos(distances * (math.pi / cutoff)) + 1.0)
    return torch.where(inside, value, torch.zeros_like(value))


def _element_pair_table(n_elements: int, device: torch.device) -> torch.Tensor:
    """Return the (n_elements, n_elements) table of angular block indices, symmetric."""
    table = torch.empty(n_elements, n_elements, dtype=torch.long)
    for block, (a, b) in enumerate(itertools.combinations_with_replacement(range(n_elements), 2)):
        table[a, b] = block
        table[b, a] = block
    return table.to(device)


def _check_graph(sf: SymmetryFunctionSet, positions: torch.Tensor, graph: StructureGraph) -> None:
    if tuple(graph.elements) != tuple(sf.elements):
        raise ValueError(
            f"graph was built for elements {list(graph.elements)} but the symmetry functions use "
            f"{sf.elements}; build it with build_graph(atoms, sf.cutoff, elements=sf.elements)"
        )
    if graph.cutoff < sf.cutoff:
        raise ValueError(
            f"graph cutoff {graph.cutoff} Å is smaller than the symmetry-function cutoff {sf.cutoff} Å; "
            "build the graph with cutoff=sf.cutoff"
        )
    if positions.ndim != 2 or positions.shape != (graph.n_atoms, 3):
        raise ValueError(
            f"positions has shape {tuple(positions.shape)} but the graph has {graph.n_atoms} atoms; "
            f"expected ({graph.n_atoms}, 3)"
        )


@dataclass
class DescriptorSet:
    """Symmetry functions of every atom of a list of structures, as numpy arrays.

    Attributes
    ----------
    values : ndarray of shape (n_atoms_total, n_features), float64
        Features, structure after structure.
    species : ndarray of shape (n_atoms_total,), int64
        Atomic number of every atom.
    offsets : ndarray of shape (n_structures + 1,), int64
        Atoms of structure ``s`` are rows ``offsets[s]:offsets[s + 1]``.
    ids : ndarray of shape (n_structures,), str
        Structure ids (``atoms.info["id"]``, or the list index when absent).
    feature_names : list of str
        Name of every column.
    """

    values: np.ndarray
    species: np.ndarray
    offsets: np.ndarray
    ids: np.ndarray
    feature_names: list[str]

    @property
    def n_structures(self) -> int:
        """Number of structures."""
        return len(self.ids)

    def structure_values(self, index: int) -> np.ndarray:
        """Return the (n_atoms, n_features) features of structure ``index``."""
        return self.values[self.offsets[index] : self.offsets[index + 1]]


def compute_descriptors(
    sf: SymmetryFunctionSet,
    atoms_list: Sequence[Atoms],
    max_atoms_per_batch: int = 2048,
) -> DescriptorSet:
    """Compute the symmetry functions of every atom of every structure.

    Structures are processed in batches of at most ``max_atoms_per_batch`` atoms (a
    larger structure forms a batch alone) in float64 on the CPU, with a progress line
    in the log every 10 s.

    Parameters
    ----------
    sf : SymmetryFunctionSet
        Function parameters.
    atoms_list : sequence of ase.Atoms
        Structures; ids come from ``atoms.info["id"]`` when present.
    max_atoms_per_batch : int, default 2048
        Upper bound on atoms per batch, which bounds memory (the triplet arrays grow
        with atoms times neighbours squared).

    Returns
    -------
    DescriptorSet

    Raises
    ------
    InputError
        If a structure contains an element that is not in ``sf.elements``.
    """
    if max_atoms_per_batch < 1:
        raise ValueError(f"max_atoms_per_batch={max_atoms_per_batch} must be >= 1")
    allowed = set(sf.elements)
    for index, atoms in enumerate(atoms_list):
        unknown = sorted(set(atoms.get_chemical_symbols()) - allowed)
        if unknown:
            raise InputError(
                f"structure {atoms.info.get('id', index)!s} contains elements {unknown} not in {sf.elements}",
                location=f"structure {index}",
                field="elements",
                fix="add the elements to the symmetry-function element list or remove the structure",
            )

    n_structures = len(atoms_list)
    n_atoms_total = sum(len(a) for a in atoms_list)
    values = np.empty((n_atoms_total, sf.n_features), dtype=np.float64)
    progress = ProgressLogger(logger, total=n_structures, what="structure")
    start = 0
    done = 0
    for batch in _batches(atoms_list, max_atoms_per_batch):
        graphs = [build_graph(atoms, sf.cutoff, sf.elements) for atoms in batch]
        positions = torch.from_numpy(np.concatenate([a.get_positions() for a in batch]))
        with torch.no_grad():
            features = symmetry_functions(sf, positions, batch_graphs(graphs))
        values[start : start + len(positions)] = features.numpy()
        start += len(positions)
        done += len(batch)
        progress.update(done)
    if n_structures:
        progress.update(done, force=True)

    sizes = [len(a) for a in atoms_list]
    return DescriptorSet(
        values=values,
        species=np.concatenate([a.get_atomic_numbers() for a in atoms_list]).astype(np.int64)
        if atoms_list
        else np.empty(0, dtype=np.int64),
        offsets=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
        ids=np.array([str(a.info.get("id", k)) for k, a in enumerate(atoms_list)], dtype=str),
        feature_names=sf.feature_names,
    )


def _batches(atoms_list: Sequence[Atoms], max_atoms: int):
    batch: list[Atoms] = []
    n_atoms = 0
    for atoms in atoms_list:
        if batch and n_atoms + len(atoms) > max_atoms:
            yield batch
            batch, n_atoms = [], 0
        batch.append(atoms)
        n_atoms += len(atoms)
    if batch:
        yield batch


def save_descriptors(path: str | os.PathLike, descriptors: DescriptorSet) -> None:
    """Write ``descriptors`` to ``path`` as an uncompressed .npz file, atomically."""
    from equipipe.fileio import atomic_path

    with atomic_path(path) as temp:
        with open(temp, "wb") as handle:
            np.savez(
                handle,
                values=descriptors.values,
                species=descriptors.species,
                offsets=descriptors.offsets,
                ids=np.asarray(descriptors.ids, dtype=str),
                feature_names=np.asarray(descriptors.feature_names, dtype=str),
            )


def load_descriptors(path: str | os.PathLike) -> DescriptorSet:
    """Read a DescriptorSet written by :func:`save_descriptors` (no pickled objects).

    Raises
    ------
    InputError
        If the file lacks an array or the arrays have inconsistent shapes.
    """
    required = ("values", "species", "offsets", "ids", "feature_names")
    with np.load(path, allow_pickle=False) as data:
        missing = [name for name in required if name not in data.files]
        if missing:
            raise InputError(
                f"descriptor file lacks arrays {missing}",
                path=path,
                fix="recompute it with compute_descriptors and save_descriptors",
            )
        arrays = {name: data[name] for name in required}
    values, offsets = arrays["values"], arrays["offsets"]
    consistent = (
        values.ndim == 2
        and values.shape[1] == len(arrays["feature_names"])
        and len(arrays["species"]) == len(values)
        and len(offsets) == len(arrays["ids"]) + 1
        and offsets[0] == 0
        and offsets[-1] == len(values)
    )
    if not consistent:
        raise InputError(
            f"descriptor arrays have inconsistent shapes: values {values.shape}, species "
            f"{arrays['species'].shape}, offsets {offsets.shape}, ids {arrays['ids'].shape}, "
            f"feature_names {arrays['feature_names'].shape}",
            path=path,
            fix="recompute it with compute_descriptors and save_descriptors",
        )
    return DescriptorSet(
        values=values.astype(np.float64, copy=False),
        species=arrays["species"].astype(np.int64, copy=False),
        offsets=offsets.astype(np.int64, copy=False),
        ids=arrays["ids"],
        feature_names=[str(name) for name in arrays["feature_names"]],
    )
