"""Full-batch gradient descent of implicit ReLU networks on the square loss.

The loss is ``0.5 * ||f(X) - Y||_F^2 / N`` with one-hot targets ``Y`` of shape ``(N, C)``.
Two variants: ``all`` trains ``A``, ``U`` and ``V``; ``implicit`` trains only the implicit
weight ``A`` and keeps ``U`` and ``V`` at their initial values. Every step monitors
``gamma * ||A||_2 / sqrt(m)`` and stops with :class:`IllPosedEquilibriumError` once the
equilibrium is no longer well posed.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from equipipe.implicit.analysis import (
    fit_linear_rate,
    implicit_gram_matrix,
    linearised_rate_bound,
    smallest_eigenvalue,
)
from equipipe.implicit.model import IllPosedEquilibriumError, ImplicitReLUNetwork
from equipipe.implicit.solver import SolverConfig
from equipipe.logs import ProgressLogger

logger = logging.getLogger(__name__)

VARIANTS = ("all", "implicit")
DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass(frozen=True)
class TrainingConfig:
    """Settings of one training run.

    Parameters
    ----------
    variant : {"all", "implicit"}
        Train every layer, or only the implicit weight ``A``.
    width : int
        Width ``m`` of the implicit layer.
    gamma : float
        Scale of ``A`` in the layer map (dimensionless), fixed during training.
    learning_rate : float
        Gradient-descent step size.
    steps : int
        Number of gradient-descent updates.
    solver : SolverConfig
        Forward and adjoint solver settings.
    dtype : {"float32", "float64"}, default "float64"
    seed : int, default 0
        Seed of the initialisation.
    log_interval : float, default 10.0
        Minimum seconds between two progress lines.
    config_prefix : str, default "images.training"
        Config path named in error messages.
    """

    variant: str
    width: int
    gamma: float
    learning_rate: float
    steps: int
    solver: SolverConfig = field(default_factory=SolverConfig)
    dtype: str = "float64"
    seed: int = 0
    log_interval: float = 10.0
    config_prefix: str = "images.training"

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant={self.variant!r} must be one of {', '.join(VARIANTS)}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype={self.dtype!r} must be one of {', '.join(DTYPES)}")
        if self.width < 1:
            raise ValueError(f"width={self.width} must be a positive integer")
        if self.steps < 1:
            raise ValueError(f"steps={self.steps} must be a positive integer")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ValueError(f"learning_rate={self.learning_rate} must be a positive number")


@dataclass
class TrainingResult:
    """History and summary of one training run.

    Attributes
    ----------
    history : dict of str to list
        One entry per step ``t = 0..steps``: ``step``, ``loss`` (at the parameters after
        ``t`` updates), ``forward_iterations``, ``forward_residual``,
        ``backward_iterations`` (0 at the last step, which takes no update),
        ``spectral_norm`` (power-iteration estimate of ``gamma ||A||_2 / sqrt(m)``) and
        ``elapsed`` (seconds).
    metrics : dict
        Summary numbers: the rate fit, Gram eigenvalues, accuracies, exact spectral
        norms at start and end, timings.
    model : ImplicitReLUNetwork
        The trained network.
    """

    history: dict[str, list]
    metrics: dict
    model: ImplicitReLUNetwork


def center_inputs(
    x_train: np.ndarray, x_test: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Subtract the training set's mean image, then scale every row to norm ``sqrt(d)``.

    Images of one data set share a large common component (the mean image). Through
    the non-negative ReLU features it adds one large eigenvalue to the network's
    tangent kernel, which caps the stable learning rate while the other directions
    converge slowly. Removing the training mean (no test statistics are used) lowers
    that condition number; the rescaling keeps ``x . x / d = 1`` as the per-sample
    standardisation gives.

    Parameters
    ----------
    x_train : ndarray of shape (N, d)
    x_test : ndarray of shape (N_test, d)

    Returns
    -------
    x_train, x_test : ndarrays of the input shapes

    Raises
    ------
    ValueError
        If a centred row is zero (an image equal to the mean image).
    """
    mean_image = x_train.mean(axis=0, keepdims=True)  # (1, d)
    n_features = x_train.shape[1]
    rescaled = []
    for name, x in (("training", x_train), ("test", x_test)):
        centred = x - mean_image
        norms = np.linalg.norm(centred, axis=1, keepdims=True)  # (n, 1)
        if np.any(norms == 0):
            row = int(np.flatnonzero(norms[:, 0] == 0)[0])
            raise ValueError(
                f"{name} row {row} equals the training mean image, so it cannot be "
                "rescaled after centring; set images.training.center_inputs to false"
            )
        rescaled.append(centred * math.sqrt(n_features) / norms)
    return rescaled[0], rescaled[1]


