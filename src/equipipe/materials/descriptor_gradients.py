"""Symmetry functions with their analytic derivatives with respect to the bond vectors.

Training a potential on forces by autograd through `descriptors.symmetry_functions`
differentiates every triplet term twice in every step, which costs minutes per epoch
on a few thousand atoms. Since the training positions never change, this module
computes, once, the features ``G`` and for every directed pair ``p = (i, j)`` of the
neighbour list the derivative ``dG_i / dv_p`` of the centre atom's features with
respect to the bond vector ``v_p = r_j - r_i + shift``. The forces then follow from
the chain rule at the cost of one small tensor contraction per step (the approach
of n2p2 and other Behler-Parrinello codes, which also store these derivatives):

    dE/dv_p = sum_f dE/dG_{i f} * dG_{i f}/dv_p,   F_i += dE/dv_p,   F_j -= dE/dv_p.

The formulas are those of `descriptors.symmetry_functions` (same cutoff function,
feature order, G4/G5 normalisation and unordered neighbour pairs), differentiated by
hand. Tests compare the values and derivatives with that module and its autograd.
"""

from __future__ import annotations

import itertools
import math

import torch

from equipipe.materials.descriptors import StructureGraph, SymmetryFunctionSet

# Triplets handled at once; each needs about 0.5 KB of temporaries per angular function.
TRIPLET_CHUNK = 200_000


def _cutoff_and_derivative(distances: torch.Tensor, cutoff: float) -> tuple[torch.Tensor, torch.Tensor]:
    inside = distances < cutoff
    angle = distances * (math.pi / cutoff)
    value = torch.where(inside, 0.5 * (torch.cos(angle) + 1.0), torch.zeros_like(distances))
    slope = torch.where(inside, -0.5 * (math.pi / cutoff) * torch.sin(angle), torch.zeros_like(distances))
    return value, slope


def symmetry_functions_with_gradients(
    sf: SymmetryFunctionSet, positions: torch.Tensor, graph: StructureGraph
) -> tuple[torch.Tensor, torch.Tensor]:
    """Compute the symmetry functions and their derivatives with respect to bond vectors.

    Parameters
    ----------
    sf : SymmetryFunctionSet
        Function parameters.
    positions : Tensor of shape (n_atoms, 3)
        Cartesian positions in Å; the results take its dtype and device. No
        autograd graph is recorded.
    graph : StructureGraph
        Pairs and triplets built with ``elements = sf.elements`` and
        ``cutoff >= sf.cutoff``.

    Returns
    -------
    features : Tensor of shape (n_atoms, n_features)
        Equal to ``descriptors.symmetry_functions(sf, positions, graph)``.
    gradients : Tensor of shape (n_pairs, n_features, 3)
        ``gradients[p]`` is the derivative of the features of atom ``graph.pair_i[p]``
        with respect to the bond vector of pair ``p``, in Å^-1.
    """
    with torch.no_grad():
        return _compute(sf, positions, graph)


