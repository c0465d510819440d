"""benchmarks/_protocol.py: training on a time budget."""

import os
import sys
import warnings

import pytest

from skrcnn import RecurrentCNNSegmenter
from scenes import SMALL, colour_scenes

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..",
                                "benchmarks"))
from _protocol import train_for  # noqa: E402


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
