"""benchmarks/_protocol.py: training on a time budget, and the extra rows
of test-time augmentation and weight averaging."""

import os
import sys
import argparse
import copy
import warnings

import numpy as np
import pytest

from skrcnn import RecurrentCNNSegmenter
from scenes import SMALL, colour_scenes

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..",
                                "benchmarks"))
from _protocol import (Curve, add_training_arguments,  # noqa: E402
                       evaluate, parse_training_args, scored_rows,
                       training_params, train_for)
from stanford import load_resumable, save_resumable  # noqa: E402


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
    logged = []
    row = {"fold": 0, "model": "m", "train_s": 60.0}
    rows = scored_rows(averaged, row, X, y, [0, 1, 2], args, logged.append)
    assert [r["model"] for r in rows] == [
        "m", "m, test-time flip", "m, last weights (not averaged)",
        "m, last weights (not averaged), test-time flip"]
    assert len(logged) == 4 and logged[2].startswith(
        "fold 0 m, last weights (not averaged): pixel")
    assert rows[0]["confusion"] == evaluate(averaged, X, y, [0, 1, 2])[
        "confusion"]
    assert rows[2]["confusion"] == evaluate(last, X, y, [0, 1, 2])[
        "confusion"]
    assert rows[2]["confusion"] != rows[0]["confusion"]
    last.set_params(test_time_flip=True)
    assert rows[3]["confusion"] == evaluate(last, X, y, [0, 1, 2])[
        "confusion"]
    # The model given keeps its averaged weights and settings.
    assert averaged._training_weights is not None
    assert averaged.test_time_flip is False


def test_superpixel_rows_score_what_the_estimator_labels(monkeypatch):
    X, y = colour_scenes(4, shape=(24, 30))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = RecurrentCNNSegmenter(
            architecture=SMALL, n_instances=1, max_iter=2, crop_size=None,
            learning_rate=1e-2, random_state=0).fit(X, y)
    args = argparse.Namespace(test_time_flip=True, test_time_scales=None,
                              superpixels=True)
    labelled = []
    map_images = RecurrentCNNSegmenter._map_images

    def counted(self, images, *rest, **kwargs):
        labelled.append(len(images))
        return map_images(self, images, *rest, **kwargs)

    monkeypatch.setattr(RecurrentCNNSegmenter, "_map_images", counted)
    rows = scored_rows(model, {"model": "m"}, X, y, [0, 1, 2], args)
    monkeypatch.undo()
    # One network pass over the images per labelling (plain, flipped)
    # gives both its rows.
    assert sum(labelled) == 2 * len(X)
    assert [r["model"] for r in rows] == [
        "m", "m, superpixels", "m, test-time flip",
        "m, test-time flip, superpixels"]
    # Each labelling without and with superpixels, from one pass, scored
    # as the estimator's own plain and superpixel labellings are.
    for index, flip in ((0, False), (2, True)):
        alone = copy.copy(model).set_params(test_time_flip=flip)
        assert rows[index]["confusion"] == evaluate(alone, X, y, [0, 1, 2])[
            "confusion"]
        voted = copy.copy(alone).set_params(superpixels="felzenszwalb")
        assert rows[index + 1]["confusion"] == evaluate(
            voted, X, y, [0, 1, 2])["confusion"]
    assert rows[1]["confusion"] != rows[0]["confusion"]
    assert model.superpixels is None and model.test_time_flip is False


