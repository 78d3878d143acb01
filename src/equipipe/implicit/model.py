"""Implicit (deep-equilibrium) ReLU network with an exact implicit-function-theorem gradient.

The network maps inputs ``x`` of dimension ``d`` to ``C`` outputs through the
equilibrium ``z`` of one implicit layer of width ``m``::

    z = ReLU(gamma * A z / sqrt(m) + U x / sqrt(d))        z, A z in R^m
    prediction = V^T z / sqrt(m)                           in R^C

with ``A`` of shape ``(m, m)``, ``U`` of shape ``(m, d)`` and ``V`` of shape ``(m, C)``,
all entries drawn from the standard normal distribution at initialisation, and ``gamma``
a fixed scalar. ReLU is 1-Lipschitz, so the map is a contraction and the equilibrium is
unique whenever ``gamma * ||A||_2 / sqrt(m) < 1`` (spectral norm). Gradient descent on
such over-parameterised implicit ReLU networks is analysed by T. Gao, H. Liu, J. Liu,
H. Rajan and H. Gao, "A global convergence theory for deep ReLU implicit networks via
over-parameterization", ICLR 2022 (arXiv:2110.05645).

The forward pass solves the equilibrium with Anderson acceleration and keeps no graph of
the iterations. The backward pass differentiates the equilibrium by the implicit function
theorem. Let ``D = diag(ReLU'(pre-activation))``, so ``J = D gamma A / sqrt(m)`` is the
Jacobian of the layer map at ``z``. The gradient of a loss ``L`` needs the adjoint
``s = (I - J)^{-T} dL/dz``. It is found as the fixed point
``q = D (dL/dz + gamma q A / sqrt(m))`` with ``q = D s``. Then
``dL/dA = gamma q^T z / sqrt(m)`` and ``dL/d(U x / sqrt(d)) = q``.
"""

from __future__ import annotations

import logging
import math

import torch
from torch import nn

from equipipe.implicit.solver import SolverConfig, SolverResult, anderson_solve

logger = logging.getLogger(__name__)


class IllPosedEquilibriumError(RuntimeError):
    """The implicit layer's equilibrium is not (or no longer) well posed."""


_ILL_POSED_FIX = (
    "lower gamma, or the learning rate if this happened during training, so that "
    "gamma * ||A||_2 / sqrt(m) stays below 1"
)


class _ImplicitReLUEquilibrium(torch.autograd.Function):
    """Equilibrium ``z = ReLU(scale * z A^T + injection)`` with the implicit backward pass."""

    @staticmethod
    def forward(ctx, injection, weight, scale, solver, z0, stats):
        # injection: (batch, m); weight: (m, m); z0: (batch, m)
        def layer(z: torch.Tensor) -> torch.Tensor:
            return torch.relu(scale * z @ weight.T + injection)

        result = anderson_solve(layer, z0, solver)
        stats["forward"] = result
        if not result.converged:
            raise IllPosedEquilibriumError(
                f"forward fixed-point solve did not converge: relative residual "
                f"{result.residual:.3g} > tol={solver.tol:g} after {result.iterations} "
                f"iterations (max_iter={solver.max_iter}); the equilibrium is not well "
                f"posed or the solver needs more iterations. Fix: {_ILL_POSED_FIX}, or "
                "raise the solver's max_iter"
            )
        z = result.z
        active = (scale * z @ weight.T + injection > 0).to(z.dtype)  # (batch, m), D as a mask
        ctx.save_for_backward(z, weight, active)
        ctx.scale = scale
        ctx.solver = solver
        ctx.stats = stats
        return z

    @staticmethod
    def backward(ctx, grad_z):
        z, weight, active = ctx.saved_tensors
        scale = ctx.scale
        grad_z = grad_z.contiguous()

        # Adjoint fixed point q = D (g + scale q A); it contracts like the forward map.
        def adjoint(q: torch.Tensor) -> torch.Tensor:
            return active * (grad_z + scale * q @ weight)

        result = anderson_solve(adjoint, active * grad_z, ctx.solver)
        ctx.stats["backward"] = result
        if not result.converged:
            raise IllPosedEquilibriumError(
                f"adjoint (backward) fixed-point solve did not converge: relative residual "
                f"{result.residual:.3g} > tol={ctx.solver.tol:g} after {result.iterations} "
                f"iterations. Fix: {_ILL_POSED_FIX}, or raise the solver's max_iter"
            )
        q = result.z  # (batch, m)
        grad_injection = q
        grad_weight = scale * q.T @ z  # (m, m)
        return grad_injection, grad_weight, None, None, None, None


