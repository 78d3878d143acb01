"""Gaussian-process (NNGP) kernel of a deep equilibrium model in the infinite-width limit.

Model, for an input x of dimension d and width m, with the entries of W (m, m),
U (m, d) and v (m,) drawn i.i.d. standard normal::

    z = phi(h),  h = sigma_w * W z / sqrt(m) + sigma_u * U x / sqrt(d),  f(x) = v . z / sqrt(m)

The fixed point z is reached by the iteration z^(0) = 0, z^(l+1) = phi(h^(l)). As
m -> infinity the pre-activations h^(l) become a Gaussian process with covariance
Sigma^(l), where Sigma^(0)(x, x') = sigma_u^2 x . x' / d and

    Sigma^(l+1)(x, x') = sigma_w^2 E[phi(a) phi(b)] + sigma_u^2 x . x' / d,
    (a, b) ~ N(0, [[Sigma^(l)(x, x), Sigma^(l)(x, x')], [Sigma^(l)(x, x'), Sigma^(l)(x', x')]]).

This module iterates that recursion to its fixed point Sigma* and returns both
Sigma* (the covariance of the pre-activations) and the kernel of the outputs,
K*(x, x') = E[phi(a) phi(b)] under Sigma*, which is the covariance of f(x) and
f(x'). The expectation has closed forms: for ReLU the arc-cosine kernel of order 1
(Y. Cho and L. K. Saul, "Kernel methods for deep learning", NIPS 2009), for erf the
kernel of C. K. I. Williams, "Computing with infinite networks", NIPS 9 (1997).

Existence of the fixed point: the diagonal obeys q <- sigma_w^2 E[phi(sqrt(q) g)^2] +
sigma_u^2 |x|^2 / d. For ReLU, E[relu(sqrt(q) g)^2] = q / 2, so a finite fixed point
exists if and only if sigma_w^2 < 2, and the recursion then contracts with factor
sigma_w^2 / 2. For erf the expectation is bounded by 1, so a fixed point exists for
every sigma_w.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.linalg
import scipy.special
import scipy.stats
import torch

from equipipe.errors import ConfigError

logger = logging.getLogger(__name__)

ACTIVATIONS = ("relu", "erf")
Activation = Literal["relu", "erf"]

# Largest sigma_w for which the ReLU recursion has a finite fixed point (exclusive).
RELU_MAX_SIGMA_W = math.sqrt(2.0)


# --------------------------------------------------------------------------- closed forms


def expected_product(
    phi: Activation, var_a: np.ndarray, var_b: np.ndarray, cov_ab: np.ndarray
) -> np.ndarray:
    """Compute E[phi(a) phi(b)] for (a, b) ~ N(0, [[var_a, cov_ab], [cov_ab, var_b]]) in closed form.

    This is the dual activation of ``phi``. The arguments broadcast against each other.

    ReLU (arc-cosine kernel of order 1, Cho and Saul 2009), with
    theta = arccos(cov_ab / sqrt(var_a var_b))::

        sqrt(var_a var_b) / (2 pi) * (sin(theta) + (pi - theta) cos(theta))

    erf (Williams 1996)::

        2 / pi * arcsin(2 cov_ab / sqrt((1 + 2 var_a) (1 + 2 var_b)))

    Parameters
    ----------
    phi : {"relu", "erf"}
    var_a, var_b : array_like
        Variances, >= 0.
    cov_ab : array_like
        Covariance, with |cov_ab| <= sqrt(var_a var_b).

    Returns
    -------
    ndarray
        The expectation, broadcast shape of the inputs.
    """
    _check_activation(phi)
    var_a = np.asarray(var_a, dtype=np.float64)
    var_b = np.asarray(var_b, dtype=np.float64)
    cov_ab = np.asarray(cov_ab, dtype=np.float64)
    if phi == "relu":
        scale = np.sqrt(var_a * var_b)
        # A zero variance makes the product zero; the ratio there is set to 0 to avoid 0/0.
        correlation = np.divide(
            cov_ab, scale, out=np.zeros(np.broadcast(cov_ab, scale).shape), where=scale > 0
        )
        correlation = np.clip(correlation, -1.0, 1.0)
        theta = np.arccos(correlation)
        return (
            scale / (2.0 * np.pi) * (np.sqrt(1.0 - correlation**2) + (np.pi - theta) * correlation)
        )
    ratio = 2.0 * cov_ab / np.sqrt((1.0 + 2.0 * var_a) * (1.0 + 2.0 * var_b))
    return 2.0 / np.pi * np.arcsin(np.clip(ratio, -1.0, 1.0))


def _expected_square(phi: Activation, variance: np.ndarray) -> np.ndarray:
    """E[phi(a)^2] for a ~ N(0, variance); the diagonal case of :func:`expected_product`."""
    if phi == "relu":
        return variance / 2.0
    return 2.0 / np.pi * np.arcsin(2.0 * variance / (1.0 + 2.0 * variance))


def monte_carlo_expected_product(
    phi: Activation,
    var_a: float,
    var_b: float,
    cov_ab: float,
    n_samples: int = 1_000_000,
    seed: int = 0,
) -> tuple[float, float]:
    """Estimate E[phi(a) phi(b)] by sampling, as an independent check of the closed forms.

    Returns
    -------
    mean : float
        Sample mean of phi(a) phi(b).
    standard_error : float
        Sample standard deviation of phi(a) phi(b) divided by sqrt(n_samples).
    """
    _check_activation(phi)
    rng = np.random.default_rng(seed)
    covariance = np.array([[var_a, cov_ab], [cov_ab, var_b]], dtype=np.float64)
    samples = rng.multivariate_normal(np.zeros(2), covariance, size=n_samples, method="eigh")
    products = _phi_numpy(phi, samples[:, 0]) * _phi_numpy(phi, samples[:, 1])
    return float(products.mean()), float(products.std(ddof=1) / math.sqrt(n_samples))


def _phi_numpy(phi: Activation, values: np.ndarray) -> np.ndarray:
    if phi == "relu":
        return np.maximum(values, 0.0)
    return scipy.special.erf(values)


def _phi_torch(phi: Activation, values: torch.Tensor) -> torch.Tensor:
    return torch.relu(values) if phi == "relu" else torch.erf(values)


# --------------------------------------------------------------------------- validation


def _check_activation(phi: str) -> None:
    if phi not in ACTIVATIONS:
        raise ConfigError(
            f"phi={phi!r} is not one of {', '.join(ACTIVATIONS)}",
            field="phi",
            fix="set the activation to relu or erf",
        )


def check_fixed_point_exists(phi: Activation, sigma_w: float, sigma_u: float) -> None:
    """Raise ConfigError unless the kernel recursion has a finite, nonzero fixed point.

    ReLU needs 0 <= sigma_w < sqrt(2); erf needs sigma_w >= 0. Both need sigma_u > 0,
    because with sigma_u = 0 the input never enters and the fixed point is zero.
    """
    _check_activation(phi)
    if not (math.isfinite(sigma_w) and sigma_w >= 0.0):
        raise ConfigError(
            f"sigma_w={sigma_w} must be a finite number >= 0",
            field="sigma_w",
            fix="set sigma_w to a value such as 1.0",
        )
    if not (math.isfinite(sigma_u) and sigma_u > 0.0):
        raise ConfigError(
            f"sigma_u={sigma_u} must be a finite number > 0, else the input never enters",
            field="sigma_u",
            fix="set sigma_u to a positive value such as 1.0",
        )
    if phi == "relu" and sigma_w >= RELU_MAX_SIGMA_W:
        raise ConfigError(
            f"sigma_w={sigma_w} gives no finite fixed point for ReLU: the variance grows by "
            f"sigma_w^2 / 2 = {sigma_w**2 / 2:.3g} >= 1 per iteration",
            field="sigma_w",
            fix=f"choose sigma_w < sqrt(2) = {RELU_MAX_SIGMA_W:.4f} for ReLU",
        )


def _check_inputs(X: np.ndarray, name: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} has shape {X.shape}; expected a non-empty (n_samples, d) array")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} contains NaN or infinite values; clean the inputs first")
    return X


# --------------------------------------------------------------------------- kernel recursion


@dataclass
class NNGPKernel:
    """Fixed point of the DEQ kernel recursion.

    Attributes
    ----------
    output : ndarray of shape (n, p)
        K*(x, x') = E[phi(a) phi(b)] under Sigma*: covariance of the outputs
        f(x) = v . z / sqrt(m). This is the kernel for GP regression.
    pre_activation : ndarray of shape (n, p)
        Sigma*(x, x') = sigma_w^2 K*(x, x') + sigma_u^2 x . x' / d.
    iterations : int
        Recursion steps taken until the update fell below the tolerance (the larger of
        the two stages for :func:`deq_nngp_kernel`).
    residual : float
        Largest change in the last step: of a correlation for :func:`deq_nngp_kernel`, of
        Sigma for the joint recursion.
    """

    output: np.ndarray
    pre_activation: np.ndarray
    iterations: int
    residual: float


def _not_converged(
    phi: str, sigma_w: float, sigma_u: float, tol: float, max_iter: int, residual: float
) -> ConfigError:
    return ConfigError(
        f"kernel recursion for phi={phi}, sigma_w={sigma_w}, sigma_u={sigma_u} did not reach "
        f"the tolerance {tol:g} in {max_iter} iterations (last change {residual:.3g})",
        field="max_iter",
        fix="increase max_iter, loosen tol, or lower sigma_w (ReLU contracts by sigma_w^2 / 2 per step)",
    )


def _joint_recursion(
    X: np.ndarray,
    sigma_w: float,
    sigma_u: float,
    phi: Activation,
    tol: float,
    max_iter: int,
    callback=None,
) -> NNGPKernel:
    """Iterate the full (n, n) matrix Sigma^(l) from Sigma^(0) = sigma_u^2 X X^T / d.

    Every step updates the variances and the covariances together, exactly as the
    width-m iteration z^(l+1) = phi(h^(l)) does in the limit. ``callback(step,
    expectation, sigma)`` receives E[phi phi] under Sigma^(step) and Sigma^(step). Stops when
    the largest change of Sigma is at most ``tol`` times the largest variance.
    """
    d = X.shape[1]
    input_cross = sigma_u**2 * (X @ X.T) / d  # (n, n)
    sigma = input_cross.copy()
    residual = math.inf
    for step in range(max_iter):
        variance = np.diagonal(sigma).copy()
        expectation = expected_product(phi, variance[:, None], variance[None, :], sigma)  # (n, n)
        if callback is not None:
            callback(step, expectation, sigma)
        new_sigma = sigma_w**2 * expectation + input_cross
        residual = float(np.abs(new_sigma - sigma).max())
        sigma = new_sigma
        if residual <= tol * float(np.diagonal(sigma).max()):
            variance = np.diagonal(sigma).copy()
            output = expected_product(phi, variance[:, None], variance[None, :], sigma)
            return NNGPKernel(
                output=0.5 * (output + output.T),
                pre_activation=0.5 * (sigma + sigma.T),
                iterations=step + 1,
                residual=residual,
            )
    raise _not_converged(phi, sigma_w, sigma_u, tol, max_iter, residual)


def _variance_fixed_point(
    input_variance: np.ndarray,
    sigma_w: float,
    sigma_u: float,
    phi: Activation,
    tol: float,
    max_iter: int,
) -> tuple[np.ndarray, int]:
    """Iterate the diagonal q <- sigma_w^2 E[phi(a)^2] + sigma_u^2 |x|^2 / d alone; it does not
    depend on the covariances."""
    variance = input_variance.copy()
    residual = math.inf
    for step in range(max_iter):
        new_variance = sigma_w**2 * _expected_square(phi, variance) + input_variance
        residual = float(np.abs(new_variance - variance).max())
        variance = new_variance
        if residual <= tol * float(variance.max()):
            return variance, step + 1
    raise _not_converged(phi, sigma_w, sigma_u, tol, max_iter, residual)


def _correlation_fixed_point(
    input_cross: np.ndarray,
    variance_a: np.ndarray,
    variance_b: np.ndarray,
    sigma_w: float,
    sigma_u: float,
    phi: Activation,
    tol: float,
    max_iter: int,
) -> tuple[np.ndarray, int, float]:
    """Iterate the covariances with the variances held at their fixed point.

    All arguments are flat arrays of the same length, one entry per pair (x, x'). The
    map is elementwise, so each pair converges to the same fixed point as in the joint
    recursion. It is iterated in normalised form, which needs one inverse trigonometric
    function per entry and step:

    ReLU, in correlations rho = Sigma / sqrt(q q')::

        rho <- sigma_w^2 / (2 pi) (sqrt(1 - rho^2) + (pi - arccos rho) rho) + c / sqrt(q q')

    erf, in t = Sigma * B with B = 2 / sqrt((1 + 2q)(1 + 2q'))::

        t <- sigma_w^2 (2 / pi) B arcsin(t) + c B

    Stops when the largest change of the correlation Sigma / sqrt(q q') is at most ``tol``.
    Returns Sigma*, the number of steps and the last change.
    """
    scale = np.sqrt(variance_a * variance_b)  # sqrt(q q'), > 0 because sigma_u > 0 and x != 0
    if phi == "relu":
        offset = input_cross / scale
        value = offset.copy()
        to_correlation = None
    else:
        factor = 2.0 / np.sqrt((1.0 + 2.0 * variance_a) * (1.0 + 2.0 * variance_b))
        offset = input_cross * factor
        value = offset.copy()
        gain = (sigma_w**2 * 2.0 / np.pi) * factor
        to_correlation = 1.0 / (factor * scale)

    residual = math.inf
    for step in range(max_iter):
        np.clip(value, -1.0, 1.0, out=value)
        if phi == "relu":
            new_value = np.arccos(value)
            np.subtract(np.pi, new_value, out=new_value)
            new_value *= value
            new_value += np.sqrt(1.0 - value * value)
            new_value *= sigma_w**2 / (2.0 * np.pi)
            new_value += offset
            change = np.abs(new_value - value)
        else:
            new_value = np.arcsin(value)
            new_value *= gain
            new_value += offset
            change = np.abs(new_value - value)
            change *= to_correlation
        residual = float(change.max())
        value = new_value
        if residual <= tol:
            break
    else:
        raise _not_converged(phi, sigma_w, sigma_u, tol, max_iter, residual)

    sigma = value * scale if phi == "relu" else value / factor
    return sigma, step + 1, residual


def _fixed_point(
    X: np.ndarray,
    X2: np.ndarray | None,
    sigma_w: float,
    sigma_u: float,
    phi: Activation,
    tol: float,
    max_iter: int,
) -> NNGPKernel:
    """Solve the recursion in two stages: the variances, then every covariance pair.

    With X2 None only the upper triangle of the symmetric (n, n) matrix is iterated.
    """
    d = X.shape[1]
    symmetric = X2 is None
    X2_ = X if symmetric else X2
    input_variance = sigma_u**2 * np.einsum("ij,ij->i", X, X) / d  # (n,)
    input_variance2 = (
        input_variance if symmetric else sigma_u**2 * np.einsum("ij,ij->i", X2_, X2_) / d
    )
    if input_variance.min() <= 0 or input_variance2.min() <= 0:
        raise ValueError(
            "an input row is all zeros; the kernel needs nonzero inputs (check the preprocessing)"
        )
    variance, steps_a = _variance_fixed_point(input_variance, sigma_w, sigma_u, phi, tol, max_iter)
    variance2, steps_b = (
        (variance, steps_a)
        if symmetric
        else _variance_fixed_point(input_variance2, sigma_w, sigma_u, phi, tol, max_iter)
    )

    n, p = len(X), len(X2_)
    if symmetric:
        rows, cols = np.triu_indices(n)
    else:
        rows, cols = np.divmod(np.arange(n * p), p)
    input_cross = (sigma_u**2 * (X @ X2_.T) / d)[rows, cols]  # (pairs,)
    sigma_flat, steps, residual = _correlation_fixed_point(
        input_cross, variance[rows], variance2[cols], sigma_w, sigma_u, phi, tol, max_iter
    )
    output_flat = expected_product(phi, variance[rows], variance2[cols], sigma_flat)

    sigma = np.empty((n, p))
    output = np.empty((n, p))
    sigma[rows, cols] = sigma_flat
    output[rows, cols] = output_flat
    if symmetric:
        sigma[cols, rows] = sigma_flat
        output[cols, rows] = output_flat
    return NNGPKernel(
        output=output,
        pre_activation=sigma,
        iterations=max(steps, steps_a, steps_b),
        residual=residual,
    )


def deq_nngp_kernel(
    X: np.ndarray,
    X2: np.ndarray | None = None,
    *,
    sigma_w: float = 1.0,
    sigma_u: float = 1.0,
    phi: Activation = "relu",
    tol: float = 1e-10,
    max_iter: int = 10_000,
) -> NNGPKernel:
    """Compute the DEQ NNGP kernel between the rows of X and X2 at the recursion's fixed point.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Inputs, one per row (for example standardised images with x . x / d = 1).
    X2 : ndarray of shape (p, d), optional
        Second set of inputs; the kernel of X with itself (n, n) when omitted.
    sigma_w : float, default 1.0
        Scale of the implicit weights W. ReLU needs sigma_w < sqrt(2).
    sigma_u : float, default 1.0
        Scale of the input weights U, > 0.
    phi : {"relu", "erf"}, default "relu"
    tol : float, default 1e-10
        The variances are iterated first, until their largest change in one step is at
        most ``tol`` times the largest variance. The covariances are then iterated with
        the variances fixed, until the largest change of a correlation
        Sigma(x, x') / sqrt(Sigma(x, x) Sigma(x', x')) is at most ``tol``. Both stages
        converge to the fixed point of the joint recursion, which is elementwise.
    max_iter : int, default 10000
        Limit on the steps of each stage.

    Returns
    -------
    NNGPKernel
        ``output`` (the GP kernel of f) and ``pre_activation`` of shape (n, p), with the
        iteration count.

    Raises
    ------
    ConfigError
        If the fixed point does not exist for ``phi`` and ``sigma_w``, or the recursion
        does not converge within ``max_iter`` steps.

    Notes
    -----
    Peak memory is about six float64 arrays of n * p entries: 148 MiB for the 1,797
    digits against themselves (measured with ``tracemalloc``), so 10,000 inputs need
    about 5 GiB.
    """
    check_fixed_point_exists(phi, sigma_w, sigma_u)
    X = _check_inputs(X, "X")
    if X2 is not None:
        X2 = _check_inputs(X2, "X2")
        if X2.shape[1] != X.shape[1]:
            raise ValueError(
                f"X has {X.shape[1]} features but X2 has {X2.shape[1]}; they must match"
            )
    if not (tol > 0 and max_iter >= 1):
        raise ValueError(f"tol={tol} must be > 0 and max_iter={max_iter} must be >= 1")
    result = _fixed_point(X, X2, sigma_w, sigma_u, phi, tol, max_iter)
    logger.debug(
        "NNGP kernel %s, phi=%s, sigma_w=%g, sigma_u=%g: %d iterations",
        result.output.shape,
        phi,
        sigma_w,
        sigma_u,
        result.iterations,
    )
    return result


def smallest_eigenvalue(matrix: np.ndarray) -> float:
    """Return the smallest eigenvalue of a symmetric matrix (LAPACK, float64)."""
    return float(scipy.linalg.eigvalsh(matrix, subset_by_index=[0, 0])[0])


def kernel_eigen_history(
    X: np.ndarray,
    sigma_w: float = 1.0,
    sigma_u: float = 1.0,
    phi: Activation = "relu",
    *,
    kernel: Literal["output", "pre_activation"] = "output",
    tol: float = 1e-10,
    max_iter: int = 10_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Track the smallest eigenvalue of the kernel matrix along the recursion.

    Parameters
    ----------
    X : ndarray of shape (n, d)
    sigma_w, sigma_u, phi, tol, max_iter
        As in :func:`deq_nngp_kernel`.
    kernel : {"output", "pre_activation"}, default "output"
        ``output``: K^(l) = E[phi phi] under Sigma^(l), the covariance of v . z^(l+1) / sqrt(m).
        ``pre_activation``: Sigma^(l) itself; at l = 0 it is sigma_u^2 X X^T / d, singular
        when n > d.

    Returns
    -------
    iterations : ndarray of shape (L,), int
        0, 1, ..., L - 1.
    smallest : ndarray of shape (L,)
        Smallest eigenvalue of the (n, n) kernel matrix at each iteration.

    Notes
    -----
    Each iteration costs one symmetric eigenvalue solve, O(n^3).
    """
    if kernel not in ("output", "pre_activation"):
        raise ValueError(f"kernel={kernel!r} must be 'output' or 'pre_activation'")
    check_fixed_point_exists(phi, sigma_w, sigma_u)
    X = _check_inputs(X, "X")
    history: list[float] = []

    def record(step: int, expectation: np.ndarray, sigma: np.ndarray) -> None:
        matrix = expectation if kernel == "output" else sigma
        history.append(smallest_eigenvalue(0.5 * (matrix + matrix.T)))

    _joint_recursion(X, sigma_w, sigma_u, phi, tol, max_iter, callback=record)
    return np.arange(len(history)), np.array(history)


def smallest_eigenvalue_vs_sigma_w(
    X: np.ndarray,
    sigma_ws: np.ndarray | list[float],
    sigma_u: float = 1.0,
    phi: Activation = "relu",
    *,
    kernel: Literal["output", "pre_activation"] = "output",
    tol: float = 1e-10,
    max_iter: int = 10_000,
) -> np.ndarray:
    """Return the smallest eigenvalue of the fixed-point kernel matrix for each sigma_w.

    Returns
    -------
    ndarray of shape (len(sigma_ws),)
    """
    X = _check_inputs(X, "X")
    values = []
    for sigma_w in sigma_ws:
        result = deq_nngp_kernel(
            X, sigma_w=float(sigma_w), sigma_u=sigma_u, phi=phi, tol=tol, max_iter=max_iter
        )
        matrix = result.output if kernel == "output" else result.pre_activation
        values.append(smallest_eigenvalue(matrix))
        logger.info(
            "phi=%s sigma_w=%g: smallest eigenvalue %.4g after %d iterations",
            phi,
            sigma_w,
            values[-1],
            result.iterations,
        )
    return np.array(values)


# --------------------------------------------------------------------------- GP regression


def nngp_regression(
    K_train: np.ndarray, K_test_train: np.ndarray, Y_train: np.ndarray, ridge: float = 1e-6
) -> np.ndarray:
    """Predict with kernel ridge regression (the GP posterior mean) under the NNGP kernel.

    predictions = K_test_train (K_train + ridge * mean(diag K_train) * I)^(-1) Y_train,
    solved by Cholesky (``scipy.linalg.solve(assume_a="pos")``).

    Parameters
    ----------
    K_train : ndarray of shape (n_train, n_train)
        Kernel among training inputs, symmetric positive semi-definite.
    K_test_train : ndarray of shape (n_test, n_train)
    Y_train : ndarray of shape (n_train, n_outputs) or (n_train,)
        Targets, for classification the one-hot labels.
    ridge : float, default 1e-6
        Ridge relative to the mean diagonal of K_train (the GP noise variance in units
        of the prior variance), >= 0.

    Returns
    -------
    ndarray of shape (n_test, n_outputs) or (n_test,)
    """
    K_train = np.asarray(K_train, dtype=np.float64)
    K_test_train = np.asarray(K_test_train, dtype=np.float64)
    Y_train = np.asarray(Y_train, dtype=np.float64)
    n_train = K_train.shape[0]
    if K_train.shape != (n_train, n_train):
        raise ValueError(f"K_train has shape {K_train.shape}; expected a square matrix")
    if K_test_train.ndim != 2 or K_test_train.shape[1] != n_train:
        raise ValueError(
            f"K_test_train has shape {K_test_train.shape}; expected (n_test, {n_train})"
        )
    if Y_train.shape[0] != n_train:
        raise ValueError(f"Y_train has {Y_train.shape[0]} rows but K_train has {n_train}")
    if not ridge >= 0:
        raise ValueError(f"ridge={ridge} must be >= 0")

    regularised = K_train + ridge * float(np.mean(np.diag(K_train))) * np.eye(n_train)
    try:
        weights = scipy.linalg.solve(regularised, Y_train, assume_a="pos")
    except np.linalg.LinAlgError as error:
        raise ConfigError(
            f"the kernel matrix plus ridge={ridge:g} is not positive definite ({error})",
            field="ridge",
            fix="increase the ridge",
        ) from error
    return K_test_train @ weights


def classification_accuracy(
    predictions: np.ndarray, y_true: np.ndarray, classes: np.ndarray
) -> float:
    """Return the fraction of rows whose largest score is the column of the true label.

    ``predictions`` has shape (n, n_classes); column k scores ``classes[k]``.
    """
    predicted = np.asarray(classes)[np.argmax(predictions, axis=1)]
    return float(np.mean(predicted == np.asarray(y_true)))


# --------------------------------------------------------------------------- finite width


@dataclass
class FiniteWidthCovariance:
    """Empirical output covariance of random finite-width DEQs, per width.

    Attributes
    ----------
    widths : ndarray of shape (n_widths,)
    covariances : ndarray of shape (n_widths, n, n)
        Average over networks of z(x) . z(x') / m, which is E_v[f(x) f(x')] given W and
        U: the output covariance with v integrated out exactly.
    sampled_covariances : ndarray of shape (n_widths, n, n)
        Average over networks of f(x) f(x') with one draw of v per network.
    errors, sampled_errors : ndarray of shape (n_widths,)
        Relative Frobenius error of ``covariances`` and ``sampled_covariances`` against
        ``kernel``.
    iterations : ndarray of shape (n_widths,), int
        Largest number of fixed-point iterations over the networks of each width.
    outputs : ndarray of shape (n_networks, n)
        f(x) of every network at the widest width, for normality tests.
    kernel : ndarray of shape (n, n)
        Infinite-width output kernel K*.
    """

    widths: np.ndarray
    covariances: np.ndarray
    sampled_covariances: np.ndarray
    errors: np.ndarray
    sampled_errors: np.ndarray
    iterations: np.ndarray
    outputs: np.ndarray
    kernel: np.ndarray


def relative_frobenius_error(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Return ||estimate - reference||_F / ||reference||_F."""
    return float(np.linalg.norm(estimate - reference) / np.linalg.norm(reference))


def _solve_random_deqs(
    X: torch.Tensor,
    width: int,
    n_networks: int,
    sigma_w: float,
    sigma_u: float,
    phi: Activation,
    generator: torch.Generator,
    tol: float,
    max_iter: int,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Draw ``n_networks`` DEQs of one width and solve their fixed points on X (n, d).

    Returns the summed feature kernels sum_nets z^T z / m (n, n), the outputs (n_networks, n)
    and the largest iteration count.
    """
    n, d = X.shape
    # Networks are drawn in chunks so that the weight tensor stays under about 128 MiB.
    chunk = max(1, min(n_networks, (16 * 1024 * 1024) // (width * width)))
    feature_sum = torch.zeros(n, n, dtype=X.dtype, device=X.device)
    outputs = []
    max_steps = 0
    for start in range(0, n_networks, chunk):
        b = min(chunk, n_networks - start)
        W = torch.randn(b, width, width, generator=generator, dtype=X.dtype, device=X.device)
        U = torch.randn(b, width, d, generator=generator, dtype=X.dtype, device=X.device)
        v = torch.randn(b, width, generator=generator, dtype=X.dtype, device=X.device)

        injection = sigma_u * (U @ X.T) / math.sqrt(d)  # (b, m, n)
        W = W * (sigma_w / math.sqrt(width))
        z = torch.zeros_like(injection)  # (b, m, n)
        for step in range(1, max_iter + 1):
            z_next = _phi_torch(phi, W @ z + injection)
            change = torch.linalg.vector_norm(z_next - z, dim=(1, 2))  # (b,)
            size = torch.linalg.vector_norm(z_next, dim=(1, 2)).clamp_min(1e-300)
            z = z_next
            if bool((change <= tol * size).all()):
                break
        else:
            worst = float((change / size).max())
            raise ConfigError(
                f"fixed-point iteration of a width-{width} DEQ (phi={phi}, sigma_w={sigma_w}) "
                f"did not converge in {max_iter} iterations (relative change {worst:.3g})",
                field="sigma_w",
                fix="lower sigma_w (for example to 0.5) or raise max_iter; the iteration is "
                "a contraction when sigma_w * ||W||_2 / sqrt(m), about 2 sigma_w, times the "
                "Lipschitz constant of phi (1 for ReLU, 1.13 for erf) is below 1",
            )
        max_steps = max(max_steps, step)

        feature_sum += torch.einsum("bmi,bmj->ij", z, z) / width
        outputs.append(torch.einsum("bm,bmi->bi", v, z) / math.sqrt(width))  # (b, n)
    return feature_sum, torch.cat(outputs), max_steps


def finite_width_covariance(
    X: np.ndarray,
    widths: list[int] | np.ndarray,
    n_networks: int = 100,
    sigma_w: float = 1.0,
    sigma_u: float = 1.0,
    phi: Activation = "relu",
    seed: int = 0,
    *,
    tol: float = 1e-8,
    max_iter: int = 2_000,
    device: str | torch.device = "cpu",
    kernel: np.ndarray | None = None,
) -> FiniteWidthCovariance:
    """Estimate the output covariance of random finite-width DEQs and compare it with K*.

    For every width m, ``n_networks`` DEQs with fresh standard-normal W, U and v are
    solved on the rows of X by fixed-point iteration from z = 0 (float64, batched over
    networks in torch). Their covariance estimate is the average of z(x) . z(x') / m,
    which equals the output covariance E_v[f(x) f(x')] of each network exactly, so its
    error against the kernel shrinks with width (about m^(-1/2)) even for a fixed number
    of networks. The covariance of the sampled outputs f = v . z / sqrt(m) is returned
    as well; its error levels off at the Monte-Carlo error of about sqrt(2 / n_networks).

    Parameters
    ----------
    X : ndarray of shape (n, d)
        A few inputs (the cost grows as n_networks * m^2 * n per iteration).
    widths : list of int
        Widths m, each >= 1.
    n_networks : int, default 100
        Networks per width; >= 20 for the normality tests.
    sigma_w, sigma_u, phi
        As in :func:`deq_nngp_kernel`.
    seed : int, default 0
    tol : float, default 1e-8
        Stop when ||z^(l+1) - z^(l)||_F <= tol ||z^(l+1)||_F for every network.
    max_iter : int, default 2000
    device : str or torch.device, default "cpu"
    kernel : ndarray of shape (n, n), optional
        The output kernel K* of X, computed with :func:`deq_nngp_kernel` when omitted.

    Returns
    -------
    FiniteWidthCovariance

    Raises
    ------
    ConfigError
        If the kernel's fixed point does not exist or a network's iteration does not converge.
    """
    check_fixed_point_exists(phi, sigma_w, sigma_u)
    X = _check_inputs(X, "X")
    widths = np.asarray(widths, dtype=np.int64)
    if widths.ndim != 1 or widths.size == 0 or widths.min() < 1:
        raise ValueError(f"widths={widths.tolist()} must be a non-empty list of positive integers")
    if n_networks < 2:
        raise ValueError(f"n_networks={n_networks} must be at least 2")
    if kernel is None:
        kernel = deq_nngp_kernel(X, sigma_w=sigma_w, sigma_u=sigma_u, phi=phi).output
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.shape != (len(X), len(X)):
        raise ValueError(f"kernel has shape {kernel.shape}; expected ({len(X)}, {len(X)})")

    generator = torch.Generator(device=device).manual_seed(seed)
    X_torch = torch.as_tensor(X, dtype=torch.float64, device=device)
    covariances, sampled, iterations = [], [], []
    outputs = None
    for width in widths:
        feature_sum, outputs_torch, steps = _solve_random_deqs(
            X_torch, int(width), n_networks, sigma_w, sigma_u, phi, generator, tol, max_iter
        )
        outputs = outputs_torch.cpu().numpy()
        covariances.append(feature_sum.cpu().numpy() / n_networks)
        sampled.append(outputs.T @ outputs / n_networks)
        iterations.append(steps)
        logger.info(
            "width %d: %d networks, <= %d iterations, relative error %.4g",
            width,
            n_networks,
            steps,
            relative_frobenius_error(covariances[-1], kernel),
        )

    return FiniteWidthCovariance(
        widths=widths,
        covariances=np.array(covariances),
        sampled_covariances=np.array(sampled),
        errors=np.array([relative_frobenius_error(c, kernel) for c in covariances]),
        sampled_errors=np.array([relative_frobenius_error(c, kernel) for c in sampled]),
        iterations=np.array(iterations),
        outputs=outputs,
        kernel=kernel,
    )


def loglog_fit(widths: np.ndarray, errors: np.ndarray) -> tuple[float, float]:
    """Fit log(error) = slope * log(width) + intercept by least squares; return (slope, intercept)."""
    widths = np.asarray(widths, dtype=np.float64)
    errors = np.asarray(errors, dtype=np.float64)
    if widths.shape != errors.shape or widths.size < 2:
        raise ValueError(
            f"need matching arrays of at least two points; got {widths.shape} and {errors.shape}"
        )
    if np.any(widths <= 0) or np.any(errors <= 0):
        raise ValueError("widths and errors must be positive for a log-log fit")
    slope, intercept = np.polyfit(np.log(widths), np.log(errors), 1)
    return float(slope), float(intercept)


def loglog_slope(widths: np.ndarray, errors: np.ndarray) -> float:
    """Return the slope of log(error) against log(width); about -1/2 for the DEQ covariance."""
    return loglog_fit(widths, errors)[0]


def output_normality(
    outputs: np.ndarray, variances: np.ndarray | None = None
) -> list[dict[str, float]]:
    """Test the outputs of random networks for normality, one input at a time.

    Parameters
    ----------
    outputs : ndarray of shape (n_networks, n)
        f(x_j) of each network for each input j.
    variances : ndarray of shape (n,), optional
        Variance used to standardise column j (for example diag K*); the sample
        variance when omitted. Standardising does not change either test's result, it
        only puts the outputs on the N(0, 1) scale for plots.

    Returns
    -------
    list of dict
        Per input: ``input``, ``normaltest_statistic``, ``normaltest_p_value``
        (D'Agostino and Pearson, ``scipy.stats.normaltest``), ``shapiro_statistic``,
        ``shapiro_p_value`` (Shapiro-Wilk) and the ``standardised_variance`` that should
        be near 1 when ``variances`` is the kernel's diagonal.
    """
    outputs = np.asarray(outputs, dtype=np.float64)
    if outputs.ndim != 2 or outputs.shape[0] < 20:
        raise ValueError(
            f"outputs have shape {outputs.shape}; the normality tests need (n_networks >= 20, n_inputs)"
        )
    scale = (
        np.sqrt(np.asarray(variances, dtype=np.float64))
        if variances is not None
        else outputs.std(axis=0, ddof=1)
    )
    standardised = outputs / scale
    results = []
    for column in range(outputs.shape[1]):
        values = standardised[:, column]
        normal = scipy.stats.normaltest(values)
        shapiro = scipy.stats.shapiro(values)
        results.append(
            {
                "input": column,
                "normaltest_statistic": float(normal.statistic),
                "normaltest_p_value": float(normal.pvalue),
                "shapiro_statistic": float(shapiro.statistic),
                "shapiro_p_value": float(shapiro.pvalue),
                "standardised_variance": float(values.var(ddof=1)),
            }
        )
    return results


# --------------------------------------------------------------------------- Monte-Carlo reference


def _sampled_expectation(phi: Activation, sigma: np.ndarray, G: np.ndarray) -> np.ndarray:
    """Estimate E[phi(h) phi(h)^T] for h ~ N(0, sigma) from the standard-normal rows of G.

    h = G S with S the symmetric positive semi-definite square root of sigma. S is a
    continuous function of sigma, unlike a factor built from eigenvectors whose signs can
    flip between steps, so the sampled recursion is a continuous map and can converge.
    """
    eigenvalues, eigenvectors = np.linalg.eigh(sigma)
    root = (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T  # (n, n)
    activations = _phi_numpy(phi, G @ root)  # (n_samples, n)
    return activations.T @ activations / len(G)


def monte_carlo_nngp_kernel(
    X: np.ndarray,
    sigma_w: float = 1.0,
    sigma_u: float = 1.0,
    phi: Activation = "relu",
    *,
    n_samples: int = 20_000,
    seed: int = 0,
    tol: float = 1e-8,
    max_iter: int = 10_000,
) -> NNGPKernel:
    """Iterate the same recursion with E[phi(a) phi(b)] estimated by sampling.

    At each step h ~ N(0, Sigma) is drawn as G Sigma^(1/2) with one fixed standard-normal
    matrix G of shape (n_samples, n), so the sampled map is deterministic and has a
    fixed point of its own. Its deviation from the closed form is of order
    n_samples^(-1/2). A reference for the closed forms, not for production use: each
    step costs O(n_samples n^2 + n^3).
    """
    check_fixed_point_exists(phi, sigma_w, sigma_u)
    X = _check_inputs(X, "X")
    n, d = X.shape
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((n_samples, n))
    input_cross = sigma_u**2 * (X @ X.T) / d
    sigma = input_cross.copy()
    residual = math.inf
    for step in range(max_iter):
        new_sigma = sigma_w**2 * _sampled_expectation(phi, sigma, G) + input_cross
        residual = float(np.abs(new_sigma - sigma).max())
        sigma = new_sigma
        if residual <= tol * float(np.diag(sigma).max()):
            output = _sampled_expectation(phi, sigma, G)
            return NNGPKernel(
                output=output, pre_activation=sigma, iterations=step + 1, residual=residual
            )
    raise ConfigError(
        f"Monte-Carlo kernel recursion did not converge in {max_iter} iterations "
        f"(last change {residual:.3g})",
        field="max_iter",
        fix="increase max_iter or loosen tol",
    )
