"""Tests of the implicit ReLU network: solver, IFT gradient, Gram matrix, training."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from equipipe.implicit.analysis import (
    fit_linear_rate,
    implicit_gram_matrix,
    linearised_rate_bound,
    smallest_eigenvalue,
)
from equipipe.implicit.model import IllPosedEquilibriumError, ImplicitReLUNetwork
from equipipe.implicit.solver import SolverConfig, anderson_solve
from equipipe.implicit.training import TrainingConfig, center_inputs, train_implicit_network

TIGHT = SolverConfig(tol=1e-13, max_iter=500)


def small_network(gamma: float = 0.4, width: int = 7, seed: int = 1) -> ImplicitReLUNetwork:
    return ImplicitReLUNetwork(5, width, 3, gamma, TIGHT, seed=seed, dtype=torch.float64)


def test_anderson_linear_map_known_solution():
    generator = torch.Generator().manual_seed(0)
    matrix = 0.9 * torch.linalg.qr(torch.randn(6, 6, generator=generator, dtype=torch.float64))[0]
    offset = torch.randn(4, 6, generator=generator, dtype=torch.float64)
    expected = torch.linalg.solve(torch.eye(6, dtype=torch.float64) - matrix, offset.T).T

    result = anderson_solve(lambda z: z @ matrix.T + offset, torch.zeros_like(offset), TIGHT)

    assert result.converged
    assert result.residual <= 1e-13
    torch.testing.assert_close(result.z, expected, rtol=1e-11, atol=1e-11)


def test_anderson_beats_plain_iteration():
    # Symmetric map with eigenvalues in [0, 0.9]: plain iteration needs about
    # log(1e-10) / log(0.9) = 219 steps.
    generator = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(20, 20, generator=generator, dtype=torch.float64))[0]
    matrix = basis @ torch.diag(torch.linspace(0.0, 0.9, 20, dtype=torch.float64)) @ basis.T
    offset = torch.randn(3, 20, generator=generator, dtype=torch.float64)
    config = SolverConfig(tol=1e-10, max_iter=1000)
    plain = SolverConfig(tol=1e-10, max_iter=1000, memory=1)

    accelerated = anderson_solve(lambda z: z @ matrix.T + offset, torch.zeros_like(offset), config)
    baseline = anderson_solve(lambda z: z @ matrix.T + offset, torch.zeros_like(offset), plain)

    assert accelerated.converged and baseline.converged
    assert baseline.iterations > 150
    assert accelerated.iterations < baseline.iterations / 3


def test_anderson_reports_divergence():
    z0 = torch.ones(2, 3, dtype=torch.float64)
    result = anderson_solve(lambda z: 2.0 * z + 1.0, z0, SolverConfig(tol=1e-8, max_iter=5, memory=1))
    assert not result.converged
    assert result.iterations == 5


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("tol", 0.0, "tol=0.0 must be a positive number"),
        ("max_iter", 0, "max_iter=0 must be at least 1"),
        ("memory", 0, "memory=0 must be at least 1"),
        ("beta", 1.5, r"beta=1.5 must be in \(0, 1\]"),
    ],
    ids=["tol", "max_iter", "memory", "beta"],
)
def test_solver_config_rejects_bad_values(field, value, message):
    with pytest.raises(ValueError, match=message):
        SolverConfig(**{field: value})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"variant": "last"}, "variant='last' must be one of all, implicit"),
        ({"dtype": "float16"}, "dtype='float16' must be one of float32, float64"),
        ({"width": 0}, "width=0 must be a positive integer"),
        ({"steps": 0}, "steps=0 must be a positive integer"),
        ({"learning_rate": -1.0}, "learning_rate=-1.0 must be a positive number"),
    ],
    ids=["variant", "dtype", "width", "steps", "learning_rate"],
)
def test_training_config_rejects_bad_values(changes, message):
    settings = {"variant": "all", "width": 10, "gamma": 0.25, "learning_rate": 1.0, "steps": 5}
    with pytest.raises(ValueError, match=message):
        TrainingConfig(**{**settings, **changes})


def test_network_rejects_bad_arguments():
    with pytest.raises(ValueError, match="width=0 must be a positive integer"):
        ImplicitReLUNetwork(5, 0, 3, gamma=0.2)
    with pytest.raises(ValueError, match="gamma=-0.1 must be a positive number"):
        ImplicitReLUNetwork(5, 4, 3, gamma=-0.1)
    network = ImplicitReLUNetwork(5, 4, 3, gamma=0.2)
    with pytest.raises(ValueError, match=r"input must have shape \(batch, 5\), got \(2, 6\)"):
        network(torch.zeros(2, 6, dtype=torch.float64))


def test_center_inputs_rejects_mean_image():
    x_train = np.array([[1.0, 2.0], [3.0, 4.0], [2.0, 3.0]])
    with pytest.raises(ValueError, match="training row 2 equals the training mean image"):
        center_inputs(x_train, x_train[:1])


def test_equilibrium_satisfies_equation():
    network = small_network()
    x = torch.randn(4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        z = network.equilibrium(x)
        image = torch.relu(network.gamma * z @ network.A.T / math.sqrt(7) + x @ network.U.T / math.sqrt(5))
    relative = (image - z).norm(dim=1) / image.norm(dim=1)
    assert float(relative.max()) <= 1e-12
    assert network.last_stats["forward"].converged


def test_ift_gradient_matches_finite_differences():
    network = small_network()
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(4, 5, dtype=torch.float64, generator=generator)
    target = torch.randn(4, 3, dtype=torch.float64, generator=generator)

    def loss() -> torch.Tensor:
        return 0.5 * ((network(x) - target) ** 2).sum()

    loss().backward()
    step = 1e-6
    for name in ("A", "U", "V"):
        parameter = getattr(network, name)
        analytic = parameter.grad.clone()
        numeric = torch.zeros_like(parameter)
        with torch.no_grad():
            for index in itertools.product(*map(range, parameter.shape)):
                original = parameter[index].item()
                parameter[index] = original + step
                upper = loss().item()
                parameter[index] = original - step
                lower = loss().item()
                parameter[index] = original
                numeric[index] = (upper - lower) / (2 * step)
        torch.testing.assert_close(analytic, numeric, rtol=1e-6, atol=1e-8, msg=name)


def test_well_posedness_error_for_large_gamma():
    # ||A||_2 / sqrt(m) of a standard normal 40 x 40 matrix is close to 2, so gamma=0.8
    # gives a norm near 1.6.
    network = ImplicitReLUNetwork(5, 40, 3, gamma=0.8, seed=0)
    norm = network.spectral_norm(exact=True)
    assert norm > 1.0
    with pytest.raises(IllPosedEquilibriumError, match=r"not well posed: .* >= 1 .*lower gamma"):
        network.check_well_posed()


def test_well_posedness_check_passes_small_gamma():
    network = ImplicitReLUNetwork(5, 40, 3, gamma=0.2, seed=0)
    assert network.check_well_posed() < 0.5


def test_power_iteration_approaches_exact_norm():
    network = ImplicitReLUNetwork(5, 60, 3, gamma=0.3, seed=0)
    exact = network.spectral_norm(exact=True)
    estimate = network.spectral_norm(power_iterations=300)
    assert estimate <= exact * (1 + 1e-12)
    assert estimate == pytest.approx(exact, rel=1e-2)


def test_gram_matches_autograd_jacobian():
    network = small_network(gamma=0.3, width=6)
    x = torch.randn(4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(4))

    def outputs(weight: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(network, {"A": weight}, (x,)).reshape(-1)  # (N C,)

    weight = network.A.detach().clone()
    jacobian = torch.autograd.functional.jacobian(outputs, weight).reshape(12, -1)  # (N C, m^2)
    expected = jacobian @ jacobian.T

    gram = implicit_gram_matrix(network, x)

    torch.testing.assert_close(gram, expected, rtol=1e-9, atol=1e-11)
    assert smallest_eigenvalue(gram) == pytest.approx(float(torch.linalg.eigvalsh(expected)[0]), abs=1e-10)


def test_fit_linear_rate_exact_exponential():
    steps = np.arange(40)
    fit = fit_linear_rate(3.0 * np.exp(-0.1 * steps))
    assert fit.slope == pytest.approx(-0.1)
    assert fit.intercept == pytest.approx(math.log(3.0))
    assert fit.r_squared == pytest.approx(1.0)
    assert fit.first_iteration == 20
    assert fit.last_iteration == 39


def test_fit_linear_rate_rejects_zero_loss():
    with pytest.raises(ValueError, match="positive and finite"):
        fit_linear_rate(np.array([1.0, 0.5, 0.4, 0.1, 0.0, 0.3]))


def test_rate_bound_known_value():
    assert linearised_rate_bound(0.5, 2.0, 10) == pytest.approx(2 * math.log(0.9))
    assert math.isnan(linearised_rate_bound(10.0, 2.0, 10))


def test_center_inputs_zero_mean_unit_scale():
    generator = np.random.default_rng(0)
    x_train = generator.normal(size=(30, 8)) + 5.0
    x_test = generator.normal(size=(10, 8)) + 5.0
    train, test = center_inputs(x_train, x_test)
    assert np.allclose(np.linalg.norm(train, axis=1), math.sqrt(8))
    assert np.allclose(np.linalg.norm(test, axis=1), math.sqrt(8))
    # Centring used the training mean, so the rescaled training rows have mean near 0.
    assert np.abs(train.mean(axis=0)).max() < 0.5


def digits_subset(per_class: int = 3):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    rows = np.concatenate([np.flatnonzero(y == label)[:per_class] for label in range(10)])
    test_rows = np.concatenate([np.flatnonzero(y == label)[per_class : per_class + 2] for label in range(10)])
    x = (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)
    return center_inputs(x[rows], x[test_rows]), y[rows], y[test_rows]


@pytest.mark.parametrize("variant", ["all", "implicit"])
def test_training_reduces_loss(variant):
    (x_train, x_test), y_train, y_test = digits_subset()
    config = TrainingConfig(
        variant=variant, width=120, gamma=0.25,
        learning_rate=10.0 if variant == "all" else 30.0, steps=30,
    )
    result = train_implicit_network(
        torch.tensor(x_train), torch.tensor(y_train), torch.tensor(x_test), torch.tensor(y_test), 10, config
    )
    losses = result.history["loss"]
    assert len(losses) == 31
    assert losses[-1] < 0.5 * losses[0]
    assert result.metrics["gram_min_eigenvalue_initial"] > 0
    assert result.metrics["spectral_norm_final"] < 1
    assert 0 <= result.metrics["test_accuracy"] <= 1
    initial = ImplicitReLUNetwork(64, 120, 10, 0.25, seed=0)
    frozen_unchanged = torch.equal(result.model.U, initial.U) and torch.equal(result.model.V, initial.V)
    assert frozen_unchanged == (variant == "implicit")
    assert not torch.equal(result.model.A, initial.A)


def test_training_stops_when_ill_posed():
    (x_train, x_test), y_train, y_test = digits_subset()
    config = TrainingConfig(variant="implicit", width=20, gamma=0.4, learning_rate=5000.0, steps=20)
    with pytest.raises(IllPosedEquilibriumError, match=r"training stopped at step \d+ .*learning_rate.implicit=5000") as caught:
        train_implicit_network(
            torch.tensor(x_train), torch.tensor(y_train), torch.tensor(x_test), torch.tensor(y_test), 10, config
        )
    assert len(caught.value.history["loss"]) == caught.value.step
    # With m^2 = 400 parameters of A for N * C = 300 outputs, H may be singular here.
    assert math.isfinite(caught.value.initial_metrics["gram_min_eigenvalue_initial"])
    assert caught.value.initial_metrics["spectral_norm_initial"] < 1


TINY_IMAGES_CONFIG = """
materials:
  enabled: false