class ImplicitReLUNetwork(nn.Module):
    """One implicit ReLU layer of width ``m`` followed by a linear read-out.

    Parameters
    ----------
    in_features : int
        Input dimension ``d``.
    width : int
        Width ``m`` of the implicit layer.
    out_features : int
        Number of outputs ``C`` (one per class).
    gamma : float
        Fixed scale of the implicit weight; the equilibrium is well posed while
        ``gamma * ||A||_2 / sqrt(m) < 1``. A standard normal ``A`` has
        ``||A||_2 / sqrt(m)`` close to 2 for large ``m``, so ``gamma < 0.5`` is needed.
    solver : SolverConfig
        Tolerance and iteration limit of the forward and adjoint solves.
    seed : int, default 0
        Seed of the standard normal initialisation.
    dtype : torch.dtype, default torch.float64
    device : torch.device or str, default "cpu"

    Attributes
    ----------
    last_stats : dict
        ``"forward"`` and, after a backward pass, ``"backward"``: the
        :class:`SolverResult` of the latest solves.
    """

    def __init__(
        self,
        in_features: int,
        width: int,
        out_features: int,
        gamma: float,
        solver: SolverConfig = SolverConfig(),
        *,
        seed: int = 0,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_features", in_features),
            ("width", width),
            ("out_features", out_features),
        ):
            if int(value) != value or value < 1:
                raise ValueError(f"{name}={value} must be a positive integer")
        if not (gamma > 0 and math.isfinite(gamma)):
            raise ValueError(f"gamma={gamma} must be a positive number")
        self.in_features = int(in_features)
        self.width = int(width)
        self.out_features = int(out_features)
        self.gamma = float(gamma)
        self.solver = solver

        generator = torch.Generator().manual_seed(seed)
        shapes = {"A": (width, width), "U": (width, in_features), "V": (width, out_features)}
        for name, shape in shapes.items():
            values = torch.randn(*shape, generator=generator, dtype=dtype)
            setattr(self, name, nn.Parameter(values.to(device)))
        self.last_stats: dict[str, SolverResult] = {}
        self._power_vector: torch.Tensor | None = None

    @property
    def scale(self) -> float:
        """Factor ``gamma / sqrt(m)`` in front of ``A`` in the layer map."""
        return self.gamma / math.sqrt(self.width)

    def injection(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``U x / sqrt(d)`` for a batch ``x`` of shape (batch, d) as (batch, m)."""
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"input must have shape (batch, {self.in_features}), got {tuple(x.shape)}"
            )
        return x @ self.U.T / math.sqrt(self.in_features)

    def equilibrium(self, x: torch.Tensor, z0: torch.Tensor | None = None) -> torch.Tensor:
        """Solve for the equilibrium ``z`` of a batch, differentiable by the IFT.

        Parameters
        ----------
        x : Tensor of shape (batch, d)
        z0 : Tensor of shape (batch, m), optional
            Warm start (for example the previous equilibrium of the same batch); zeros
            when omitted.

        Returns
        -------
        Tensor of shape (batch, m)

        Raises
        ------
        IllPosedEquilibriumError
            If the forward (or later the adjoint) solve does not reach the tolerance.
        """
        injection = self.injection(x)  # (batch, m)
        if z0 is None:
            z0 = torch.zeros_like(injection)
        return _ImplicitReLUEquilibrium.apply(
            injection, self.A, self.scale, self.solver, z0.detach(), self.last_stats
        )

    def readout(self, z: torch.Tensor) -> torch.Tensor:
        """Return the predictions ``z V / sqrt(m)`` of shape (batch, C)."""
        return z @ self.V / math.sqrt(self.width)

    def forward(self, x: torch.Tensor, z0: torch.Tensor | None = None) -> torch.Tensor:
        """Return the predictions of shape (batch, C) for inputs of shape (batch, d)."""
        return self.readout(self.equilibrium(x, z0))

    @torch.no_grad()
    def spectral_norm(self, exact: bool = False, power_iterations: int = 5) -> float:
        """Return ``gamma * ||A||_2 / sqrt(m)``, the Lipschitz bound of the layer map.

        Parameters
        ----------
        exact : bool, default False
            Compute the largest singular value with ``torch.linalg.matrix_norm``. Else
            run ``power_iterations`` steps of power iteration on ``A^T A``, warm-started
            from the previous call's vector. The power estimate is a lower bound that
            tightens over successive calls, which suits monitoring during training
            where ``A`` changes a little per step.
        power_iterations : int, default 5
        """
        if exact:
            return self.scale * float(torch.linalg.matrix_norm(self.A, ord=2))
        vector = self._power_vector
        if vector is None or vector.shape[0] != self.width:
            generator = torch.Generator().manual_seed(12345)
            vector = torch.randn(self.width, generator=generator, dtype=self.A.dtype)
            vector = vector.to(self.A.device)
        for _ in range(power_iterations):
            vector = self.A.T @ (self.A @ vector)
            vector = vector / vector.norm()
        self._power_vector = vector
        return self.scale * float((self.A @ vector).norm())

    def check_well_posed(self, norm: float | None = None) -> float:
        """Raise :class:`IllPosedEquilibriumError` if ``gamma ||A||_2 / sqrt(m) >= 1``.

        Returns the norm that was checked (``norm`` when given, else the exact one).
        """
        if norm is None:
            norm = self.spectral_norm(exact=True)
        if not norm < 1.0:
            raise IllPosedEquilibriumError(
                f"the equilibrium is not well posed: gamma * ||A||_2 / sqrt(m) = {norm:.4f} "
                f">= 1 (gamma={self.gamma:g}, m={self.width}), so the layer map is no longer "
                f"a contraction. Fix: {_ILL_POSED_FIX}"
            )
        return norm