def _none_if_nan(value: float) -> float | None:
    return None if math.isnan(value) else value


def one_hot(labels: torch.Tensor, n_classes: int, dtype: torch.dtype) -> torch.Tensor:
    """Return one-hot rows of shape (N, n_classes) for integer labels of shape (N,)."""
    return torch.nn.functional.one_hot(labels.long(), n_classes).to(dtype)


def _accuracy(model: ImplicitReLUNetwork, x: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        predicted = model(x).argmax(dim=1)
    return float((predicted == labels).to(torch.float64).mean())


def _gram_eigenvalue(model: ImplicitReLUNetwork, x: torch.Tensor) -> float:
    start = time.perf_counter()
    value = smallest_eigenvalue(implicit_gram_matrix(model, x))
    logger.info(
        "smallest eigenvalue of the implicit-layer Gram matrix: %.6g (%.1f s)",
        value, time.perf_counter() - start,
    )
    return value


def _with_context(
    error: Exception,
    step: int,
    config: TrainingConfig,
    history: dict[str, list],
    initial: dict[str, float],
) -> IllPosedEquilibriumError:
    """Return an error naming the step and config keys, carrying the results so far."""
    prefix = config.config_prefix
    wrapped = IllPosedEquilibriumError(
        f"training stopped at step {step} (variant {config.variant}, width {config.width}): "
        f"{error}. Current settings: {prefix}.gamma={config.gamma:g}, "
        f"{prefix}.learning_rate.{config.variant}={config.learning_rate:g}"
    )
    wrapped.step = step
    wrapped.history = history
    wrapped.initial_metrics = initial
    return wrapped


def train_implicit_network(
    x_train: torch.Tensor,
    labels_train: torch.Tensor,
    x_test: torch.Tensor,
    labels_test: torch.Tensor,
    n_classes: int,
    config: TrainingConfig,
    device: torch.device | str = "cpu",
) -> TrainingResult:
    """Train an implicit ReLU network by full-batch gradient descent.

    Parameters
    ----------
    x_train : Tensor of shape (N, d)
    labels_train : Tensor of shape (N,)
        Integer class labels in ``[0, n_classes)``.
    x_test : Tensor of shape (N_test, d)
    labels_test : Tensor of shape (N_test,)
    n_classes : int
        Number of outputs ``C``.
    config : TrainingConfig
    device : torch.device or str, default "cpu"

    Returns
    -------
    TrainingResult

    Raises
    ------
    IllPosedEquilibriumError
        If ``gamma ||A||_2 / sqrt(m)`` reaches 1 or a solve fails to converge; the
        message names the step and the config keys to lower. Its ``step`` attribute is
        that step, ``history`` contains the rows of the steps before it and
        ``initial_metrics`` the spectral norm and Gram eigenvalue at initialisation.
    FloatingPointError
        If the loss becomes NaN or infinite.
    """
    dtype = DTYPES[config.dtype]
    x_train = torch.as_tensor(x_train, dtype=dtype, device=device)
    x_test = torch.as_tensor(x_test, dtype=dtype, device=device)
    labels_train = torch.as_tensor(labels_train, device=device).long()
    labels_test = torch.as_tensor(labels_test, device=device).long()
    n_samples, n_features = x_train.shape
    if labels_train.shape != (n_samples,):
        raise ValueError(
            f"labels_train has shape {tuple(labels_train.shape)}, expected ({n_samples},)"
        )
    targets = one_hot(labels_train, n_classes, dtype)  # (N, C)

    model = ImplicitReLUNetwork(
        n_features, config.width, n_classes, config.gamma, config.solver,
        seed=config.seed, dtype=dtype, device=device,
    )
    trained = [model.A] if config.variant == "implicit" else [model.A, model.U, model.V]
    for parameter in model.parameters():
        parameter.requires_grad_(any(parameter is p for p in trained))

    initial_norm = model.check_well_posed()
    logger.info(
        "variant %s, width %d, N=%d, d=%d, C=%d: gamma ||A||_2 / sqrt(m) = %.4f at init",
        config.variant, config.width, n_samples, n_features, n_classes, initial_norm,
    )
    gram_initial = _gram_eigenvalue(model, x_train)
    initial = {"spectral_norm_initial": initial_norm, "gram_min_eigenvalue_initial": gram_initial}

    history: dict[str, list] = {
        key: []
        for key in (
            "step", "loss", "forward_iterations", "forward_residual",
            "backward_iterations", "spectral_norm", "elapsed",
        )
    }
    progress = ProgressLogger(logger, total=config.steps, interval=config.log_interval)
    start = time.perf_counter()
    z = None
    for step in range(config.steps + 1):
        # NOTE: power iteration gives a lower bound, so a norm just above 1 can pass this
        # check. The solver's convergence check and the exact norm at the end still apply.
        norm = model.spectral_norm(power_iterations=100 if step == 0 else 5)
        try:
            model.check_well_posed(norm)
            equilibrium = model.equilibrium(x_train, z0=z)  # (N, m)
        except IllPosedEquilibriumError as error:
            raise _with_context(error, step, config, history, initial) from error
        predictions = model.readout(equilibrium)  # (N, C)
        loss = 0.5 * ((predictions - targets) ** 2).sum() / n_samples
        loss_value = float(loss.detach())
        if not math.isfinite(loss_value):
            raise FloatingPointError(
                f"training loss became {loss_value} at step {step} (variant "
                f"{config.variant}, width {config.width}); lower "
                f"{config.config_prefix}.learning_rate.{config.variant} "
                f"(now {config.learning_rate:g})"
            )

        backward_iterations = 0
        if step < config.steps:
            try:
                loss.backward()
            except IllPosedEquilibriumError as error:
                raise _with_context(error, step, config, history, initial) from error
            backward_iterations = model.last_stats["backward"].iterations
            with torch.no_grad():
                for parameter in trained:
                    parameter -= config.learning_rate * parameter.grad
                    parameter.grad = None
        z = equilibrium.detach()

        forward = model.last_stats["forward"]
        elapsed = time.perf_counter() - start
        row = (step, loss_value, forward.iterations, forward.residual,
               backward_iterations, norm, elapsed)
        for key, value in zip(history, row, strict=True):
            history[key].append(value)
        progress.update(
            step,
            f"loss {loss_value:.4e}, solver iterations {forward.iterations} forward "
            f"{backward_iterations} backward, spectral norm {norm:.4f}",
            force=step in (0, config.steps),
        )
    train_time = time.perf_counter() - start

    final_norm = model.check_well_posed()
    gram_final = _gram_eigenvalue(model, x_train)
    losses = np.asarray(history["loss"])
    fit = fit_linear_rate(losses)
    metrics = {
        "variant": config.variant,
        "width": config.width,
        "n_train": n_samples,
        "n_test": int(x_test.shape[0]),
        "n_features": n_features,
        "n_classes": n_classes,
        "config": {**asdict(config), "solver": asdict(config.solver)},
        "loss_initial": float(losses[0]),
        "loss_final": float(losses[-1]),
        "loss_reduction_orders": float(np.log10(losses[0] / losses[-1])),
        "rate_slope": fit.slope,
        "rate_intercept": fit.intercept,
        "rate_r_squared": fit.r_squared,
        "rate_fit_first_step": fit.first_iteration,
        "gram_min_eigenvalue_initial": gram_initial,
        "gram_min_eigenvalue_final": gram_final,
        # None (JSON null) where the bound is undefined, because JSON has no NaN.
        "rate_bound_initial_gram": _none_if_nan(
            linearised_rate_bound(gram_initial, config.learning_rate, n_samples)
        ),
        "spectral_norm_initial": initial_norm,
        "spectral_norm_final": final_norm,
        "spectral_norm_max_monitored": float(max(history["spectral_norm"])),
        "train_accuracy": _accuracy(model, x_train, labels_train),
        "test_accuracy": _accuracy(model, x_test, labels_test),
        "forward_iterations_mean": float(np.mean(history["forward_iterations"])),
        "backward_iterations_mean": float(np.mean(history["backward_iterations"][:-1])),
        "train_seconds": train_time,
        "seconds_per_step": train_time / config.steps,
    }
    logger.info(
        "variant %s, width %d: loss %.3e -> %.3e (%.2f orders), log-loss slope %.4g per "
        "step (R^2 %.4f), test accuracy %.4f, %.1f s",
        config.variant, config.width, metrics["loss_initial"], metrics["loss_final"],
        metrics["loss_reduction_orders"], fit.slope, fit.r_squared,
        metrics["test_accuracy"], train_time,
    )
    return TrainingResult(history=history, metrics=metrics, model=model)