def test_checkpoints_save_the_model_and_resume_from_the_last(tmp_path,
                                                          capsys):
    X, y = colour_scenes(4)
    # --resume takes rcnn2 models only: a tiny one.
    model = RecurrentCNNSegmenter(hidden_sizes=(2, 2), n_instances=1,
                                  crop_size=None, learning_rate=1e-2,
                                  random_state=0)
    path = str(tmp_path / "rcnn2.joblib")
    saved = []

    def save(model, train_s, points):
        save_resumable(path, model, train_s, points, split="canonical fold 0")
        saved.append(train_s)

    # A point after every epoch's worth of (fake) time: every call scores.
    curve = Curve(model, X, y, [0, 1, 2], minutes=1e-9, log=lambda _: None,
                  on_point=save)
    for epoch in range(3):
        model.partial_fit(X, y, classes=[0, 1, 2])
        curve(60.0 * (epoch + 1))
    assert saved == [60.0, 120.0, 180.0]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "rcnn2.joblib", "rcnn2.joblib.json"]  # no partial files left

    # What the last checkpoint wrote is what --resume reads back.
    args = argparse.Namespace(**{k: getattr(model, k) for k in (
        "sampling", "crop_size", "instance_loss", "horizontal_flip",
        "solver", "momentum", "learning_rate", "batch_size",
        "patches_per_epoch", "device", "weight_averaging",
        "distillation_weight")},
        scale_range=None)
    parser = argparse.ArgumentParser()
    resumed, train_s, points = load_resumable(path, args, parser)
    assert train_s == 180.0 and points == curve.points and len(points) == 3
    assert resumed.n_iter_ == 3 and resumed.t_ == model.t_
    for a, b in zip(resumed.coefs_, model.coefs_):
        np.testing.assert_array_equal(a, b)
    assert resumed.get_params() == {**model.get_params(),
                                    **training_params(args)}

    # A model whose sidecar is from another save (a save cut between the
    # two renames) is refused rather than resumed with the wrong curve.
    with open(path + ".json") as f:
        sidecar = f.read()
    model.partial_fit(X, y)
    save_resumable(path, model, 240.0, curve.points, split="canonical fold 0")
    with open(path + ".json", "w") as f:
        f.write(sidecar)
    with pytest.raises(SystemExit):
        load_resumable(path, args, parser)
    updates = model.t_ - model.t_ // 4  # 4 epochs of equal steps, 3 saved
    assert (f"belongs to another save of it ({updates} updates, the model "
            f"has {model.t_})") in capsys.readouterr().err


def test_resume_keeps_the_saved_options_the_command_line_leaves(tmp_path):
    """A resumed model trains on with its own learning rate, flips, scales
    and class weights unless the command line gives others."""
    from _protocol import rows_for_fold
    X, y = colour_scenes(3, shape=(16, 16))
    model = RecurrentCNNSegmenter(
        hidden_sizes=(2, 2), n_instances=2, crop_size=1, learning_rate=1e-4,
        horizontal_flip=True, scale_range=(0.8, 1.25), batch_size=2,
        patches_per_epoch=2, class_weight={0: 1.0, 1: 2.0, 2: 3.0},
        max_iter=1, random_state=0).fit(X, y)
    path = str(tmp_path / "rcnn2.joblib")
    save_resumable(path, model, 60.0, [], split="canonical fold 0")
    parser = argparse.ArgumentParser()
    add_training_arguments(parser)

    def resume(*argv):
        args = parse_training_args(parser, ["--no-plain", *argv])
        return args, load_resumable(path, args, parser)
    _, (kept, _, _) = resume()
    assert (kept.learning_rate, kept.horizontal_flip, kept.scale_range) == (
        1e-4, True, (0.8, 1.25))
    args, (changed, _, _) = resume("--learning-rate", "3e-5",
                                   "--no-horizontal-flip", "--no-scale-range",
                                   "--class-weight", "none")
    assert (changed.learning_rate, changed.horizontal_flip,
            changed.scale_range) == (3e-5, False, None)
    # Class weights are set per fold: kept unless --class-weight is given.
    for argv, weights in [((), {0: 1.0, 1: 2.0, 2: 3.0}),
                          (("--class-weight", "none"), None)]:
        args, resumed = resume("--train-minutes", "1e-9", *argv)
        rows_for_fold(0, X, y, X[:1], y[:1], 3, args, resumed=resumed,
                      log=lambda line: None)
        assert resumed[0].class_weight == weights


