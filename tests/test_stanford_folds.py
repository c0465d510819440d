"""benchmarks/stanford_folds.py: the 5-fold table from models trained one
fold at a time (and stanford.py --fold K, which saves them)."""

import argparse
import copy
import json
import os
import sys
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import Bunch

from skrcnn import RecurrentCNNSegmenter
from skrcnn.model_selection import (STANFORD_DUPLICATE_PAIRS,
                                    canonical_stanford_split, stanford_folds)
from scenes import colour_scenes

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..",
                                "benchmarks"))
import stanford  # noqa: E402
import stanford_folds as fold_table  # noqa: E402
from _protocol import add_training_arguments, parse_training_args  # noqa: E402
from stanford import load_resumable, save_resumable  # noqa: E402


def _synthetic_names(n=715):
    """Stanford-like stems with the three duplicate pairs among them."""
    pairs = [stem for pair in STANFORD_DUPLICATE_PAIRS for stem in pair]
    others = [f"{9000000 + i:07d}" for i in range(n - len(pairs))]
    return pairs + others


@pytest.mark.parametrize("fold", range(5))
def test_a_paper_fold_model_is_scored_on_all_its_test_images(fold):
    names = _synthetic_names()
    np.testing.assert_array_equal(
        fold_table.scored_test_images(names, fold, canonical=False),
        stanford_folds(names)[fold][1])


def _not_seen_by_canonical_model(names):
    """Paper fold 0's test images, less those the canonical model trained
    on or trained on a byte-identical copy of (a slow loop)."""
    train = {names[i] for i in canonical_stanford_split(names)[0]}
    twin = {a: b for a, b in STANFORD_DUPLICATE_PAIRS}
    twin.update({b: a for a, b in STANFORD_DUPLICATE_PAIRS})
    return [i for i in stanford_folds(names)[0][1]
            if names[i] not in train and twin.get(names[i]) not in train]


def test_a_canonical_model_skips_fold_0_images_it_has_seen():
    names = _synthetic_names()
    kept = fold_table.scored_test_images(names, 0, canonical=True)
    assert list(kept) == _not_seen_by_canonical_model(names)


def test_on_the_real_names_the_canonical_model_skips_the_pair(
        real_stanford):
    names = [os.path.splitext(os.path.basename(f))[0]
             for f in real_stanford.filenames]
    test = stanford_folds(real_stanford.filenames)[0][1]
    kept = fold_table.scored_test_images(real_stanford.filenames, 0,
                                         canonical=True)
    assert len(test) == 143 and len(kept) == 141
    assert sorted(names[i] for i in set(test) - set(kept)) == [
        "6000257", "6000348"]
    assert list(kept) == _not_seen_by_canonical_model(names)


def _tiny_dataset(n=10):
    X, y = colour_scenes(n, shape=(16, 16))
    return Bunch(images=list(X), labels=list(y),
                 filenames=[f"{1000000 + i:07d}" for i in range(n)],
                 class_names=["red", "green", "blue"])


