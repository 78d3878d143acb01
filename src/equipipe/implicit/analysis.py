"""Gram matrix of the implicit layer's gradient features and linear-rate fits of training loss.

The Gram matrix here is ``H = J J^T``, with ``J`` the Jacobian of all ``N * C`` network
outputs (``N`` samples, ``C`` classes) with respect to the implicit weight ``A``: the
neural tangent kernel restricted to the implicit layer. For full-batch gradient descent
on ``0.5 * ||f - Y||^2 / N`` with learning rate ``eta`` in the linearised regime, the
residual evolves as ``r <- (I - eta H / N) r`` when only ``A`` is trained, so a positive
smallest eigenvalue of ``H`` means linear convergence.

The gradient of output ``(i, c)`` with respect to ``A`` is a rank-one matrix. With
``s = gamma / sqrt(m)``, ``D_i`` the ReLU derivative pattern of sample ``i`` and ``q_ic``
the adjoint fixed point ``q_ic = D_i (v_c / sqrt(m) + s q_ic A)``, it is
``s q_ic z_i^T``. Hence ``H[(i, c), (j, c')] = s^2 (q_ic . q_jc') (z_i . z_j)``, which
costs one batched adjoint solve instead of an ``(N C) x m^2`` Jacobian.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

from equipipe.implicit.model import IllPosedEquilibriumError, ImplicitReLUNetwork
from equipipe.implicit.solver import anderson_solve

logger = logging.getLogger(__name__)


@torch.no_grad()
def implicit_gram_matrix(model: ImplicitReLUNetwork, x: torch.Tensor) -> torch.Tensor:
    """Return the Gram matrix ``H = J J^T`` of the outputs' gradients with respect to ``A``.

    Parameters
    ----------
    model : ImplicitReLUNetwork
    x : Tensor of shape (N, d)

    Returns
    -------
    Tensor of shape (N * C, N * C)
        Row and column ``i * C + c`` belong to sample ``i`` and output ``c``.
    """
    n_samples, n_outputs, width = x.shape[0], model.out_features, model.width
    z = model.equilibrium(x).detach()  # (N, m)
    pre_activation = model.scale * z @ model.A.T + model.injection(x)
    active = (pre_activation > 0).to(z.dtype)  # (N, m)

    # One adjoint problem per (sample, output): q = D_i (v_c / sqrt(m) + s q A).
    active_rows = active.repeat_interleave(n_outputs, dim=0)  # (N C, m)
    readout_rows = (model.V.T / math.sqrt(width)).repeat(n_samples, 1)  # (N C, m)
    source = active_rows * readout_rows

    def adjoint(q: torch.Tensor) -> torch.Tensor:
        return active_rows * (readout_rows + model.scale * q @ model.A)

    result = anderson_solve(adjoint, source, model.solver)
    if not result.converged:
        raise IllPosedEquilibriumError(
            f"adjoint solve for the Gram matrix did not converge (relative residual "
            f"{result.residual:.3g} after {result.iterations} iterations); lower gamma"
        )
    q = result.z  # (N C, m)

    feature_products = q @ q.T  # (N C, N C)
    state_products = (z @ z.T).repeat_interleave(n_outputs, 0).repeat_interleave(n_outputs, 1)
    return model.scale**2 * feature_products * state_products


def smallest_eigenvalue(matrix: torch.Tensor) -> float:
    """Return the smallest eigenvalue of a symmetric matrix, computed in float64."""
    return float(torch.linalg.eigvalsh(matrix.double()).min())


@dataclass(frozen=True)
class LinearRateFit:
    """Least-squares line through ``log(loss)`` against iteration.

    Attributes
    ----------
    slope : float
        Change of the natural log of the loss per iteration (negative when it falls).
    intercept : float
        Natural log of the loss at iteration 0 on the fitted line.
    r_squared : float
        Coefficient of determination of the fit.
    first_iteration, last_iteration : int
        Range of iterations used (inclusive).
    """

    slope: float
    intercept: float
    r_squared: float
    first_iteration: int
    last_iteration: int


def fit_linear_rate(losses: np.ndarray, start_fraction: float = 0.5) -> LinearRateFit:
    """Fit a line to ``log(loss)`` over the last part of the iterations.

    Parameters
    ----------
    losses : array of shape (iterations,)
        Positive training losses, one per iteration.
    start_fraction : float, default 0.5
        Fraction of the iterations skipped before the fit starts; 0.5 fits the second
        half.

    Returns
    -------
    LinearRateFit

    Raises
    ------
    ValueError
        If fewer than three points remain or a loss is not positive and finite.
    """
    losses = np.asarray(losses, dtype=float)
    if losses.ndim != 1:
        raise ValueError(f"losses must be one-dimensional, got shape {losses.shape}")
    if not 0 <= start_fraction < 1:
        raise ValueError(f"start_fraction={start_fraction} must be in [0, 1)")
    first = int(math.floor(start_fraction * len(losses)))
    segment = losses[first:]
    if len(segment) < 3:
        raise ValueError(
            f"{len(segment)} losses after skipping {first}; need at least 3 for a line fit"
        )
    if not np.all(np.isfinite(segment) & (segment > 0)):
        raise ValueError("losses to fit must be positive and finite")
    iterations = np.arange(first, len(losses))
    fit = stats.linregress(iterations, np.log(segment))
    return LinearRateFit(
        slope=float(fit.slope),
        intercept=float(fit.intercept),
        r_squared=float(fit.rvalue**2),
        first_iteration=first,
        last_iteration=len(losses) - 1,
    )


def linearised_rate_bound(eigenvalue: float, learning_rate: float, n_samples: int) -> float:
    """Return ``2 log(1 - eta lambda / N)``, the log-loss slope of the slowest mode.

    In the linearised regime with only ``A`` trained and ``eta lambda_max(H) / N <= 1``,
    every eigencomponent of the residual shrinks by a factor of at most
    ``1 - eta lambda_min(H) / N`` per step, so the loss falls at least this fast. Returns NaN when ``eta lambda / N >= 1``, where the bound does not apply.
    """
    factor = 1.0 - learning_rate * eigenvalue / n_samples
    return 2.0 * math.log(factor) if factor > 0 else float("nan")