def test_summary_gives_the_mean_of_the_folds_and_the_pooled_scores():
    from _protocol import summarise

    def row(fold, confusion, pixel, class_avg):
        return {"fold": fold, "model": "m", "pixel_accuracy": pixel,
                "mean_class_accuracy": class_avg, "mean_iou": 0.0,
                "train_s": 10.0 * (fold + 1), "predict_s_per_image": 1.0,
                "confusion": confusion}
    rows = [row(0, [[8, 2], [0, 10]], 0.9, 0.9),
            row(1, [[1, 0], [1, 2]], 0.75, (1 + 2 / 3) / 2)]
    (summary,) = summarise(rows)
    assert summary["folds"] == 2 and summary["train_s"] == 15.0
    assert summary["pixel_accuracy"] == pytest.approx(0.825)
    assert summary["mean_class_accuracy"] == pytest.approx(
        (0.9 + (1 + 2 / 3) / 2) / 2)
    # Pooled: [[9, 2], [1, 12]].
    assert summary["pooled"]["pixel_accuracy"] == pytest.approx(21 / 24)
    assert summary["pooled"]["mean_class_accuracy"] == pytest.approx(
        (9 / 11 + 12 / 13) / 2)
    assert summary["pooled"]["mean_iou"] == pytest.approx(
        (9 / 12 + 12 / 15) / 2)


def _protocol_args(*argv):
    from _protocol import add_training_arguments, parse_training_args
    parser = argparse.ArgumentParser()
    add_training_arguments(parser)
    return parse_training_args(parser, list(argv))


def test_distil_from_plain_hands_rcnn2_the_plain_network_s_probabilities(
        monkeypatch):
    from _protocol import rows_for_fold
    X, y = colour_scenes(3, shape=(16, 16))
    calls = []
    original = RecurrentCNNSegmenter.partial_fit

    def spy(self, X, y, classes=None, teacher_proba=None):
        calls.append((self.architecture, teacher_proba))
        return original(self, X, y, classes, teacher_proba=teacher_proba)

    monkeypatch.setattr(RecurrentCNNSegmenter, "partial_fit", spy)
    args = _protocol_args("--distil-from-plain", "--train-minutes", "1e-9",
                          "--patches-per-epoch", "2", "--batch-size", "2",
                          "--crop-size", "1", "--distillation-weight", "0.25")
    rows, rcnn2, _ = rows_for_fold(0, X, y, X[:1], y[:1], 3, args,
                                   plain_hidden=(2, 2), log=lambda line: None)
    assert [r["model"] for r in rows] == ["plain", "rcnn2, 2 instances",
                                          "rcnn2, 3 instances"]
    assert [a for a, _ in calls] == ["plain", "rcnn2", "rcnn2"]
    assert calls[0][1] is None
    assert rcnn2.distillation_weight == 0.25
    # The independent reference: the plain network's flip- and
    # scale-averaged probabilities, recomputed from a model trained alike.
    plain = RecurrentCNNSegmenter(**{
        **RecurrentCNNSegmenter().get_params(),
        **training_params(args), "architecture": "plain",
        "hidden_sizes": (2, 2), "n_instances": 1,
        "instance_schedule": "fixed", "random_state": 0})
    plain.partial_fit(X, y, classes=[0, 1, 2])
    plain.set_params(test_time_flip=True, test_time_scales=(0.75, 1.0, 1.25))
    expected = plain.predict_proba(X)
    for proba in (calls[1][1], calls[2][1]):
        assert len(proba) == 3
        for ours, theirs in zip(proba, expected):
            assert ours.dtype == np.float16
            np.testing.assert_allclose(ours, theirs, atol=1e-3)


@pytest.mark.parametrize("argv,message", [
    (["--distil-from-plain", "--no-plain"], "not with --no-plain, --no-rcnn2"),
    (["--distil-from-plain", "--no-rcnn2"], "not with --no-plain, --no-rcnn2"),
    (["--distil-from-plain", "--teacher", "{teacher}"],
     "not with --no-plain, --no-rcnn2 or --teacher"),
    (["--teacher", "{teacher}", "--no-rcnn2"],
     "--teacher distils into rcnn2: not with --no-rcnn2"),
    (["--no-plain", "--no-rcnn2"], "leave no model to train"),
    (["--teacher", "{teacher}", "--instance-loss", "all"],
     "distillation trains the last instance's scores only")])