def _compute(sf: SymmetryFunctionSet, positions: torch.Tensor, graph: StructureGraph):
    dtype, device = positions.dtype, positions.device
    n_atoms, n_pairs = positions.shape[0], graph.n_pairs
    n_elements = len(sf.elements)

    # Bond vectors, distances, unit vectors and cutoff function of every pair.
    pair_i, pair_j = graph.pair_i, graph.pair_j
    vectors = positions[pair_j] - positions[pair_i] + graph.pair_shift.to(dtype=dtype, device=device)
    distances = torch.linalg.vector_norm(vectors, dim=1)  # (n_pairs,)
    units = vectors / distances[:, None]  # (n_pairs, 3)
    fc, fc_slope = _cutoff_and_derivative(distances, sf.cutoff)

    # Radial G2 and its derivative d/dv = (d/dr) * unit vector.
    g2 = torch.tensor(sf.g2_parameters, dtype=dtype, device=device)  # (n_g2, 2)
    eta, shift = g2[:, 0], g2[:, 1]
    offset = distances[:, None] - shift  # (n_pairs, n_g2)
    gauss = torch.exp(-eta * offset**2)
    terms = gauss * fc[:, None]
    slopes = gauss * (fc_slope[:, None] - 2.0 * eta * offset * fc[:, None])  # d term / dr
    n_g2 = g2.shape[0]
    rows = pair_i * n_elements + graph.species[pair_j]
    radial = torch.zeros(n_atoms * n_elements, n_g2, dtype=dtype, device=device).index_add_(0, rows, terms)
    radial = radial.reshape(n_atoms, n_elements * n_g2)
    radial_gradient = torch.zeros(n_pairs, n_elements, n_g2, 3, dtype=dtype, device=device)
    radial_gradient[torch.arange(n_pairs, device=device), graph.species[pair_j]] = slopes[:, :, None] * units[:, None, :]
    radial_gradient = radial_gradient.reshape(n_pairs, n_elements * n_g2, 3)
    if not sf.angular_parameters:
        return radial, radial_gradient

    angular, angular_gradient = _angular(sf, graph, vectors, distances, fc, fc_slope, n_atoms)
    return torch.cat([radial, angular], dim=1), torch.cat([radial_gradient, angular_gradient], dim=1)


