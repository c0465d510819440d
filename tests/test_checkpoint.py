"""The rcnn2 checkpoints kept in the repository
(``benchmarks/checkpoints/``): later training sessions resume them with
``benchmarks/stanford.py --resume`` (the canonical fold's, and the paper
folds' of the 5-fold run trained fold by fold), and users can label
photographs with them, so they must load and label with the current code."""

import json
import pathlib

import joblib
import numpy as np
import pytest

from skrcnn import RecurrentCNNSegmenter
from skrcnn.metrics import pixel_accuracy
from skrcnn.model_selection import canonical_stanford_split, stanford_folds

# Every lineage kept: rcnn2_stanford_fold0.joblib (square-root class
# weights), any other rcnn2 lineage of the canonical fold beside it, and
# rcnn2_stanford_paper_foldK.joblib of the paper's fold K.
CHECKPOINTS = sorted((pathlib.Path(__file__).resolve().parent.parent
                      / "benchmarks" / "checkpoints").glob("*.joblib"))


def test_the_kept_lineage_is_there():
    assert "rcnn2_stanford_fold0.joblib" in [c.name for c in CHECKPOINTS]


@pytest.fixture(scope="module", params=CHECKPOINTS, ids=lambda c: c.name)
def checkpoint(request):
    with open(str(request.param) + ".json") as f:
        sidecar = json.load(f)
    return joblib.load(request.param), sidecar, request.param.name


def model_name(checkpoint):
    return checkpoint[2]


def checkpoint_fold(checkpoint):
    """The paper fold K of rcnn2_stanford_paper_foldK.joblib."""
    return int(model_name(checkpoint).split("paper_fold")[1][0])


def test_checkpoint_is_the_papers_rcnn2_with_its_sidecar(checkpoint):
    model, sidecar, _ = checkpoint
    assert isinstance(model, RecurrentCNNSegmenter)
    assert model.architecture == "rcnn2"
    assert model.n_instances == sidecar["n_instances"] == 3
    expected = ("fold {} of 5".format(checkpoint_fold(checkpoint))
                if "paper_fold" in model_name(checkpoint)
                else "canonical fold 0")
    assert sidecar["split"] == expected
    assert model.t_ == sidecar["updates"]
    assert sidecar["train_s"] >= sidecar["curve"][-1]["train_s"]
    np.testing.assert_array_equal(model.classes_, np.arange(8))
    # The paper's CNN2: 8x8 conv 11 -> 25 (8 score planes + RGB), 8x8 conv
    # 25 -> 50, 1x1 conv 50 -> 8.
    assert [c.shape for c in model.coefs_] == [
        (25, 11, 8, 8), (50, 25, 8, 8), (8, 50, 1, 1)]
    assert all(c.dtype == np.float32 for c in model.coefs_)


def test_checkpoint_labels_stanford_test_images(checkpoint, real_stanford):
    model, sidecar, _ = checkpoint
    data = real_stanford
    if sidecar["split"] == "canonical fold 0":
        _, test = canonical_stanford_split(data.filenames)
    else:
        _, test = stanford_folds(data.filenames)[checkpoint_fold(checkpoint)]
    images = [data.images[i] for i in test[:12]]
    labels = [data.labels[i] for i in test[:12]]
    predicted = model.predict(images)
    assert [p.shape for p in predicted] == [t.shape for t in labels]
    # Untrained or misloaded weights label 10-30% of the pixels correctly;
    # the 112-minute checkpoint labels 71% of these 12 (75% of all 143).
    assert pixel_accuracy(labels, predicted) > 0.6
