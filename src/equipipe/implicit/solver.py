"""Fixed-point solver with Anderson acceleration, batched over samples.

The solver finds ``z = f(z)`` for a batch of independent fixed-point problems stored as
the rows of one tensor of shape ``(batch, features)``. Every row gets its own Anderson
mixing coefficients (type-II Anderson acceleration, as in H. Walker and P. Ni, "Anderson
acceleration for fixed-point iterations", SIAM J. Numer. Anal. 49, 2011), so a row that
converges fast is not slowed down by the others. The same solver serves the forward
equilibrium of an implicit layer and the adjoint linear system of its backward pass.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SolverConfig:
    """Settings of the Anderson fixed-point solver.

    Parameters
    ----------
    tol : float, default 1e-6
        Stop when the relative residual ``max_i ||f(z_i) - z_i|| / ||f(z_i)||`` over the
        rows ``i`` of the batch falls below ``tol`` (dimensionless).
    max_iter : int, default 200
        Maximum number of evaluations of ``f`` before the solve counts as failed.
    memory : int, default 5
        Number of past iterates mixed by Anderson acceleration; 1 is plain fixed-point
        iteration with damping ``beta``.
    regularization : float, default 1e-10
        Tikhonov term added to the Gram matrix of past residuals, relative to its
        largest diagonal entry, so the mixing weights stay finite when residuals are
        nearly collinear.
    beta : float, default 1.0
        Damping: the new iterate is ``beta * mixed f-values + (1 - beta) * mixed
        iterates``. 1.0 is undamped.
    """

    tol: float = 1e-6
    max_iter: int = 200
    memory: int = 5
    regularization: float = 1e-10
    beta: float = 1.0

    def __post_init__(self) -> None:
        if not (self.tol > 0 and math.isfinite(self.tol)):
            raise ValueError(f"solver tol={self.tol} must be a positive number")
        if self.max_iter < 1:
            raise ValueError(f"solver max_iter={self.max_iter} must be at least 1")
        if self.memory < 1:
            raise ValueError(f"solver memory={self.memory} must be at least 1")
        if self.regularization < 0:
            raise ValueError(f"solver regularization={self.regularization} must be >= 0")
        if not 0 < self.beta <= 1:
            raise ValueError(f"solver beta={self.beta} must be in (0, 1]")


@dataclass
class SolverResult:
    """Outcome of one fixed-point solve.

    Attributes
    ----------
    z : Tensor of shape (batch, features)
        ``f`` applied to the last iterate ``x``, so for a ReLU layer it keeps the sign
        pattern of a layer output. For a contraction with Lipschitz constant ``L`` it
        is at least as close to the fixed point as ``x``.
    iterations : int
        Number of evaluations of ``f``.
    residual : float
        Relative residual of the last iterate: ``max_i ||f(x_i) - x_i|| / ||f(x_i)||``.
    converged : bool
        Whether ``residual <= tol`` was reached within ``max_iter`` evaluations.
    """

    z: torch.Tensor
    iterations: int
    residual: float
    converged: bool


def _relative_residual(fz: torch.Tensor, z: torch.Tensor) -> float:
    """Return ``max_i ||fz_i - z_i|| / ||fz_i||``; a row with ``fz_i = 0`` counts absolutely."""
    if fz.numel() == 0:
        return 0.0
    difference = torch.linalg.vector_norm(fz - z, dim=1)  # (batch,)
    size = torch.linalg.vector_norm(fz, dim=1)
    relative = torch.where(size > 0, difference / torch.where(size > 0, size, 1.0), difference)
    return float(relative.max())


def anderson_solve(
    f: Callable[[torch.Tensor], torch.Tensor],
    z0: torch.Tensor,
    config: SolverConfig = SolverConfig(),
) -> SolverResult:
    """Solve ``z = f(z)`` row by row with Anderson acceleration.

    Parameters
    ----------
    f : callable
        Map from a tensor of shape ``(batch, features)`` to one of the same shape. Row
        ``i`` of the output may depend only on row ``i`` of the input.
    z0 : Tensor of shape (batch, features)
        Starting point (for example the previous solution, as a warm start).
    config : SolverConfig
        Tolerance, iteration limit, memory, regularization and damping.

    Returns
    -------
    SolverResult
        The last iterate with its relative residual, the number of ``f`` evaluations and
        whether the tolerance was reached. The caller decides what a failure means.
    """
    if z0.ndim != 2:
        raise ValueError(f"z0 must have shape (batch, features), got {tuple(z0.shape)}")
    batch, features = z0.shape
    memory = config.memory

    # History of iterates x_k, their images f(x_k) and residuals f(x_k) - x_k, as
    # ring buffers.
    x_history = z0.new_zeros(batch, memory, features)  # (batch, memory, features)
    f_history = z0.new_zeros(batch, memory, features)
    g_history = z0.new_zeros(batch, memory, features)

    z = z0
    fz = f(z)
    iterations = 1
    residual = _relative_residual(fz, z)
    if not math.isfinite(residual) or residual <= config.tol:
        return SolverResult(fz, iterations, residual, residual <= config.tol)
    x_history[:, 0] = z
    f_history[:, 0] = fz
    g_history[:, 0] = fz - z

    eye = torch.eye(memory, dtype=z.dtype, device=z.device)
    for k in range(1, config.max_iter):
        stored = min(k, memory)
        g = g_history[:, :stored]  # (batch, stored, features)

        # Weights alpha minimise ||sum_j alpha_j g_j|| subject to sum_j alpha_j = 1:
        # solve (G G^T + lambda I) w = 1, then alpha = w / sum(w).
        gram = torch.bmm(g, g.transpose(1, 2))  # (batch, stored, stored)
        # A row whose stored residuals are all zero has converged exactly, and any
        # weights do; scale 1 keeps its system regular.
        scale = gram.diagonal(dim1=1, dim2=2).amax(dim=1)
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        gram = gram + (config.regularization * scale)[:, None, None] * eye[:stored, :stored]
        ones = z.new_ones(batch, stored, 1)
        weights = torch.linalg.solve(gram, ones)  # (batch, stored, 1)
        alpha = weights / weights.sum(dim=1, keepdim=True)

        # Where round-off made the mixing weights useless, fall back to a plain step.
        usable = torch.isfinite(alpha).all(dim=1, keepdim=True)
        if not bool(usable.all()):
            latest = torch.zeros_like(alpha)
            latest[:, (k - 1) % memory] = 1.0
            alpha = torch.where(usable, alpha, latest)

        alpha_row = alpha.transpose(1, 2)  # (batch, 1, stored)
        z = torch.bmm(alpha_row, f_history[:, :stored])[:, 0]  # (batch, features)
        if config.beta < 1.0:
            mixed_x = torch.bmm(alpha_row, x_history[:, :stored])[:, 0]
            z = config.beta * z + (1.0 - config.beta) * mixed_x

        fz = f(z)
        iterations += 1
        residual = _relative_residual(fz, z)
        if not math.isfinite(residual) or residual <= config.tol:
            return SolverResult(fz, iterations, residual, residual <= config.tol)

        slot = k % memory
        x_history[:, slot] = z
        f_history[:, slot] = fz
        g_history[:, slot] = fz - z

    return SolverResult(fz, iterations, residual, False)
    if residual <= config.tol:
        return SolverResult(fz, iterations, residual, True)
    x_history[:, 0] = z
    f_history[:, 0] = fz

    for k in range(1, config.max_iter):
        stored = min(k, memory)
        g = f_history[:, :stored] - x_history[:, :stored]  # (batch, stored, features)

        # Weights alpha minimise ||sum_j alpha_j g_j|| subject to sum_j alpha_j = 1:
        # solve (G G^T + lambda I) w = 1, then alpha = w / sum(w).
        gram = g @ g.transpose(1, 2)  # (batch, stored, stored)
        # A row whose stored residuals are all zero has converged exactly, and any
        # weights do; scale 1 keeps its system regular.
        scale = gram.diagonal(dim1=1, dim2=2).amax(dim=1)
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        eye = torch.eye(stored, dtype=z.dtype, device=z.device)
        gram = gram + (config.regularization * scale)[:, None, None] * eye
        ones = z.new_ones(batch, stored, 1)
        weights = torch.linalg.solve(gram, ones)[..., 0]  # (batch, stored)
        alpha = weights / weights.sum(dim=1, keepdim=True)

        # Where round-off made the mixing weights useless, fall back to a plain step.
        latest = torch.zeros_like(alpha)
        latest[:, (k - 1) % memory] = 1.0
        usable = torch.isfinite(alpha).all(dim=1, keepdim=True)
        alpha = torch.where(usable, alpha, latest)

        mixed_f = (alpha[:, :, None] * f_history[:, :stored]).sum(dim=1)  # (batch, features)
        if config.beta < 1.0:
            mixed_x = (alpha[:, :, None] * x_history[:, :stored]).sum(dim=1)
            z = config.beta * mixed_f + (1.0 - config.beta) * mixed_x
        else:
            z = mixed_f

        fz = f(z)
        iterations += 1
        residual = _relative_residual(fz, z)
        if not math.isfinite(residual):
            return SolverResult(fz, iterations, residual, False)
        if residual <= config.tol:
            return SolverResult(fz, iterations, residual, True)

        slot = k % memory
        x_history[:, slot] = z
        f_history[:, slot] = fz

    return SolverResult(fz, iterations, residual, False)
