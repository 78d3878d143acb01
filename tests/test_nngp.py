"""Tests of the DEQ NNGP kernel, GP regression and the finite-width comparison."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.optimize
from sklearn.datasets import load_digits
from sklearn.kernel_ridge import KernelRidge

from equipipe.errors import ConfigError
from equipipe.implicit.nngp import (
    classification_accuracy,
    deq_nngp_kernel,
    expected_product,
    finite_width_covariance,
    kernel_eigen_history,
    loglog_fit,
    loglog_slope,
    monte_carlo_expected_product,
    monte_carlo_nngp_kernel,
    nngp_regression,
    output_normality,
    smallest_eigenvalue,
    smallest_eigenvalue_vs_sigma_w,
)
from equipipe.implicit.nngp import _joint_recursion


def standardised_digits(n: int, offset: int = 0) -> np.ndarray:
    """Return n digits from ``offset`` on, each with zero mean and unit variance (x . x / d = 1)."""
    X = load_digits().data[offset : offset + n].astype(np.float64)
    X -= X.mean(axis=1, keepdims=True)
    return X / X.std(axis=1, keepdims=True)


def unit_pair(correlation: float, d: int = 4) -> np.ndarray:
    """Two inputs with x . x / d = 1 and x1 . x2 / d = correlation."""
    first = np.zeros(d)
    second = np.zeros(d)
    first[0] = math.sqrt(d)
    second[0] = correlation * math.sqrt(d)
    second[1] = math.sqrt(1.0 - correlation**2) * math.sqrt(d)
    return np.stack([first, second])


# --------------------------------------------------------------------------- closed forms

CASES = [
    (1.0, 1.0, 0.0),
    (1.0, 1.0, 0.6),
    (2.0, 0.5, -0.7),
    (0.3, 1.7, 0.69),
    (1.5, 1.5, 1.49),
]


@pytest.mark.parametrize("phi", ["relu", "erf"])
@pytest.mark.parametrize(("var_a", "var_b", "cov_ab"), CASES, ids=[str(case) for case in CASES])
def test_closed_form_matches_monte_carlo(phi, var_a, var_b, cov_ab):
    estimate, standard_error = monte_carlo_expected_product(
        phi, var_a, var_b, cov_ab, n_samples=400_000, seed=7
    )
    exact = float(expected_product(phi, var_a, var_b, cov_ab))

    # A correct closed form lies within 5 standard errors of the sample mean with
    # probability 1 - 6e-7 (the mean of 400,000 products is close to normal).
    assert abs(estimate - exact) <= 5.0 * standard_error


def test_relu_closed_form_hand_values():
    # Independent inputs: E[relu(a)] E[relu(b)] = (sqrt(q/(2 pi)))^2 for q = 1.
    assert expected_product("relu", 1.0, 1.0, 0.0) == pytest.approx(1.0 / (2.0 * math.pi))
    # Identical inputs: E[relu(a)^2] = q / 2.
    assert expected_product("relu", 3.0, 3.0, 3.0) == pytest.approx(1.5)
    # Opposite inputs: relu(a) relu(-a) = 0.
    assert expected_product("relu", 2.0, 2.0, -2.0) == pytest.approx(0.0, abs=1e-15)


def test_erf_closed_form_hand_values():
    # erf is odd, so uncorrelated inputs give zero.
    assert expected_product("erf", 1.0, 2.0, 0.0) == 0.0
    # q = 1/2 and perfect correlation: 2/pi * arcsin(1 / 2) = 1/3.
    assert expected_product("erf", 0.5, 0.5, 0.5) == pytest.approx(1.0 / 3.0)


# --------------------------------------------------------------------------- fixed point


@pytest.mark.parametrize("phi", ["relu", "erf"])
def test_fixed_point_satisfies_recursion(phi):
    X = standardised_digits(40)
    sigma_w, sigma_u = 0.9, 1.1
    kernel = deq_nngp_kernel(X, sigma_w=sigma_w, sigma_u=sigma_u, phi=phi, tol=1e-12)

    sigma = kernel.pre_activation
    variance = np.diag(sigma)
    expectation = expected_product(phi, variance[:, None], variance[None, :], sigma)
    mapped = sigma_w**2 * expectation + sigma_u**2 * (X @ X.T) / X.shape[1]

    np.testing.assert_allclose(mapped, sigma, atol=1e-10 * variance.max())
    np.testing.assert_allclose(kernel.output, expectation, atol=1e-10)
    assert kernel.iterations > 1


@pytest.mark.parametrize("phi", ["relu", "erf"])
def test_two_stage_matches_joint_recursion(phi):
    X = standardised_digits(30)
    fast = deq_nngp_kernel(X, sigma_w=1.2, phi=phi, tol=1e-12)
    joint = _joint_recursion(X, 1.2, 1.0, phi, 1e-13, 10_000)

    np.testing.assert_allclose(fast.pre_activation, joint.pre_activation, atol=1e-9)
    np.testing.assert_allclose(fast.output, joint.output, atol=1e-9)


@pytest.mark.parametrize("phi", ["relu", "erf"])
def test_cross_kernel_matches_joint_block(phi):
    X = standardised_digits(25)
    joint = deq_nngp_kernel(X, phi=phi, tol=1e-12).output
    cross = deq_nngp_kernel(X[18:], X[:18], phi=phi, tol=1e-12).output

    assert cross.shape == (7, 18)
    np.testing.assert_allclose(cross, joint[18:, :18], atol=1e-10)


def test_relu_orthogonal_pair_known_answer():
    # Unit inputs, sigma_w = sigma_u = 1: q = q / 2 + 1, so q* = 2 and K*(x, x) = q* / 2 = 1.
    kernel = deq_nngp_kernel(unit_pair(0.0), sigma_w=1.0, sigma_u=1.0, phi="relu", tol=1e-13)
    np.testing.assert_allclose(np.diag(kernel.pre_activation), [2.0, 2.0], rtol=1e-12)
    np.testing.assert_allclose(np.diag(kernel.output), [1.0, 1.0], rtol=1e-12)

    # Off-diagonal: rho = (sqrt(1 - rho^2) + (pi - arccos rho) rho) / (2 pi) with the input
    # term zero, solved here by bracketing (rho = 0 gives 1 / (2 pi) > 0, rho = 1 gives
    # 1/2 < 1).
    def gap(rho: float) -> float:
        return (math.sqrt(1 - rho**2) + (math.pi - math.acos(rho)) * rho) / (2 * math.pi) - rho

    rho = scipy.optimize.brentq(gap, 0.0, 1.0, xtol=1e-15)
    assert kernel.pre_activation[0, 1] == pytest.approx(2.0 * rho, rel=1e-9)
    assert kernel.output[0, 1] == pytest.approx(2.0 * rho, rel=1e-9)


def test_erf_correlated_pair_known_answer():
    sigma_w, sigma_u, correlation = 1.3, 0.8, 0.5
    kernel = deq_nngp_kernel(
        unit_pair(correlation), sigma_w=sigma_w, sigma_u=sigma_u, phi="erf", tol=1e-13
    )

    # Scalar equations solved independently: q = sw^2 2/pi arcsin(2q / (1 + 2q)) + su^2,
    # then s = sw^2 2/pi arcsin(2s / (1 + 2q)) + su^2 * correlation.
    def variance_gap(q: float) -> float:
        return sigma_w**2 * 2 / math.pi * math.asin(2 * q / (1 + 2 * q)) + sigma_u**2 - q

    q = scipy.optimize.brentq(variance_gap, sigma_u**2, sigma_u**2 + sigma_w**2, xtol=1e-15)

    def covariance_gap(s: float) -> float:
        inner = sigma_w**2 * 2 / math.pi * math.asin(2 * s / (1 + 2 * q))
        return inner + sigma_u**2 * correlation - s

    s = scipy.optimize.brentq(covariance_gap, 0.0, q, xtol=1e-15)
    np.testing.assert_allclose(np.diag(kernel.pre_activation), [q, q], rtol=1e-10)
    assert kernel.pre_activation[0, 1] == pytest.approx(s, rel=1e-9)
    assert kernel.output[0, 1] == pytest.approx(
        (s - sigma_u**2 * correlation) / sigma_w**2, rel=1e-9
    )


@pytest.mark.parametrize("phi", ["relu", "erf"])
def test_kernel_symmetric_and_positive_definite(phi):
    # 100 inputs in 64 dimensions: the input Gram matrix X X^T is singular, the kernel is not.
    X = standardised_digits(100)
    kernel = deq_nngp_kernel(X, phi=phi).output

    assert np.array_equal(kernel, kernel.T)
    assert np.linalg.matrix_rank(X @ X.T) <= 64
    assert smallest_eigenvalue(kernel) > 1e-4


# --------------------------------------------------------------------------- errors


def test_relu_sigma_w_without_fixed_point_rejected():
    with pytest.raises(ConfigError, match=r"sigma_w=1.5 gives no finite fixed point for ReLU"):
        deq_nngp_kernel(standardised_digits(3), sigma_w=1.5, phi="relu")


def test_erf_accepts_large_sigma_w():
    kernel = deq_nngp_kernel(standardised_digits(3), sigma_w=3.0, phi="erf")
    assert np.all(np.isfinite(kernel.output))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"sigma_u": 0.0}, r"sigma_u=0.0 must be a finite number > 0"),
        ({"sigma_w": -1.0}, r"sigma_w=-1.0 must be a finite number >= 0"),
        ({"phi": "tanh"}, r"phi='tanh' is not one of relu, erf"),
        ({"max_iter": 3}, r"did not reach the tolerance 1e-10 in 3 iterations"),
    ],
    ids=["sigma_u", "sigma_w", "phi", "max_iter"],
)
def test_invalid_kernel_arguments_rejected(arguments, message):
    with pytest.raises(ConfigError, match=message):
        deq_nngp_kernel(standardised_digits(3), **arguments)


def test_zero_input_rejected():
    X = standardised_digits(3)
    X[1] = 0.0
    with pytest.raises(ValueError, match="an input row is all zeros"):
        deq_nngp_kernel(X)


def test_nan_input_rejected():
    X = standardised_digits(3)
    X[1, 4] = np.nan
    with pytest.raises(ValueError, match="X contains NaN or infinite values"):
        deq_nngp_kernel(X)


# --------------------------------------------------------------------------- eigenvalues


def test_eigen_history_ends_at_fixed_point():
    X = standardised_digits(80)
    iterations, smallest = kernel_eigen_history(X, 1.0, 1.0, "relu", tol=1e-12)
    final = deq_nngp_kernel(X, tol=1e-12).output

    assert iterations.tolist() == list(range(len(smallest)))
    assert smallest[-1] == pytest.approx(smallest_eigenvalue(final), rel=1e-6)
    assert np.all(smallest > 0)


def test_eigen_history_pre_activation_starts_singular():
    # Sigma^(0) = X X^T / d has rank <= 64 < 80, so its smallest eigenvalue is zero.
    X = standardised_digits(80)
    _, smallest = kernel_eigen_history(X, 1.0, 1.0, "erf", kernel="pre_activation")

    assert abs(smallest[0]) < 1e-10
    assert smallest[-1] > 1e-4


def test_smallest_eigenvalue_positive_all_sigma_w():
    X = standardised_digits(60)
    values = smallest_eigenvalue_vs_sigma_w(X, [0.0, 0.5, 1.0, 1.3], phi="relu")

    assert values.shape == (4,)
    assert np.all(values > 0)


# --------------------------------------------------------------------------- GP regression


def test_regression_matches_sklearn_kernel_ridge():
    X = standardised_digits(120)
    y = load_digits().target[:120]
    targets = np.eye(10)[y]
    kernel = deq_nngp_kernel(X).output
    ridge = 1e-3

    predictions = nngp_regression(kernel[:100, :100], kernel[100:, :100], targets[:100], ridge)
    reference = KernelRidge(
        alpha=ridge * np.mean(np.diag(kernel[:100, :100])), kernel="precomputed"
    )
    reference.fit(kernel[:100, :100], targets[:100])

    np.testing.assert_allclose(predictions, reference.predict(kernel[100:, :100]), atol=1e-8)


def test_regression_interpolates_with_tiny_ridge():
    X = standardised_digits(50)
    targets = np.eye(10)[load_digits().target[:50]]
    kernel = deq_nngp_kernel(X).output

    predictions = nngp_regression(kernel, kernel, targets, ridge=1e-12)

    np.testing.assert_allclose(predictions, targets, atol=1e-5)


def test_regression_accuracy_on_digits():
    X = standardised_digits(600)
    y = load_digits().target[:600]
    train_kernel = deq_nngp_kernel(X[:400]).output
    test_kernel = deq_nngp_kernel(X[400:], X[:400]).output

    predictions = nngp_regression(train_kernel, test_kernel, np.eye(10)[y[:400]], ridge=1e-4)

    # A 1-nearest-neighbour classifier reaches about 0.95 on such splits of digits.
    assert classification_accuracy(predictions, y[400:], np.arange(10)) > 0.9


def test_regression_singular_kernel_rejected():
    with pytest.raises(ConfigError, match="not positive definite"):
        nngp_regression(np.zeros((3, 3)), np.zeros((2, 3)), np.eye(3), ridge=0.0)


def test_regression_shape_mismatch_rejected():
    with pytest.raises(
        ValueError, match=r"K_test_train has shape \(2, 4\); expected \(n_test, 3\)"
    ):
        nngp_regression(np.eye(3), np.zeros((2, 4)), np.eye(3))


def test_accuracy_uses_class_labels():
    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert classification_accuracy(scores, np.array([7, 2, 2]), np.array([2, 7])) == pytest.approx(
        2 / 3
    )


# --------------------------------------------------------------------------- finite width


@pytest.mark.parametrize("phi", ["relu", "erf"])
def test_finite_width_error_decreases_with_width(phi):
    X = standardised_digits(4)
    result = finite_width_covariance(X, [16, 64, 256], n_networks=30, sigma_w=0.5, phi=phi, seed=3)

    assert result.covariances.shape == (3, 4, 4)
    assert result.errors[1] < result.errors[0]
    assert result.errors[2] < result.errors[1]
    # Fluctuations of z . z' / m scale as m^(-1/2).
    assert -0.9 < loglog_slope(result.widths, result.errors) < -0.25
    assert result.outputs.shape == (30, 4)


def test_finite_width_kernel_is_its_own_limit():
    # At a large width the feature covariance is within a few percent of K*.
    X = standardised_digits(3)
    result = finite_width_covariance(X, [512], n_networks=20, sigma_w=0.5, phi="relu", seed=0)
    assert result.errors[0] < 0.05


def test_finite_width_nonconvergence_rejected():
    with pytest.raises(ConfigError, match="fixed-point iteration of a width-16 DEQ"):
        finite_width_covariance(
            standardised_digits(2), [16], n_networks=4, sigma_w=3.0, phi="erf", max_iter=5
        )


def test_loglog_slope_of_power_law():
    widths = np.array([10, 100, 1000])
    assert loglog_slope(widths, 3.0 * widths**-0.5) == pytest.approx(-0.5)
    assert loglog_fit(widths, 3.0 * widths**-0.5)[1] == pytest.approx(math.log(3.0))


def test_normality_gaussian_vs_exponential():
    rng = np.random.default_rng(0)
    gaussian = rng.normal(scale=2.0, size=(500, 2))
    skewed = rng.exponential(size=(500, 1))

    gaussian_results = output_normality(gaussian, variances=np.array([4.0, 4.0]))
    skewed_results = output_normality(skewed)

    assert gaussian_results[0]["normaltest_p_value"] > 1e-3
    assert gaussian_results[1]["shapiro_p_value"] > 1e-3
    assert gaussian_results[0]["standardised_variance"] == pytest.approx(1.0, abs=0.15)
    assert skewed_results[0]["normaltest_p_value"] < 1e-6
    assert skewed_results[0]["shapiro_p_value"] < 1e-6


def test_normality_needs_twenty_networks():
    with pytest.raises(ValueError, match="need \\(n_networks >= 20"):
        output_normality(np.zeros((10, 2)))


# --------------------------------------------------------------------------- Monte-Carlo reference


@pytest.mark.parametrize("phi", ["relu", "erf"])
def test_monte_carlo_recursion_near_closed_form(phi):
    X = standardised_digits(6)
    exact = deq_nngp_kernel(X, phi=phi).output
    sampled = monte_carlo_nngp_kernel(X, phi=phi, n_samples=200_000, seed=1).output

    # Error estimate: the standard deviation of phi(a) phi(b) is at most
    # sqrt(E[phi(a)^4]) = sqrt(3/2) q* = 2.45 for ReLU (q* = 2) and 1 for erf. At
    # sigma_w = 1 the recursion contracts a covariance error by sigma_w^2 E[phi' phi'],
    # at most 1/2 for ReLU and (4 / pi) / sqrt(5) = 0.57 for erf (q* >= 1), so the fixed
    # point moves by about 1 / (1 - contraction) times the sampling error. Allow 5 times that.
    spread, amplification = (2.45, 2.0) if phi == "relu" else (1.0, 2.4)
    tolerance = 5 * amplification * spread / math.sqrt(200_000)
    assert np.abs(sampled - exact).max() < tolerance


# --------------------------------------------------------------------------- figures


def test_kernel_plots_write_png(tmp_path):
    from equipipe.implicit import kernel_plots

    X = standardised_digits(5)
    history = kernel_eigen_history(X, 1.0, 1.0, "relu", kernel="pre_activation")
    result = finite_width_covariance(X, [16, 64], n_networks=20, sigma_w=0.5, seed=0)
    paths = [tmp_path / name for name in ("history.png", "sigma.png", "width.png", "qq.png")]

    kernel_plots.plot_eigen_history({"ReLU": history}, paths[0])
    kernel_plots.plot_eigen_vs_sigma_w(
        {"ReLU": (np.array([0.5, 1.0]), np.array([0.1, 0.2]))}, paths[1]
    )
    slopes = kernel_plots.plot_width_error(result.widths, {"ReLU": result.errors}, paths[2])
    kernel_plots.plot_output_qq(result.outputs, np.diag(result.kernel), paths[3])

    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert slopes["ReLU"] == pytest.approx(loglog_slope(result.widths, result.errors))
    assert sorted(item.name for item in tmp_path.iterdir()) == sorted(path.name for path in paths)