def test_distillation_options_that_contradict_each_other(argv, message,
                                                         tmp_path, capsys):
    teacher = tmp_path / "t.joblib"
    teacher.write_bytes(b"")  # exists: the contradiction is the error
    with pytest.raises(SystemExit):
        _protocol_args(*[a.format(teacher=teacher) for a in argv])
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("as_model_file", [False, True])
def test_teacher_file_hands_rcnn2_its_probabilities(tmp_path, monkeypatch,
                                                    as_model_file):
    import joblib
    from _protocol import rows_for_fold
    from skrcnn._cli_io import save_model
    X, y = colour_scenes(3, shape=(16, 16))
    teacher = _model().partial_fit(X, y, classes=[0, 1, 2])
    path = tmp_path / "teacher.joblib"
    if as_model_file:  # as 'skrcnn train' writes it
        save_model(str(path), teacher)
    else:
        joblib.dump(teacher, path)
    seen = []
    original = RecurrentCNNSegmenter.partial_fit

    def spy(self, X, y, classes=None, teacher_proba=None):
        seen.append(teacher_proba)
        return original(self, X, y, classes, teacher_proba=teacher_proba)

    monkeypatch.setattr(RecurrentCNNSegmenter, "partial_fit", spy)
    args = _protocol_args("--no-plain", "--teacher", str(path),
                          "--train-minutes", "1e-9", "--patches-per-epoch",
                          "2", "--batch-size", "2", "--crop-size", "1")
    rows, _, _ = rows_for_fold(0, X, y, X[:1], y[:1], 3, args,
                               log=lambda line: None)
    assert [r["model"] for r in rows] == ["rcnn2, 2 instances",
                                          "rcnn2, 3 instances"]
    teacher.set_params(test_time_flip=True, test_time_scales=(0.75, 1.0, 1.25))
    expected = teacher.predict_proba(X)
    assert len(seen) == 2
    for proba in seen:
        for ours, theirs in zip(proba, expected):
            np.testing.assert_allclose(ours, theirs, atol=1e-3)


class _ClockedModel:
    """Stands in for the estimator in train_for: every epoch takes 10 s of
    a fake clock and records the learning rate it ran at."""

    def __init__(self, clock):
        self.clock, self.learning_rate, self.rates = clock, 1.0, []
        self.n_iter_, self.loss_curve_ = 0, []

    def set_params(self, learning_rate):
        self.learning_rate = learning_rate
        return self

    def partial_fit(self, X, y, classes=None, teacher_proba=None):
        self.rates.append(self.learning_rate)
        self.clock[0] += 10.0
        self.n_iter_ += 1
        self.loss_curve_.append(0.0)
        return self


def test_step_decay_is_taken_at_each_epoch_s_predicted_middle(monkeypatch):
    """30 s, epochs of 10 s, the last quarter decayed: the third epoch
    (20-30 s, middle at 25 s = 83%) runs decayed, although it starts
    before 75% of the budget."""
    import _protocol
    clock = [0.0]
    monkeypatch.setattr(_protocol.time, "perf_counter", lambda: clock[0])
    model = _ClockedModel(clock)
    spent = train_for(model, None, None, 30.0, [0], log=lambda line: None,
                      decay_last=0.25, decay_factor=0.1)
    assert spent == 30.0
    assert model.rates == [1.0, 1.0, 0.1]
    assert model.learning_rate == 1.0  # restored after the stage