def _angular(sf, graph, vectors, distances, fc, fc_slope, n_atoms):
    """Return G4/G5 of every atom and their derivatives per pair, in triplet chunks."""
    dtype, device = vectors.dtype, vectors.device
    n_pairs = vectors.shape[0]
    n_elements = len(sf.elements)
    n_blocks = n_elements * (n_elements + 1) // 2
    etas = torch.tensor(sf.g4_etas, dtype=dtype, device=device)  # (n_eta,)
    zeta_lambda = torch.tensor(list(itertools.product(sf.g4_zetas, sf.g4_lambdas)), dtype=dtype, device=device)
    zetas, lambdas = zeta_lambda[:, 0], zeta_lambda[:, 1]  # (n_zl,)
    n_angular = len(etas) * len(zetas)

    block_table = torch.empty(n_elements, n_elements, dtype=torch.long)
    for block, (a, b) in enumerate(itertools.combinations_with_replacement(range(n_elements), 2)):
        block_table[a, b] = block_table[b, a] = block
    block_table = block_table.to(device)

    values = torch.zeros(n_atoms * n_blocks, n_angular, dtype=dtype, device=device)
    gradient = torch.zeros(n_pairs * n_blocks, n_angular * 3, dtype=dtype, device=device)
    for start in range(0, graph.n_triplets, TRIPLET_CHUNK):
        first = graph.triplet_a[start : start + TRIPLET_CHUNK]
        second = graph.triplet_b[start : start + TRIPLET_CHUNK]
        if sf.angular == "g4":
            # fc(r_jk) = 0 beyond the cutoff, so those G4 terms and gradients vanish.
            inside = torch.linalg.vector_norm(vectors[second] - vectors[first], dim=1) < sf.cutoff
            first, second = first[inside], second[inside]
        x, y = vectors[first], vectors[second]  # (n_t, 3) bonds i->j and i->k
        r1, r2 = distances[first], distances[second]
        fc1, fc2 = fc[first], fc[second]
        inverse_r1r2 = 1.0 / (r1 * r2)
        cos = (x * y).sum(dim=1) * inverse_r1r2  # (n_t,)

        # Every derivative with respect to x or y is a combination a * x + b * y. So
        # the derivatives of cos, of the cutoff product C and of the Gaussian
        # argument S are kept as coefficient pairs (x part, y part).
        cos_x = (-cos / r1**2, inverse_r1r2)  # d cos / dx
        cos_y = (inverse_r1r2, -cos / r2**2)  # d cos / dy
        cutoff_product = fc1 * fc2
        C_x = [fc_slope[first] * fc2 / r1, torch.zeros_like(r1)]
        C_y = [torch.zeros_like(r1), fc1 * fc_slope[second] / r2]
        squared_sum = r1**2 + r2**2
        S_x, S_y = (2.0, 0.0), (0.0, 2.0)
        if sf.angular == "g4":
            r3 = torch.linalg.vector_norm(y - x, dim=1)
            fc3, fc3_slope = _cutoff_and_derivative(r3, sf.cutoff)
            # r3 = |y - x|: dr3/dx = (x - y) / r3 and dr3/dy = (y - x) / r3.
            slope3 = cutoff_product * fc3_slope / r3
            C_x = [C_x[0] * fc3 + slope3, C_x[1] * fc3 - slope3]
            C_y = [C_y[0] * fc3 - slope3, C_y[1] * fc3 + slope3]
            cutoff_product = cutoff_product * fc3
            squared_sum = squared_sum + r3**2
            S_x, S_y = (4.0, -2.0), (-2.0, 4.0)

        # term = A(cos) * R(S) * C with A = 2^(1-zeta) (1 + lambda cos)^zeta, R = exp(-eta S).
        base = (1.0 + lambdas * cos[:, None]).clamp(min=0.0)  # (n_t, n_zl)
        prefactor = 2.0 ** (1.0 - zetas)
        A = prefactor * base**zetas
        dA_dcos = prefactor * zetas * lambdas * base ** (zetas - 1.0)
        R = torch.exp(-etas * squared_sum[:, None])  # (n_t, n_eta)
        terms = ((R * cutoff_product[:, None])[:, :, None] * A[:, None, :]).reshape(len(first), n_angular)

        def coefficient(cos_part, S_part, C_part):
            # d term = R [C (dA/dcos dcos - eta A dS) + A dC], one vector component.
            inner = cutoff_product[:, None, None] * (
                dA_dcos[:, None, :] * cos_part[:, None, None] - S_part * etas[None, :, None] * A[:, None, :]
            ) + A[:, None, :] * C_part[:, None, None]  # (n_t, n_eta, n_zl)
            return (R[:, :, None] * inner).reshape(len(first), n_angular)

        def term_gradient(cos_d, S_d, C_d):
            along_x = coefficient(cos_d[0], S_d[0], C_d[0])  # (n_t, n_angular)
            along_y = coefficient(cos_d[1], S_d[1], C_d[1])
            gradient_t = along_x[:, :, None] * x[:, None, :]
            gradient_t += along_y[:, :, None] * y[:, None, :]
            return gradient_t.reshape(len(first), n_angular * 3)

        species_j = graph.species[graph.pair_j[first]]
        species_k = graph.species[graph.pair_j[second]]
        block = block_table[species_j, species_k]
        centres = graph.pair_i[first]
        values.index_add_(0, centres * n_blocks + block, terms)
        gradient.index_add_(0, first * n_blocks + block, term_gradient(cos_x, S_x, C_x))
        gradient.index_add_(0, second * n_blocks + block, term_gradient(cos_y, S_y, C_y))

    values = values.reshape(n_atoms, n_blocks * n_angular)
    gradient = gradient.reshape(n_pairs, n_blocks * n_angular, 3)
    return values, gradient


def forces_from_gradients(
    energy_gradient: torch.Tensor,
    feature_gradients: torch.Tensor,
    pair_i: torch.Tensor,
    pair_j: torch.Tensor,
) -> torch.Tensor:
    """Apply the chain rule from feature gradients to forces.

    Parameters
    ----------
    energy_gradient : Tensor of shape (n_atoms, n_features)
        dE/dG for every atom, in eV per feature unit.
    feature_gradients : Tensor of shape (n_pairs, n_features, 3)
        From `symmetry_functions_with_gradients`.
    pair_i, pair_j : Tensor of shape (n_pairs,)
        Centre and neighbour atom of each pair.

    Returns
    -------
    Tensor of shape (n_atoms, 3)
        Forces ``-dE/dr`` in eV/Å; differentiable in ``energy_gradient``.
    """
    bond_gradient = torch.einsum("pf,pfc->pc", energy_gradient[pair_i], feature_gradients)  # (n_pairs, 3)
    forces = torch.zeros(energy_gradient.shape[0], 3, dtype=bond_gradient.dtype, device=bond_gradient.device)
    return forces.index_add(0, pair_i, bond_gradient).index_add(0, pair_j, -bond_gradient)
