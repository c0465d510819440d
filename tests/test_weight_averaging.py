"""``weight_averaging``: prediction with an exponential moving average of the
weights, checked against the average computed here from the weights every
update reached."""

import copy
import pickle
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from scenes import SMALL, colour_scenes
from skrcnn import training
from skrcnn.segmenter import RecurrentCNNSegmenter


def _model(**params):
    defaults = dict(architecture=SMALL, n_instances=2, max_iter=2,
                    instance_schedule="fixed", learning_rate=1e-2,
                    patches_per_epoch=48, random_state=0)
    defaults.update(params)
    return RecurrentCNNSegmenter(**defaults)


def _fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


def _weights(model):
    return model.coefs_ + model.intercepts_


@pytest.fixture(scope="module")
def data():
    return colour_scenes(12)


@pytest.fixture
def recorded(monkeypatch):
    """The weights after every Adam update of the test (NumPy copies)."""
    updates = []
    step = training.Adam.step

    def recording_step(self, params):
        step(self, params)
        updates.append([p.data.copy() for p in params])

    monkeypatch.setattr(training.Adam, "step", recording_step)
    return updates


def _average(updates, decay):
    """sum_k (1 - d) d**(n-k) w_k / (1 - d**n), in float64."""
    n = len(updates)
    factors = [(1 - decay) * decay ** (n - k) for k in range(1, n + 1)]
    total = sum(factors)
    return [sum(f * np.float64(w[i]) for f, w in zip(factors, updates))
            / total for i in range(len(updates[0]))]


def test_coefs_are_the_average_of_every_update(data, recorded):
    X, y = data
    model = _fit(_model(weight_averaging=0.9), X, y)
    assert len(recorded) == model.t_ == 6  # 2 epochs of 48 / 16 crops
    expected = _average(recorded, 0.9)
    weights = model.coefs_ + model.intercepts_
    interleaved = [w for pair in zip(model.coefs_, model.intercepts_)
                   for w in pair]
    for got, want in zip(interleaved, expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        assert got.dtype == np.float32
    assert all(w.dtype == np.float32 for w in weights)
    # The average differs from the last update's weights, which training
    # follows exactly as without averaging.
    last = recorded[-1]
    assert not np.allclose(interleaved[0], last[0], atol=1e-4)
    for got, want in zip(model._training_weights, last):
        np.testing.assert_array_equal(got, want)
    plain = _fit(_model(), X, y)
    for got, want in zip(_weights(plain), last[0::2] + last[1::2]):
        np.testing.assert_array_equal(got, want)


def test_a_tiny_decay_keeps_the_last_weights(data):
    X, y = data
    averaged = _fit(_model(weight_averaging=1e-9), X, y)
    plain = _fit(_model(), X, y)
    for a, b in zip(_weights(averaged), _weights(plain)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_predictions_use_the_averaged_weights(data):
    X, y = data
    averaged = _fit(_model(weight_averaging=0.8), X, y)
    same_weights = copy.copy(_fit(_model(), X, y))
    same_weights.coefs_ = averaged.coefs_
    same_weights.intercepts_ = averaged.intercepts_
    np.testing.assert_allclose(averaged.predict_proba(X[:3]),
                               same_weights.predict_proba(X[:3]), atol=1e-6)
    assert averaged.score(X, y) == same_weights.score(X, y)


@pytest.mark.parametrize("go_on", ["warm_start", "partial_fit", "pickle"])
def test_training_goes_on_from_the_weights_and_the_average(data, go_on):
    """Two epochs in one fit == one epoch, then one more: the second part
    starts from the unaveraged weights and extends the same average."""
    X, y = data
    whole = _fit(_model(weight_averaging=0.9), X, y)
    if go_on == "partial_fit":
        parts = _model(weight_averaging=0.9)
        parts.partial_fit(X, y)
        parts.partial_fit(X, y)
    else:
        parts = _fit(_model(weight_averaging=0.9, max_iter=1,
                            warm_start=True), X, y)
        if go_on == "pickle":
            parts = pickle.loads(pickle.dumps(parts))
        _fit(parts, X, y)
    assert parts.t_ == whole.t_
    for a, b in zip(_weights(parts) + parts._training_weights,
                    _weights(whole) + whole._training_weights):
        np.testing.assert_array_equal(a, b)


def test_a_new_decay_starts_a_new_average_and_none_drops_it(data):
    X, y = data
    model = _fit(_model(weight_averaging=0.9, max_iter=1, warm_start=True),
                 X, y)
    assert model._averaged[2] == model.t_ == 3
    _fit(model.set_params(weight_averaging=0.5), X, y)
    assert model._averaged[0] == 0.5 and model._averaged[2] == 3
    training_weights = model._training_weights
    _fit(model.set_params(weight_averaging=None, learning_rate=1e-12), X, y)
    assert model._averaged is None and model._training_weights is None
    # Without averaging, coefs_ are the training weights (barely moved by
    # the tiny rate), not the 0.5-average they were before.
    for got, before in zip(_weights(model), training_weights[0::2]
                           + training_weights[1::2]):
        np.testing.assert_allclose(got, before, atol=1e-9)


def test_early_stopping_restores_the_best_epochs_average(data):
    X, y = data
    # tol=1 is never beaten: the first epoch stays the best.
    stopped = _model(weight_averaging=0.9, early_stopping=True, tol=1.0,
                     n_iter_no_change=2, max_iter=10,
                     validation_fraction=0.2).fit(X, y)
    assert stopped.n_iter_ == 3
    one_epoch = _fit(_model(weight_averaging=0.9, early_stopping=True,
                            max_iter=1, validation_fraction=0.2), X, y)
    for a, b in zip(_weights(stopped) + stopped._training_weights,
                    _weights(one_epoch) + one_epoch._training_weights):
        np.testing.assert_array_equal(a, b)
    # Three epochs ran; the average is the first epoch's three updates.
    assert stopped._averaged[2] == one_epoch._averaged[2] == 3


def test_early_stopping_scores_the_average(data):
    X, y = data
    params = dict(early_stopping=True, max_iter=3, validation_fraction=0.5,
                  n_iter_no_change=5)
    averaged = _fit(_model(weight_averaging=0.5, **params), X, y)
    plain = _fit(_model(**params), X, y)
    # The same training run (same split, same updates; the weights kept at
    # the end are each run's best epoch's, which may differ) ...
    assert averaged.loss_curve_ == plain.loss_curve_
    # ... scored through different weights: were the validation scores
    # those of the training weights, they would be equal.
    assert averaged.validation_scores_ != plain.validation_scores_
