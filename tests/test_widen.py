"""benchmarks/_widen.py: a fitted rcnn2 given more hidden units."""

import os
import sys

import numpy as np
import pytest

from skrcnn import RecurrentCNNSegmenter
from scenes import colour_scenes

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..",
                                "benchmarks"))
from _widen import widen  # noqa: E402

# The models are fitted for a fixed few epochs on purpose.
pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def fitted():
    X, y = colour_scenes(4, shape=(40, 44), seed=3)
    model = RecurrentCNNSegmenter(
        hidden_sizes=(3, 4), n_instances=2, instance_schedule="fixed",
        patches_per_epoch=32, batch_size=8, max_iter=2, random_state=0)
    return model.fit(X, y), X, y


def test_widened_model_labels_as_before(fitted):
    model, X, _ = fitted
    before = [c.copy() for c in model.coefs_]
    wide = widen(model, (5, 7), random_state=1)
    assert [c.shape for c in wide.coefs_] == [
        (5, 3 + 3, 8, 8), (7, 5, 8, 8), (3, 7, 1, 1)]
    assert wide.get_params()["hidden_sizes"] == (5, 7)
    np.testing.assert_allclose(wide.predict_proba(X), model.predict_proba(X),
                               atol=1e-6)
    # the learnt weights are carried over; the model given is untouched
    np.testing.assert_array_equal(wide.coefs_[1][:4, :3], before[1])
    for kept, original in zip(model.coefs_, before):
        np.testing.assert_array_equal(kept, original)
    # the new units are drawn, not copies, so that they can differ
    assert np.abs(wide.coefs_[0][3:]).min() > 0
    assert not np.array_equal(wide.coefs_[0][3], wide.coefs_[0][4])


def test_training_on_puts_the_new_units_to_use(fitted):
    model, X, y = fitted
    wide = widen(model, (5, 7), random_state=1)
    assert not wide.coefs_[2][:, 4:].any()
    wide.partial_fit(X, y)
    assert wide.n_iter_ == model.n_iter_ + 1
    assert np.abs(wide.coefs_[2][:, 4:]).max() > 0
    assert np.abs(wide.coefs_[1][:4, 3:]).max() > 0


def test_widening_refuses_what_it_cannot_do(fitted):
    model, X, y = fitted
    with pytest.raises(ValueError, match=r"no smaller than the model's "
                                         r"\(3, 4\), got \(2, 8\)"):
        widen(model, (2, 8))
    plain = RecurrentCNNSegmenter(architecture="plain", hidden_sizes=(2, 2),
                                  n_instances=1, patches_per_epoch=16,
                                  max_iter=1, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="only rcnn2 can be widened, got "
                                         "'plain'"):
        widen(plain, (3, 3))


def test_an_averaged_model_trains_on_from_the_weights_it_predicts_with(
        fitted):
    _, X, y = fitted
    averaged = RecurrentCNNSegmenter(
        hidden_sizes=(3, 4), n_instances=2, instance_schedule="fixed",
        patches_per_epoch=32, batch_size=8, max_iter=2, random_state=0,
        weight_averaging=0.9).fit(X, y)
    wide = widen(averaged, (5, 7), random_state=1)
    np.testing.assert_allclose(wide.predict_proba(X),
                               averaged.predict_proba(X), atol=1e-6)
    wide.partial_fit(X, y)
    # A new average over the 4 updates of that epoch, of the wide weights.
    assert wide._averaged[2] == 4
    assert [w.shape for w in wide._training_weights[0::2]] == [
        c.shape for c in wide.coefs_]
