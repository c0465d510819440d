"""benchmarks/_protocol.py: training on a time budget, and the extra rows
of test-time augmentation and weight averaging."""

import os
import sys
import argparse
import warnings

import pytest

from skrcnn import RecurrentCNNSegmenter
from scenes import SMALL, colour_scenes

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..",
                                "benchmarks"))
from _protocol import augmented_rows, evaluate, train_for  # noqa: E402


def _model():
    return RecurrentCNNSegmenter(architecture=SMALL, n_instances=1,
                                 crop_size=None, random_state=0)


def test_budget_runs_whole_epochs_without_convergence_warnings():
    X, y = colour_scenes(4)
    model = _model()
    lines = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spent = train_for(model, X, y, 1e-9, [0, 1, 2], log=lines.append)
    assert model.n_iter_ == 1 and spent > 0
    assert lines[0].startswith("   epoch 1: loss")


def test_ctrl_c_ends_the_stage_and_keeps_the_weights(interrupt_epoch):
    X, y = colour_scenes(4)
    model = _model()
    started = interrupt_epoch(3)
    lines = []
    # A budget of an hour: only the interruption can end it this soon.
    with pytest.warns(UserWarning, match="training interrupted"):
        spent = train_for(model, X, y, 3600, [0, 1, 2], log=lines.append)
    assert len(started) == 3 and model.n_iter_ == 2
    assert spent < 3600
    assert "interrupted, ending this stage" in lines[-1]
    assert model.predict(X[:1]).shape == (1,) + X.shape[1:3]


def test_an_averaged_model_is_also_scored_with_its_last_weights():
    X, y = colour_scenes(6)
    params = dict(architecture=SMALL, n_instances=1, max_iter=2,
                  patches_per_epoch=64, learning_rate=1e-2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        averaged = RecurrentCNNSegmenter(weight_averaging=0.9,
                                         **params).fit(X, y)
        # Averaging leaves training as it was: the same seed without it
        # ends at the weights the extra row must use.
        last = RecurrentCNNSegmenter(**params).fit(X, y)
    args = argparse.Namespace(test_time_flip=True, test_time_scales=None)
    row = {"model": "m", **evaluate(averaged, X, y, [0, 1, 2])}
    rows = augmented_rows(averaged, row, X, y, [0, 1, 2], args)
    assert [r["model"] for r in rows] == [
        "m, test-time flip", "m, last weights (not averaged)",
        "m, last weights (not averaged), test-time flip"]
    assert rows[1]["confusion"] == evaluate(last, X, y, [0, 1, 2])[
        "confusion"]
    assert rows[1]["confusion"] != row["confusion"]
    last.set_params(test_time_flip=True)
    assert rows[2]["confusion"] == evaluate(last, X, y, [0, 1, 2])[
        "confusion"]
    # The model given keeps its averaged weights and settings.
    assert averaged._training_weights is not None
    assert averaged.test_time_flip is False