def test_a_stage_s_last_point_carries_the_rate_its_last_epoch_ran_at(
        monkeypatch):
    """train_for puts the base rate back when the stage ends; the point
    added then records the decayed rate the model was trained at."""
    import _protocol
    clock = [0.0]
    monkeypatch.setattr(_protocol.time, "perf_counter", lambda: clock[0])
    model = _ClockedModel(clock)
    model.n_instances = 2
    curve = Curve(model, None, None, [0], minutes=100, log=lambda line: None)
    train_for(model, None, None, 30.0, [0], log=lambda line: None,
              checkpoint=curve, decay_last=0.25, decay_factor=0.1)
    curve.add_scores(30.0, dict(pixel_accuracy=0.5, mean_class_accuracy=0.4,
                                mean_iou=0.3))
    assert model.rates[-1] == 0.1 and model.learning_rate == 1.0
    assert curve.points[-1]["learning_rate"] == 0.1


@pytest.mark.parametrize("argv, message", [
    (["--train-minutes", "0"], "--train-minutes must be > 0, got 0"),
    (["--decay-last", "1.5"], "--decay-last must be in [0, 1), got 1.5"),
    (["--decay-factor", "0"], "--decay-factor must be in (0, 1], got 0"),
    (["--curve-minutes", "-1"], "--curve-minutes must be >= 0, got -1"),
    (["--crop-size", "-2"], "--crop-size must be >= 0, got -2"),
    (["--distillation-weight", "2"], "--distillation-weight must be in "
     "[0, 1], got 2"),
    (["--distil-from-plain", "--instance-loss", "all"],
     "not with --instance-loss all"),
    (["--teacher", "no-such-teacher.joblib"],
     "--teacher no-such-teacher.joblib: no such file"),
    (["--weight-averaging", "1.5"], "--weight-averaging must be a real "
     "number in (0, 1), got 1.5"),
    (["--solver", "sgd", "--momentum", "-1"], "--momentum must be"),
    (["--scale-range", "1.25", "0.8"], "--scale-range must be"),
    (["--rcnn2-hidden-sizes", "0", "5"], "--rcnn2-hidden-sizes must be 2 "
     "positive integers"),
    (["--device", "foo"], "--device must be one of"),
    (["--seed", "-1"], "--seed must be >= 0, got -1"),
    (["--test-time-scales", "0"], "--test-time-scales must be"),
])
def test_bad_training_options_are_refused_before_any_work(argv, message,
                                                          capsys):
    with pytest.raises(SystemExit):
        _protocol_args(*argv)
    assert message in capsys.readouterr().err


def test_each_stage_s_last_scores_end_its_part_of_the_curve():
    """With checkpoints far apart, the curve still holds each stage's final
    (decayed) model: the points the rows report."""
    from _protocol import rows_for_fold
    X, y = colour_scenes(3, shape=(16, 16))
    args = _protocol_args("--no-plain", "--train-minutes", "1e-9",
                          "--curve-minutes", "100", "--patches-per-epoch",
                          "2", "--batch-size", "2", "--crop-size", "1",
                          "--rcnn2-hidden-sizes", "2", "2")
    rows, _, curve = rows_for_fold(0, X, y, X[:1], y[:1], 3, args,
                                   log=lambda line: None)
    assert [p["train_s"] for p in curve.points] == [r["train_s"]
                                                    for r in rows]
    assert [p["instances"] for p in curve.points] == [2, 3]
    for point, row in zip(curve.points, rows):
        assert point["pixel_accuracy"] == row["pixel_accuracy"]


@pytest.mark.parametrize("argv, message", [
    (["--folds", "0"], "--folds must be 1 to 5, got 0"),
    (["--folds", "6"], "--folds must be 1 to 5, got 6"),
    (["--canonical", "--folds", "3"], "not with --folds"),
    (["--n-test", "0"], "--n-test must be at least 1, got 0"),
    (["--no-plain", "--save-model", "m.joblib", "--no-rcnn2"],
     "--no-plain and --no-rcnn2"),
    (["--save-model", "m.joblib", "--no-rcnn2"], "not with --no-rcnn2"),
    (["--output", "no-such-folder/run"],
     "--output: no-such-folder/run.json: folder"),
    (["--save-model", "no-such-folder/m.joblib"],
     "--save-model: no-such-folder/m.joblib: folder"),
    (["--fold", "5"], "--fold must be 0 to 4, got 5"),
    (["--fold", "1", "--canonical"], "not with --canonical or --folds"),
    (["--fold", "1", "--folds", "2"], "not with --canonical or --folds"),
    (["--folds", "2", "--resume", "m.joblib"],
     "use it with --canonical or --fold K"),
    (["--folds", "2", "--teacher", __file__],  # any existing file
     "use it with --canonical or --fold K"),
])
def test_stanford_options_are_checked_before_loading(argv, message,
                                                     monkeypatch, capsys):
    import stanford

    def loaded(*args, **kwargs):
        raise AssertionError("the data was loaded before the options were "
                             "checked")
    monkeypatch.setattr(stanford, "load_stanford", loaded)
    with pytest.raises(SystemExit):
        stanford.main(argv)
    assert message in capsys.readouterr().err