def _save_fold_model(tmp_path, data, fold, train_s, seed):
    train = stanford_folds(data.filenames)[fold][0]
    model = RecurrentCNNSegmenter(
        hidden_sizes=(2, 2), n_instances=2, crop_size=None, max_iter=2,
        random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 2 epochs do
        model.fit([data.images[i] for i in train],
                  [data.labels[i] for i in train])
    path = str(tmp_path / f"fold{fold}.joblib")
    save_resumable(path, model, train_s, [], stanford.split_name(False, fold))
    return path, model


def _share_right(model, data, test):
    """The share of the ``test`` images' pixels ``model`` labels right, one
    image at a time; every pixel is labelled here, so it is the pixel
    accuracy."""
    hits = sum(np.sum(model.predict([data.images[i]])[0] == data.labels[i])
               for i in test)
    return hits / sum(data.labels[i].size for i in test)


@pytest.mark.parametrize("superpixels", [False, True])
def test_models_of_two_folds_are_scored_on_their_own_test_images(
        tmp_path, monkeypatch, superpixels):
    data = _tiny_dataset()
    monkeypatch.setattr(fold_table, "load_stanford",
                        lambda *args, **kwargs: data)
    saved = [_save_fold_model(tmp_path, data, fold, 60.0 * (fold + 1), fold)
             for fold in (3, 1)]
    stem = str(tmp_path / "out")
    extra = ["--superpixels"] if superpixels else []
    assert fold_table.main([saved[0][0], saved[1][0], "--test-time-flip",
                            "--output", stem, *extra]) == 0
    with open(stem + ".json") as f:
        result = json.load(f)
    models = ["rcnn2, 2 instances", "rcnn2, 2 instances, test-time flip"]
    if superpixels:
        models = [m + tail for m in models for tail in ("", ", superpixels")]
    assert [r["model"] for r in result["rows"]] == models * 2
    assert [s["model"] for s in result["summary"]] == models
    if superpixels:
        # The labelling averaged over segments, as the estimator gives it.
        voted = [r for r in result["rows"]
                 if r["model"] == "rcnn2, 2 instances, superpixels"]
        for row, (path, model) in zip(voted, saved[::-1]):
            test = stanford_folds(data.filenames)[row["fold"]][1]
            assert row["pixel_accuracy"] == pytest.approx(_share_right(
                copy.copy(model).set_params(superpixels="felzenszwalb"),
                data, test))
    plain = [r for r in result["rows"] if r["model"] == models[0]]
    assert [r["fold"] for r in plain] == [1, 3]
    for row, (path, model) in zip(plain, saved[::-1]):
        test = stanford_folds(data.filenames)[row["fold"]][1]
        assert row["pixel_accuracy"] == pytest.approx(
            _share_right(model, data, test))
        assert row["test_images"] == len(test) == 2
    summary, flipped = result["summary"][0], result["summary"][-1]
    assert summary["folds"] == 2 and summary["train_s"] == (240.0 + 120.0) / 2
    assert summary["pixel_accuracy"] == pytest.approx(
        np.mean([r["pixel_accuracy"] for r in plain]))
    assert "flip" in flipped["model"] and flipped["folds"] == 2
    with open(stem + ".md") as f:
        assert "2 of the 5 paper folds (folds 1, 3)" in f.read()


@pytest.mark.parametrize("sidecar, message", [
    (None, ".json (its fold and training time, written by stanford.py "
           "--save-model) is missing"),
    ({"split": None, "train_s": 1.0}, "not trained on one whole paper fold"),
    ({"split": "fold 5 of 5", "train_s": 1.0}, "says split 'fold 5 of 5'"),
])
def test_models_without_a_whole_fold_are_refused_before_loading(
        tmp_path, monkeypatch, capsys, sidecar, message):
    def loaded(*args, **kwargs):
        raise AssertionError("the data was loaded before the models were "
                             "checked")
    monkeypatch.setattr(fold_table, "load_stanford", loaded)
    path = tmp_path / "m.joblib"
    path.write_bytes(b"")
    if sidecar is not None:
        (tmp_path / "m.joblib.json").write_text(json.dumps(sidecar))
    with pytest.raises(SystemExit):
        fold_table.main([str(path)])
    assert message in capsys.readouterr().err


def test_a_fold_given_twice_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(fold_table, "load_stanford", None)
    paths = []
    for name in ("a", "b"):
        path = tmp_path / f"{name}.joblib"
        path.write_bytes(b"")
        (tmp_path / f"{name}.joblib.json").write_text(json.dumps(
            {"split": "fold 2 of 5", "train_s": 1.0}))
        paths.append(str(path))
    with pytest.raises(SystemExit):
        fold_table.main(paths)
    assert "fold 2 is given twice" in capsys.readouterr().err


def test_a_fold_model_resumes_on_its_own_fold_only(tmp_path, capsys):
    data = _tiny_dataset()
    path, model = _save_fold_model(tmp_path, data, 2, 30.0, 0)
    parser = argparse.ArgumentParser()
    add_training_arguments(parser)
    args = parse_training_args(parser, ["--no-plain"])
    resumed, train_s, _ = load_resumable(path, args, parser, "fold 2 of 5")
    assert train_s == 30.0 and resumed.t_ == model.t_
    for split in ("fold 1 of 5", "canonical fold 0"):
        with pytest.raises(SystemExit):
            load_resumable(path, args, parser, split)
        assert (f"not trained on the whole {split} (" in
                capsys.readouterr().err)
