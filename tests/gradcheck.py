"""Numerical gradient checking for skrcnn functions (a helper module).

The check works on a scalar objective. When ``f`` returns a single scalar
(shape ``()``) that scalar is the objective; otherwise the objective is
``L = sum(f(*inputs).data * R)`` for a fixed random array ``R`` of the
output's shape, which is what ``f(...).backward(R)`` differentiates.

For every input ``x_k`` and a few random directions ``v`` the analytic
directional derivative ``<dL/dx_k, v>`` (from backward) is compared with the
central difference ``(L(x_k + eps v) - L(x_k - eps v)) / (2 eps)`` computed
in float64. A random direction catches any wrong gradient entry with
probability one, and costs two forward evaluations, however large ``x_k``.
"""

import numpy as np

from skrcnn.autograd import Variable, no_grad


def _objective(f, arrays, weights):
    """The scalar objective at ``arrays``, evaluated without a graph."""
    with no_grad():
        out = f(*[Variable(a) for a in arrays])
    data = np.asarray(out.data if isinstance(out, Variable) else out,
                      dtype=np.float64)
    if weights is None:
        if data.ndim != 0:
            raise ValueError(f"f returned shape {data.shape}; pass weights "
                             "to reduce a non-scalar output")
        return float(data)
    if data.shape != weights.shape:
        raise ValueError(f"f returned shape {data.shape}, weights have shape "
                         f"{weights.shape}")
    return float(np.sum(data * weights))


def numerical_directional_derivative(f, inputs, direction, eps=1e-6,
                                     weights=None):
    """Central-difference derivative of the objective along ``direction``.

    Parameters
    ----------
    f : callable
        Takes one Variable per input and returns a Variable.
    inputs : sequence of ndarray
        The point of evaluation (converted to float64).
    direction : sequence of ndarray or None
        One perturbation per input (same shapes); ``None`` leaves that input
        fixed.
    eps : float
        Step length.
    weights : ndarray, optional
        The ``R`` of ``L = sum(f(...) * R)``; omit when ``f`` returns a scalar.

    Returns
    -------
    float
        ``(L(x + eps v) - L(x - eps v)) / (2 eps)``.
    """
    arrays = [np.asarray(x, dtype=np.float64) for x in inputs]
    if len(direction) != len(arrays):
        raise ValueError("one direction entry per input is needed")
    plus, minus = [], []
    for x, v in zip(arrays, direction):
        if v is None:
            plus.append(x.copy())
            minus.append(x.copy())
        else:
            v = np.asarray(v, dtype=np.float64)
            if v.shape != x.shape:
                raise ValueError(f"direction of shape {v.shape} for an input "
                                 f"of shape {x.shape}")
            plus.append(x + eps * v)
            minus.append(x - eps * v)
    return (_objective(f, plus, weights)
            - _objective(f, minus, weights)) / (2 * eps)


def check_gradients(f, inputs, seed=0, atol=1e-8, rtol=1e-6, n_directions=3,
                    eps=1e-6):
    """Assert that backward through ``f`` agrees with finite differences.

    Parameters
    ----------
    f : callable
        Takes one Variable per input, returns a Variable (scalar or not).
        Every input is differentiated; close over anything that must not be.
    inputs : sequence of array-like
        Converted to float64 copies; the caller's arrays are not touched.
    seed : int
        Seeds ``R`` and the directions.
    atol, rtol : float
        A direction passes when
        ``|analytic - numeric| <= atol + rtol * max(|analytic|, |numeric|)``.
    n_directions : int
        Random directions per input.
    eps : float
        Finite-difference step.

    Returns
    -------
    list of ndarray
        The analytic gradients, one per input.

    Raises
    ------
    AssertionError
        When an input gets no gradient, one of the wrong shape or dtype, or
        a directional derivative disagrees.
    """
    rng = np.random.default_rng(seed)
    arrays = [np.array(x, dtype=np.float64) for x in inputs]
    variables = [Variable(a.copy(), requires_grad=True) for a in arrays]
    out = f(*variables)
    assert isinstance(out, Variable), f"f returned {type(out).__name__}"
    assert out.requires_grad, "the output of f does not require grad"
    assert np.asarray(out.data).dtype == np.float64, (
        f"float64 inputs gave a {np.asarray(out.data).dtype} output")
    if np.ndim(out.data) == 0:
        weights = None
        out.backward()
    else:
        weights = rng.standard_normal(out.shape)
        out.backward(weights.copy())

    grads = []
    for k, (variable, x) in enumerate(zip(variables, arrays)):
        grad = variable.grad
        assert grad is not None, f"input {k} (shape {x.shape}) got no gradient"
        grad = np.asarray(grad)
        assert grad.shape == x.shape, (
            f"input {k}: gradient shape {grad.shape} != input shape {x.shape}")
        assert grad.dtype == np.float64, (
            f"input {k}: gradient dtype {grad.dtype}, expected float64")
        assert np.all(np.isfinite(grad)), f"input {k}: non-finite gradient"
        for d in range(n_directions):
            v = rng.standard_normal(x.shape)
            direction = [None] * len(arrays)
            direction[k] = v
            numeric = numerical_directional_derivative(
                f, arrays, direction, eps=eps, weights=weights)
            analytic = float(np.sum(grad * v))
            tolerance = atol + rtol * max(abs(analytic), abs(numeric))
            if not abs(analytic - numeric) <= tolerance:  # also catches NaN
                raise AssertionError(
                    f"gradient mismatch for input {k} (shape {x.shape}), "
                    f"direction {d}: analytic <grad, v> = {analytic!r}, "
                    f"numerical = {numeric!r}, |difference| = "
                    f"{abs(analytic - numeric):.3e} > tolerance "
                    f"{tolerance:.3e}")
        grads.append(grad)
    return grads


def assert_gradients_match_objective(objective, params, grads, seed=0,
                                     eps=1e-6, rtol=1e-5, atol=1e-8):
    """Check ``grads`` (one per array of ``params``) against central
    differences of ``objective(*params)`` (plain floats, computed
    independently of the autograd), along one random direction each."""
    rng = np.random.default_rng(seed)
    for k, (param, grad) in enumerate(zip(params, grads)):
        direction = rng.standard_normal(param.shape)

        def along(x):
            args = list(params)
            args[k] = x
            return objective(*args)

        numeric = (along(param + eps * direction)
                   - along(param - eps * direction)) / (2 * eps)
        analytic = float((grad * direction).sum())
        # pytest.approx's bound: the larger of the two tolerances.
        assert abs(analytic - numeric) <= max(atol, rtol * abs(numeric)), (
            k, analytic, numeric)