def test_sampling_dense_mode_is_whole_images():
    import sampling
    assert sampling.make("dense", {}).crop_size is None
    assert sampling.make("crop8", {}).crop_size == 8
    assert sampling.make("patch", {}).sampling == "patch"


def test_resolution_trains_its_own_model_without_model_option(
        monkeypatch, tmp_path, capsys):
    """Without --model it builds rcnn2 from the shared training defaults
    (here not trained: train_for is stubbed) and reports every resolution,
    shift-and-stitch and dense agreeing."""
    import resolution
    from sklearn.utils import Bunch
    X, y = colour_scenes(10, shape=(12, 12))
    data = Bunch(filenames=[f"{i:07d}" for i in range(10)], images=list(X),
                 labels=list(y), class_names=["a", "b", "c"])
    monkeypatch.setattr(resolution, "load_stanford", lambda home, parser=None: data)
    trained = []

    def fake_train(model, X, y, seconds, classes, label=""):
        trained.append(seconds)
        model.set_params(patches_per_epoch=2, batch_size=2, crop_size=1)
        model.partial_fit(X[:1], y[:1], classes=classes)
    monkeypatch.setattr(resolution, "train_for", fake_train)
    out = tmp_path / "r.json"
    assert resolution.main(["--train-minutes", "0.5", "--n-images", "1",
                            "--json", str(out)]) == 0
    assert trained == [30.0]
    assert out.exists()
    text = capsys.readouterr().out
    assert "| 1/8 | dense | 1 |" in text and "FAIL" not in text


@pytest.mark.parametrize("bundled", [True, False])
def test_resolution_takes_a_skrcnn_train_file_or_a_bare_estimator(
        monkeypatch, tmp_path, capsys, bundled):
    """README: 'benchmarks/resolution.py --model model.joblib' on the file
    'skrcnn train' writes (a bundle with class names), not only on a bare
    joblib estimator (it failed: 'dict' object has no attribute ...)."""
    import joblib
    import resolution
    from sklearn.utils import Bunch
    from skrcnn import RecurrentCNNSegmenter
    from skrcnn._cli_io import save_model
    X, y = colour_scenes(10, shape=(12, 12))
    data = Bunch(filenames=[f"{i:07d}" for i in range(10)], images=list(X),
                 labels=list(y), class_names=["a", "b", "c"])
    monkeypatch.setattr(resolution, "load_stanford",
                        lambda home, parser=None: data)
    model = RecurrentCNNSegmenter(
        architecture=(("conv", 4, 3), ("pool", 2), ("tanh",),
                      ("conv", "classes", 1)),
        n_instances=2, max_iter=1, patches_per_epoch=4, batch_size=2,
        random_state=0).fit(X[:2], y[:2])
    path = tmp_path / "m.joblib"
    if bundled:
        save_model(str(path), model, ["a", "b", "c"], {"dataset": "x"})
    else:
        joblib.dump(model, path)
    assert resolution.main(["--model", str(path), "--n-images", "1",
                            "--json", str(tmp_path / "r.json")]) == 0
    text = capsys.readouterr().out
    assert "2 instances" in text and "| 1/4 | dense | 1 |" in text
    (tmp_path / "bad.joblib").write_text("no model")
    with pytest.raises(SystemExit):
        resolution.main(["--model", str(tmp_path / "bad.joblib")])
    assert "--model " in capsys.readouterr().err