events:
  enabled: false
images:
  enabled: true
  dataset: tiny
  device: cpu
  data:
    n_per_class: 3
    classes: [0, 1, 2, 3]
    n_test: 20
  training:
    width_factors: [4]
    learning_rate: {all: 5.0, implicit: 20.0}
    steps: 8
  nngp:
    sigma_w_grid: [0.25, 1.0]
    finite_width:
      widths: [8, 16]
      n_networks: 20
      n_inputs: 3
"""


@pytest.mark.slow
def test_images_workflow_tiny_config(tmp_path, repo):
    import json
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    for part in ("Snakefile", "config", "workflow", "envs"):
        source = repo / part
        if source.is_dir():
            shutil.copytree(source, tmp_path / part)
        else:
            shutil.copy2(source, tmp_path / part)
    (tmp_path / "tiny.yaml").write_text(TINY_IMAGES_CONFIG, encoding="utf-8")
    environment = dict(os.environ, PYTHONPATH=str(repo / "src"), OMP_NUM_THREADS="1")
    snakemake = Path(sys.executable).parent / "snakemake"

    result = subprocess.run(
        [str(snakemake), "--cores", "2", "--configfile", "tiny.yaml"],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=900,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    root = tmp_path / "results" / "images" / "tiny"
    summary = (root / "training_summary.csv").read_text(encoding="utf-8").splitlines()
    assert len(summary) == 3  # header and one run per variant
    for name in ("loss_curves", "rate_vs_width", "gram_eigenvalues", "accuracy_vs_width", "solver_iterations"):
        assert (root / "figures" / f"{name}.png").stat().st_size > 0
    nngp_metrics = json.loads((root / "nngp" / "metrics.json").read_text(encoding="utf-8"))
    assert nngp_metrics["n_train"] == 12
    assert nngp_metrics["all_positive"]
    history = (root / "train" / "all" / "width-4N" / "history.csv").read_text(encoding="utf-8")
    assert len(history.splitlines()) == 10  # header and steps 0..8