def _tiny_gpu_benchmark_args():
    """benchmarks/gpu.py's options for a dry run on NumPy, shrunk."""
    import gpu

    args = gpu.parse_args(["--device", "cpu", "--quick"])
    args.torch_device = "cpu"
    args.batches, args.image_shapes = (2,), ((20, 26),)
    args.repeats, args.min_seconds = 1, 0.0
    return gpu, args


def test_gpu_benchmark_dry_run_on_numpy():
    gpu, args = _tiny_gpu_benchmark_args()
    sync = gpu.make_sync(np, None, "cpu")
    training = gpu.training_rows(args, np, None, sync)
    assert [row["net"] for row in training] == ["rcnn2-2", "rcnn2-3",
                                                 "plain"]
    assert all(row["ours_per_s"] > 0 for row in training)
    (prediction,) = gpu.prediction_rows(args, np, None, sync)
    assert prediction["image"] == "20x26" and prediction["ours_s"] > 0


def test_gpu_benchmark_pytorch_reference_agrees_with_skrcnn():
    torch = pytest.importorskip("torch")
    gpu, args = _tiny_gpu_benchmark_args()
    (row,) = gpu.prediction_rows(args, np, torch,
                                 gpu.make_sync(np, torch, "cpu"))
    # The same weights through PyTorch's dilated pass: the same scores.
    assert row["max_abs_diff"] < 1e-5


def test_sift_flow_benchmark_scores_its_models_on_the_test_split(
        tmp_path, monkeypatch, capsys):
    import json
    from sklearn.metrics import confusion_matrix
    from sklearn.utils import Bunch
    import sift_flow

    X, y = colour_scenes(8, shape=(20, 20))
    data = Bunch(images=list(X), labels=list(y),
                 class_names=["red", "green", "blue"],
                 train_indices=np.arange(6), test_indices=np.array([6, 7]))
    monkeypatch.setattr(sift_flow, "load_sift_flow",
                        lambda **kwargs: data)
    trained = []
    rows_for_fold = sift_flow.rows_for_fold

    def keeping_the_model(*args, **kwargs):
        rows, rcnn2, curve = rows_for_fold(*args, **kwargs)
        trained.append(rcnn2)
        return rows, rcnn2, curve

    monkeypatch.setattr(sift_flow, "rows_for_fold", keeping_the_model)
    stem = tmp_path / "sift"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one short epoch per model
        assert sift_flow.main([
            "--data-home", str(tmp_path), "--train-minutes", "0.001",
            "--rcnn2-hidden-sizes", "2", "2", "--patches-per-epoch", "32",
            "--output", str(stem)]) == 0
    assert "SIFT Flow: 6 train / 2 test images, 3 classes" in (
        capsys.readouterr().out)
    with open(f"{stem}.json") as f:
        rows = json.load(f)["rows"]
    assert [r["model"] for r in rows] == [
        "rcnn2, 2 instances", "rcnn2, 3 instances", "plain"]
    for row in rows:
        assert np.sum(row["confusion"]) == 2 * 20 * 20
    # The 3-instance row scores the final rcnn2 on the two test images.
    predicted = trained[0].predict(list(X[6:]))
    assert rows[1]["confusion"] == confusion_matrix(
        np.ravel(y[6:]), np.ravel(predicted), labels=[0, 1, 2]).tolist()
    with open(f"{stem}.md") as f:
        markdown = f.read()
    assert "SIFT Flow, 6/2 split" in markdown and ">= 77%" in markdown


def test_sift_flow_benchmark_names_a_data_home_without_the_data(
        tmp_path, capsys):
    import sift_flow
    with pytest.raises(SystemExit) as exit_:
        sift_flow.main(["--data-home", str(tmp_path)])
    assert exit_.value.code == 2
    assert f"--data-home {tmp_path}: " in capsys.readouterr().err
