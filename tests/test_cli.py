"""``skrcnn train / predict / evaluate`` in a quick mode: a tiny network on
a dozen synthetic scenes, folders written by the tests, every error path
(one line on stderr, exit status 2, no traceback), ``-q`` and the progress
bar. ``skrcnn demo`` is tested in test_demo.py."""

import io
import json
import os
import pathlib
import subprocess
import sys

import joblib
import numpy as np
import pytest
from PIL import Image

from skrcnn import RecurrentCNNSegmenter, gpu_available
from skrcnn._cli_io import (InputError, Progress, load_model, name_files,
                            palette, read_image, read_label_map,
                            save_model, write_label_png)
from skrcnn.cli import main
from skrcnn.datasets import make_scenes
from skrcnn.metrics import mean_class_accuracy, mean_iou, pixel_accuracy
from skrcnn.superpixels import (average_over_segments,
                               felzenszwalb_segmentations)

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
SCENE_NAMES = ["sky", "water", "mountain", "grass", "tree", "building"]
# A tiny, fast network: rcnn2 geometry with 4 and 8 channels, 1 instance.
TINY = ["--hidden-sizes", "4,8", "--instances", "1", "--seed", "0",
        "--crop-size", "0"]


def run(capsys, *args):
    """``main(args)`` in-process: (exit status, stdout, stderr)."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:  # argparse: usage errors and --help
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *fragments):
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("skrcnn"), err
    assert "error:" in lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "scenes.joblib"
    assert main(["train", "--dataset", "scenes", "--n-images", "12",
                 "--epochs", "1", "-q", "-o", str(path)] + TINY) == 0
    return path


def write_scenes(folder, n, seed, label_format=("png", "npy")):
    """Scenes as image files and label files; returns (images, labels)."""
    images, labels = make_scenes(n, random_state=seed, return_X_y=True)
    folder.mkdir(parents=True, exist_ok=True)
    for i, (image, label_map) in enumerate(zip(images, labels)):
        Image.fromarray(image).save(folder / f"scene{i}.png")
        kind = label_format[i % len(label_format)]
        target = folder.parent / (folder.name + "-labels")
        target.mkdir(exist_ok=True)
        if kind == "png":
            Image.fromarray(np.where(label_map < 0, 255, label_map)
                            .astype(np.uint8)).save(target / f"scene{i}.png")
        else:
            np.save(target / f"scene{i}.npy", label_map)
    return images, labels


# ------------------------------------------------------------------ train

def test_train_prints_epochs_and_saves_a_model_with_class_names(
        tmp_path, capsys):
    path = tmp_path / "m.joblib"
    code, out, err = run(capsys, "train", "--dataset", "scenes",
                         "--n-images", "6", "--epochs", "2", "-o", path,
                         "--device", "cpu", *TINY)
    assert code == 0, err
    assert "Iteration 1, loss" in out and "Iteration 2, loss" in out
    assert f"saved {path}" in out
    assert err == ""  # no ConvergenceWarning noise for a fixed epoch count
    from threadpoolctl import threadpool_info
    blas = [lib["num_threads"] for lib in threadpool_info()
            if lib["user_api"] == "blas"]
    threads = max(blas, default=1)
    assert (f"up to 2 epochs, on the CPU ({threads} thread"
            f"{'s' if threads > 1 else ''})") in out
    bundle = joblib.load(path)
    assert bundle["format"] == "skrcnn-model"
    assert bundle["class_names"] == SCENE_NAMES
    assert bundle["training"]["dataset"] == "scenes"
    assert bundle["training"]["fold"] == "train"
    model = bundle["model"]
    assert isinstance(model, RecurrentCNNSegmenter)
    assert model.n_iter_ == 2 and model.hidden_sizes == (4, 8)
    assert model.instance_loss == "last" and model.class_weight is None
    assert model.verbose == 0  # the saved model predicts silently


def test_train_options_reach_the_estimator(tmp_path, capsys):
    path = tmp_path / "m.joblib"
    code, out, err = run(capsys, "train", "--dataset", "scenes",
                         "--n-images", "4", "--epochs", "1", "-q",
                         "--instance-loss", "all", "--schedule", "random",
                         "--horizontal-flip", "--class-weight", "balanced",
                         "--scale-range", "0.8", "1.25",
                         "--weight-averaging", "0.99",
                         "-o", path, *TINY)
    assert code == 0, err
    model = joblib.load(path)["model"]
    assert (model.instance_loss, model.instance_schedule,
            model.horizontal_flip, model.class_weight, model.scale_range,
            model.weight_averaging) == (
        "all", "random", True, "balanced", (0.8, 1.25), 0.99)
    assert model.class_weight_.shape == (model.n_classes_,)


def test_train_plain_runs_one_instance_unless_told(tmp_path, capsys):
    path = tmp_path / "m.joblib"
    code, out, err = run(capsys, "train", "--dataset", "scenes",
                         "--n-images", "3", "--epochs", "1", "-q",
                         "--architecture", "plain", "--hidden-sizes", "4,4",
                         "--seed", "0", "--crop-size", "1",
                         "--patches-per-epoch", "4", "--batch-size", "2",
                         "-o", path)
    assert code == 0, err
    assert joblib.load(path)["model"].n_instances == 1
    code, out, err = run(capsys, "train", "--dataset", "scenes",
                         "--n-images", "3", "--epochs", "1", "-q",
                         "--architecture", "plain", "--instances", "2",
                         "-o", path)
    assert code == 2 and "images must be at least 256x256" in err


def test_resuming_a_plain_model_keeps_its_instances():
    """The 1-instance default of --architecture plain is for new models: a
    resumed plain model of 2 instances stays at 2."""
    from skrcnn._cli_commands import estimator_params
    from skrcnn.cli import build_parser
    parser = build_parser()
    new = parser.parse_args(["train", "--dataset", "scenes", "-o", "m",
                             "--architecture", "plain"])
    assert estimator_params(new)["n_instances"] == 1
    resumed = parser.parse_args(["train", "--dataset", "scenes", "-o", "m",
                                 "--architecture", "plain", "--resume", "m"])
    assert "n_instances" not in estimator_params(resumed)


def test_every_parameter_names_an_option_that_sets_it():
    """Errors name options as '--' + the argparse destination with dashes;
    each must be a real option of train, predict or evaluate, with that
    destination."""
    from skrcnn import _cli_commands
    from skrcnn.cli import build_parser
    commands = next(action for action in build_parser()._actions
                    if hasattr(action, "choices") and action.choices
                    and "train" in action.choices).choices
    destination_of = {option: action.dest
                      for name in ("train", "predict", "evaluate")
                      for action in commands[name]._actions
                      for option in action.option_strings}
    for parameter, destination in _cli_commands._DESTINATIONS.items():
        option = _cli_commands._option(parameter)
        assert destination_of.get(option) == destination, (parameter, option)


def test_train_quiet_prints_nothing(tmp_path, capsys):
    code, out, err = run(capsys, "train", "--dataset", "scenes",
                         "--n-images", "4", "--epochs", "1", "-q", "-o",
                         tmp_path / "m.joblib", *TINY)
    assert (code, out, err) == (0, "", "")


def test_train_and_evaluate_on_folders(tmp_path, capsys):
    images, labels = write_scenes(tmp_path / "train", 6, seed=5)
    labels_dir = tmp_path / "train-labels"
    path = tmp_path / "m.joblib"
    code, out, err = run(capsys, "train", "--images", tmp_path / "train",
                         "--labels", labels_dir, "--epochs", "1", "-q",
                         "--class-names", ",".join(SCENE_NAMES), "-o", path,
                         *TINY)
    assert code == 0, err
    model, segmenter, names, training = load_model(str(path))
    assert names == SCENE_NAMES
    assert training["images"] == str(tmp_path / "train")
    # The folders hold exactly the scenes: 8-bit PNG (255 = unknown) and
    # .npy labels read back as written.
    for i in range(6):
        suffix = "png" if i % 2 == 0 else "npy"
        np.testing.assert_array_equal(
            read_label_map(str(labels_dir / f"scene{i}.{suffix}")),
            labels[i])
    code, out, err = run(capsys, "evaluate", "--model", path, "--images",
                         tmp_path / "train", "--labels", labels_dir,
                         "--json", "-", "-q")
    assert code == 0, err
    report = json.loads(out)  # --json -: nothing but JSON on stdout
    predicted = segmenter.predict(list(images))
    assert report["pixel_accuracy"] == pytest.approx(
        pixel_accuracy(labels, predicted))
    assert report["n_images"] == 6
    assert {row["name"] for row in report["classes"]} <= set(SCENE_NAMES)


def test_file_suffixes_match_in_any_case(tmp_path, capsys):
    """A.JPG pairs with A.PNG, A.NPY or A.REGIONS.TXT, as a.jpg with
    a.png: images were already found whatever the case of their suffix."""
    images, labels = make_scenes(3, random_state=2, return_X_y=True)
    folder, labels_dir = tmp_path / "imgs", tmp_path / "labs"
    folder.mkdir()
    labels_dir.mkdir()
    for i, suffix in enumerate(["PNG", "NPY", "Regions.Txt"]):
        Image.fromarray(images[i]).save(folder / f"S{i}.PNG", format="PNG")
        target = labels_dir / f"S{i}.{suffix}"
        if suffix == "PNG":
            Image.fromarray(labels[i].astype(np.uint8)).save(target,
                                                              format="PNG")
        elif suffix == "NPY":
            with open(target, "wb") as f:
                np.save(f, labels[i])
        else:
            np.savetxt(target, labels[i], fmt="%d")
        np.testing.assert_array_equal(read_label_map(str(target)), labels[i])
    path = tmp_path / "m.joblib"
    code, _, err = run(capsys, "train", "--images", folder, "--labels",
                       labels_dir, "--epochs", "1", "-q", "-o", path, *TINY)
    assert code == 0, err


def test_train_on_stanford_layout_uses_the_canonical_fold(tmp_path, capsys):
    home = tmp_path / "home"
    rng = np.random.default_rng(0)
    for sub in ("images", "labels"):
        (home / "iccv09Data" / sub).mkdir(parents=True)
    for k in range(5):
        stem = f"000{k}047"
        image = rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
        Image.fromarray(image).save(home / "iccv09Data" / "images" /
                                    f"{stem}.jpg")
        matrix = rng.integers(-1, 8, size=(24, 32))
        (home / "iccv09Data" / "labels" / f"{stem}.regions.txt").write_text(
            "\n".join(" ".join(map(str, row)) for row in matrix) + "\n")
    path = tmp_path / "m.joblib"
    code, out, err = run(capsys, "train", "--dataset", "stanford",
                         "--data-home", home, "--epochs", "1", "-o", path,
                         *TINY)
    assert code == 0, err
    assert "on 4 Stanford Background images (train fold)" in out
    assert load_model(str(path))[2][0] == "sky"
    code, out, err = run(capsys, "evaluate", "--model", path, "--dataset",
                         "stanford", "--data-home", home, "-q")
    assert code == 0, err
    assert "1 Stanford Background image (test fold)" in out
    assert "foreground object" in out or "building" in out or "sky" in out


def test_ctrl_c_in_training_saves_the_model_reached(tmp_path, capsys,
                                                    interrupt_epoch):
    interrupt_epoch(2)
    path = tmp_path / "m.joblib"
    code, out, err = run(capsys, "train", "--dataset", "scenes",
                         "--n-images", "4", "--epochs", "5", "-o", path,
                         *TINY)
    assert code == 0, err
    assert err.startswith("skrcnn: warning: training interrupted after 1 "
                          "epochs")
    assert len(err.splitlines()) == 1
    assert load_model(str(path))[1].n_iter_ == 1


def test_ctrl_c_elsewhere_exits_130(model_file, tmp_path, capsys,
                                    monkeypatch):
    def interrupted(path):
        raise KeyboardInterrupt

    monkeypatch.setattr("skrcnn._cli_commands.read_image", interrupted)
    image = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    code, out, err = run(capsys, "predict", "--model", model_file, image,
                         "-o", tmp_path)
    assert (code, err) == (130, "skrcnn: interrupted\n")


def test_resume_goes_on_exactly_as_warm_start_in_python(tmp_path, capsys):
    first, resumed = tmp_path / "first.joblib", tmp_path / "resumed.joblib"
    data = ["--dataset", "scenes", "--n-images", "6"]
    assert main(["train", *data, "--epochs", "2", "-q", "-o", str(first),
                 "--horizontal-flip", *TINY]) == 0
    code, out, err = run(capsys, "train", *data, "--resume", first,
                         "--epochs", "1", "--learning-rate", "0.0005",
                         "-o", resumed)
    assert code == 0, err
    assert f"resuming {first} (after 2 epochs)" in out
    assert "up to 1 epoch more" in out and "(3 in all)" in out
    bundle = joblib.load(resumed)
    model = bundle["model"]
    # Options given change, the others (and the network) are the saved ones.
    assert (model.n_iter_, model.learning_rate, model.hidden_sizes,
            model.horizontal_flip, model.n_instances) == (
        3, 0.0005, (4, 8), True, 1)
    assert model.warm_start is False and model.verbose == 0
    assert bundle["class_names"] == SCENE_NAMES
    assert bundle["training"]["epochs"] == 1
    assert [r["epochs"] for r in bundle["training"]["earlier"]] == [2]
    # The independent reference: the first model trained on in Python.
    reference = joblib.load(first)["model"]
    X, y = make_scenes(6, random_state=0, return_X_y=True)
    reference.set_params(warm_start=True, max_iter=1, learning_rate=5e-4)
    reference.fit(X, y)
    assert model.t_ == reference.t_ > joblib.load(first)["model"].t_
    assert model.loss_curve_ == reference.loss_curve_
    for ours, theirs in zip(model.coefs_ + model.intercepts_,
                            reference.coefs_ + reference.intercepts_):
        np.testing.assert_array_equal(ours, theirs)


def test_resume_turns_a_flag_off_and_notes_earlier_training_images(
        tmp_path, capsys):
    first, resumed = tmp_path / "first.joblib", tmp_path / "resumed.joblib"
    # First on the test fold, then on the train fold: evaluating on the
    # test fold must still say that the model has seen those images.
    assert main(["train", "--dataset", "scenes", "--fold", "test",
                 "--n-images", "4", "--epochs", "1", "-q", "-o", str(first),
                 "--horizontal-flip", *TINY]) == 0
    assert main(["train", "--dataset", "scenes", "--n-images", "4",
                 "--epochs", "1", "-q", "--resume", str(first),
                 "--no-horizontal-flip", "-o", str(resumed)]) == 0
    model = joblib.load(resumed)["model"]
    assert model.horizontal_flip is False and model.n_iter_ == 2
    code, out, err = run(capsys, "evaluate", "--model", resumed,
                         "--dataset", "scenes", "--fold", "test",
                         "--n-images", "1")
    assert code == 0, err
    assert "trained on the test fold of scenes" in err


def test_resume_keeps_the_network_and_the_file_on_bad_input(tmp_path,
                                                             capsys):
    first = tmp_path / "first.joblib"
    assert main(["train", "--dataset", "scenes", "--n-images", "4",
                 "--epochs", "1", "-q", "-o", str(first), *TINY]) == 0
    before = first.read_bytes()
    code, _, err = run(capsys, "train", "--dataset", "scenes",
                       "--n-images", "4", "--resume", first,
                       "--hidden-sizes", "8,8", "-o", first)
    assert_one_line_error(code, err, "--hidden-sizes 8,8", str(first),
                          "hidden_sizes=(4, 8)")
    # Labels the model has never seen: named, before any training.
    folder = tmp_path / "imgs"
    images, labels = write_scenes(folder, 2, seed=3, label_format=("npy",))
    np.save(tmp_path / "imgs-labels" / "scene1.npy",
            np.full(labels[1].shape, 9))
    code, _, err = run(capsys, "train", "--images", folder, "--labels",
                       tmp_path / "imgs-labels", "--resume", first,
                       "-o", first)
    assert_one_line_error(code, err, "scene1", "[9]")
    code, _, err = run(capsys, "train", "--dataset", "scenes", "--resume",
                       tmp_path / "missing.joblib", "-o", first)
    assert_one_line_error(code, err, "missing.joblib", "no such model file")
    # A new seed would be recorded in the file but never used.
    code, _, err = run(capsys, "train", "--dataset", "scenes",
                       "--n-images", "4", "--resume", first, "--seed", "5",
                       "-o", first)
    assert_one_line_error(code, err, "--seed 5", "seeded with 0")
    assert first.read_bytes() == before


def test_teacher_targets_are_the_teacher_s_probabilities(model_file,
                                                        tmp_path, capsys):
    student = tmp_path / "student.joblib"
    code, out, err = run(capsys, "train", "--dataset", "scenes",
                         "--n-images", "6", "--epochs", "1", "--teacher",
                         model_file, "--distillation-weight", "0.3",
                         "-o", student, *TINY)
    assert code == 0, err
    assert f"labelling 6 training images with the teacher {model_file}" in out
    bundle = joblib.load(student)
    assert bundle["model"].distillation_weight == 0.3
    assert bundle["training"]["teacher"]["file"] == str(model_file)
    # The independent reference: the same fit in Python, on the teacher's
    # probabilities (kept as float16 by the command).
    teacher = joblib.load(model_file)["model"]
    X, y = make_scenes(6, random_state=0, return_X_y=True)
    proba = [p.astype(np.float16) for p in teacher.predict_proba(X)]
    reference = RecurrentCNNSegmenter(
        hidden_sizes=(4, 8), n_instances=1, crop_size=None, max_iter=1,
        distillation_weight=0.3, random_state=0).fit(X, y,
                                                     teacher_proba=proba)
    assert bundle["model"].loss_curve_ == reference.loss_curve_
    for ours, theirs in zip(bundle["model"].coefs_, reference.coefs_):
        np.testing.assert_array_equal(ours, theirs)
    # Without the teacher, another model.
    plain = tmp_path / "plain.joblib"
    assert main(["train", "--dataset", "scenes", "--n-images", "6",
                 "--epochs", "1", "-q", "-o", str(plain), *TINY]) == 0
    assert joblib.load(plain)["model"].loss_curve_ != reference.loss_curve_


def test_a_teacher_labels_on_the_student_s_device(model_file, tmp_path,
                                                  capsys):
    """A teacher saved with device="gpu" still labels the training images
    on a machine without one: it runs where the student trains."""
    bundle = joblib.load(model_file)
    bundle["model"].set_params(device="gpu")
    teacher = tmp_path / "gpu-teacher.joblib"
    joblib.dump(bundle, teacher)
    code, _, err = run(capsys, "train", "--dataset", "scenes", "--n-images",
                       "2", "--epochs", "1", "--teacher", teacher,
                       "--device", "cpu", "-o", tmp_path / "s.joblib", *TINY)
    assert code == 0, err


def test_a_teacher_s_training_images_count_as_seen(tmp_path, capsys):
    teacher, student = tmp_path / "teacher.joblib", tmp_path / "s.joblib"
    assert main(["train", "--dataset", "scenes", "--fold", "test",
                 "--n-images", "4", "--epochs", "1", "-q", "-o",
                 str(teacher), *TINY]) == 0
    assert main(["train", "--dataset", "scenes", "--n-images", "4",
                 "--epochs", "1", "-q", "--teacher", str(teacher),
                 "-o", str(student), *TINY]) == 0
    code, out, err = run(capsys, "evaluate", "--model", student,
                         "--dataset", "scenes", "--fold", "test",
                         "--n-images", "1")
    assert code == 0, err
    assert "trained on the test fold of scenes" in err


def test_bad_teacher_is_one_line_before_training(model_file, tmp_path,
                                                 capsys, monkeypatch):
    output = tmp_path / "student.joblib"
    code, _, err = run(capsys, "train", "--dataset", "scenes",
                       "--n-images", "4", "--teacher",
                       tmp_path / "missing.joblib", "-o", output, *TINY)
    assert_one_line_error(code, err, "missing.joblib", "no such model file")
    # A teacher of other classes: named, with both class lists.
    folder = tmp_path / "imgs"
    _, labels = write_scenes(folder, 3, seed=4, label_format=("npy",))
    for i, label_map in enumerate(labels):  # classes 0..2 only
        np.save(tmp_path / "imgs-labels" / f"scene{i}.npy",
                np.where(label_map < 0, -1, label_map % 3))
    code, _, err = run(capsys, "train", "--images", folder, "--labels",
                       tmp_path / "imgs-labels", "--teacher", model_file,
                       "-o", output, *TINY)
    assert_one_line_error(code, err, f"--teacher {model_file}",
                          "[0, 1, 2, 3, 4, 5]", "has [0, 1, 2]")
    code, _, err = run(capsys, "train", "--dataset", "scenes",
                       "--teacher", model_file, "--instance-loss", "all",
                       "-o", output, *TINY)
    assert_one_line_error(code, err, "--instance-loss last, not all")
    # An error of the teacher's labelling names the teacher and the file.
    def failing(self, X):
        raise ValueError("X[1] is not what the teacher expected")

    monkeypatch.setattr(RecurrentCNNSegmenter, "predict_proba", failing)
    folder = tmp_path / "three"
    write_scenes(folder, 3, seed=5)
    code, _, err = run(capsys, "train", "--images", folder, "--labels",
                       tmp_path / "three-labels", "--teacher", model_file,
                       "-o", output, *TINY)
    assert_one_line_error(code, err, f"--teacher {model_file}", "scene1")
    monkeypatch.undo()
    code, _, err = run(capsys, "train", "--dataset", "scenes",
                       "--teacher", model_file, "--distillation-weight",
                       "1.5", "-o", output, *TINY)
    assert code == 2 and "--distillation-weight" in err
    assert not output.exists()


def test_missing_dataset_names_the_option(tmp_path, capsys, monkeypatch):
    from skrcnn import datasets

    def missing(data_home=None):
        raise datasets.DataNotFoundError(
            f"SIFT Flow dataset not found in {data_home!r} and "
            "download_if_missing=False. Download it, or pass data_home= "
            "(or set SKRCNN_DATA) to the folder that holds it.")

    monkeypatch.setattr(datasets, "load_sift_flow", missing)
    code, _, err = run(capsys, "train", "--dataset", "sift-flow",
                       "--data-home", tmp_path, "-o", tmp_path / "m.joblib")
    assert_one_line_error(code, err, "not found", "pass --data-home")


# ---------------------------------------------------------------- predict

def test_predict_writes_label_pngs_overlays_and_a_progress_bar(
        model_file, tmp_path, capsys):
    images, _ = make_scenes(2, random_state=7, return_X_y=True)
    folder = tmp_path / "in"
    folder.mkdir()
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"photo{i}.png")
    (folder / "notes.txt").write_text("not an image")
    out_dir = tmp_path / "out"
    code, out, err = run(capsys, "predict", "--model", model_file, folder,
                         "--output-dir", out_dir)
    assert code == 0, err
    assert err.splitlines() == [
        "predict 1/2 [############            ] photo0.png",
        "predict 2/2 [########################] photo1.png"]
    assert "2 images" in out
    assert sorted(os.listdir(out_dir)) == [
        "photo0_labels.png", "photo0_overlay.png", "photo1_labels.png",
        "photo1_overlay.png"]
    segmenter = load_model(str(model_file))[1]
    for i, image in enumerate(images):
        with Image.open(out_dir / f"photo{i}_labels.png") as written:
            assert written.mode == "L"
            labels = np.asarray(written)
        np.testing.assert_array_equal(labels, segmenter.predict([image])[0])
        with Image.open(out_dir / f"photo{i}_overlay.png") as written:
            blended = np.asarray(written)
        colours = np.round(palette(6)[labels] * 255)
        expected = np.round(0.5 * image + 0.5 * colours)
        np.testing.assert_allclose(blended, expected, atol=1)


def test_predict_checks_every_file_before_labelling_any(model_file,
                                                        tmp_path, capsys):
    images, _ = make_scenes(1, random_state=7, return_X_y=True)
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(images[0]).save(folder / "a.png")
    (folder / "b.png").write_bytes(b"not a picture")
    out_dir = tmp_path / "out"
    code, _, err = run(capsys, "predict", "--model", model_file, folder,
                       "-o", out_dir)
    assert_one_line_error(code, err, "b.png: not a readable image")
    assert not out_dir.exists()  # nothing was labelled or written first


def test_predict_into_its_input_folder_skips_its_earlier_outputs(
        model_file, tmp_path, capsys):
    """A second run into the input folder labels the same images again,
    not the label maps and overlays the first one wrote (it labelled its
    own outputs, and so on at every run)."""
    images, _ = make_scenes(2, random_state=7, return_X_y=True)
    for name, image in zip(("a.png", "b.jpg"), images):
        Image.fromarray(image).save(tmp_path / name)
    inputs = {name: (tmp_path / name).read_bytes() for name in ("a.png",
                                                                "b.jpg")}
    code, out, err = run(capsys, "predict", "--model", model_file, tmp_path,
                         "-o", tmp_path)
    assert code == 0, err
    assert "skipping" not in out
    first = {name: (tmp_path / name).read_bytes()
             for name in os.listdir(tmp_path)}
    assert len(first) == 6
    code, out, err = run(capsys, "predict", "--model", model_file, tmp_path,
                         "-o", tmp_path)
    assert code == 0, err
    assert "skipping 4 files that an earlier 'skrcnn predict' wrote" in out
    assert "of 2 images" in out
    assert {name: (tmp_path / name).read_bytes()
            for name in os.listdir(tmp_path)} == first
    for name, data in inputs.items():
        assert first[name] == data


def test_train_and_evaluate_skip_predict_outputs_in_the_images_folder(
        model_file, tmp_path, capsys):
    """Label maps and overlays that predict wrote beside the images are
    not taken for images without labels, by evaluate and train; nor by
    predict run on a folder of nothing but its outputs."""
    write_scenes(tmp_path / "imgs", 2, seed=3, label_format=("png",))
    labels = tmp_path / "imgs-labels"
    code, _, err = run(capsys, "predict", "--model", model_file,
                       tmp_path / "imgs", "-o", tmp_path / "imgs", "-q")
    assert code == 0, err
    assert len(os.listdir(tmp_path / "imgs")) == 6
    code, out, err = run(capsys, "evaluate", "--model", model_file,
                         "--images", tmp_path / "imgs", "--labels", labels)
    assert code == 0, err
    assert "skipping 4 files that an earlier 'skrcnn predict' wrote" in err
    assert "pixel accuracy" in out
    code, out, err = run(capsys, "train", "--images", tmp_path / "imgs",
                         "--labels", labels, "--epochs", "1", "-o",
                         tmp_path / "m.joblib", *TINY)
    assert code == 0, err
    assert "skipping 4 files" in out
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    for name in os.listdir(tmp_path / "imgs"):
        if name.endswith(("_labels.png", "_overlay.png")):
            os.replace(tmp_path / "imgs" / name, outputs / name)
    code, out, err = run(capsys, "predict", "--model", model_file, outputs,
                         "-o", outputs)
    assert code == 2 and "no images" in err.lower(), (out, err)
    assert len(os.listdir(outputs)) == 4


def test_evaluate_on_the_training_folder_says_so(tmp_path, capsys):
    write_scenes(tmp_path / "imgs", 2, seed=4, label_format=("npy",))
    model = tmp_path / "m.joblib"
    code, _, err = run(capsys, "train", "--images", tmp_path / "imgs",
                       "--labels", tmp_path / "imgs-labels", "--epochs", "1",
                       "-q", "-o", model, *TINY)
    assert code == 0, err
    code, out, err = run(capsys, "evaluate", "--model", model, "--images",
                         tmp_path / "imgs", "--labels",
                         tmp_path / "imgs-labels")
    assert code == 0, err
    assert f"trained on the images in {tmp_path / 'imgs'}" in err
    assert "these images overlap it" in err


@pytest.mark.parametrize("argv, message", [
    (["--folds", "1"], "--folds must be at least 2"),
    (["--epochs", "0"], "--epochs must be at least 1"),
    (["--images", "2", "--folds", "3"], "--images (2) must be at least "
     "--folds (3)")])
def test_demo_option_errors_are_the_demo_s(argv, message, capsys):
    code, _, err = run(capsys, "demo", *argv)
    assert code == 2
    assert err.startswith("skrcnn demo: error: " + message)
    assert "see 'skrcnn demo --help'" in err


def test_device_advice_is_in_option_syntax(tmp_path, capsys, monkeypatch):
    from skrcnn import backend
    # No CuPy, whatever this machine has.
    for name, value in (("_cupy", None), ("_gpu_visible", None),
                        ("_gpu_problem", None)):
        monkeypatch.setattr(backend, name, value)
    code, _, err = run(capsys, "train", "--dataset", "scenes", "--device",
                       "gpu", "-o", tmp_path / "m.joblib")
    assert_one_line_error(code, err, "--device gpu was requested but CuPy "
                          "is not installed", "use --device cpu or "
                          "--device auto")
    assert "device='" not in err


def test_predict_names_a_file_given_twice(model_file, tmp_path, capsys):
    image = make_scenes(1, random_state=9, return_X_y=True)[0][0]
    Image.fromarray(image).save(tmp_path / "one.png")
    code, _, err = run(capsys, "predict", "--model", model_file,
                       tmp_path / "one.png", tmp_path, "-o", tmp_path / "o")
    assert_one_line_error(code, err, "one.png: given twice")


def test_predict_refuses_to_overwrite_an_input_named_like_an_output(
        model_file, tmp_path, capsys):
    """A user's own picture named like an output (not marked as one) is an
    input; the run is refused rather than writing over it."""
    images, _ = make_scenes(2, random_state=7, return_X_y=True)
    Image.fromarray(images[0]).save(tmp_path / "cat.jpg")
    Image.fromarray(images[1]).save(tmp_path / "cat_overlay.png")
    before = (tmp_path / "cat_overlay.png").read_bytes()
    for argv in ([tmp_path], [tmp_path / "cat.jpg",
                              tmp_path / "cat_overlay.png"]):
        code, _, err = run(capsys, "predict", "--model", model_file, *argv,
                           "-o", tmp_path)
        assert_one_line_error(code, err, "cat_overlay.png: an input, would "
                              "be overwritten")
    assert (tmp_path / "cat_overlay.png").read_bytes() == before
    assert not (tmp_path / "cat_labels.png").exists()
    # Without overlays nothing clashes.
    code, _, err = run(capsys, "predict", "--model", model_file, tmp_path,
                       "-o", tmp_path, "--no-overlay", "-q")
    assert code == 0, err
    assert (tmp_path / "cat_overlay.png").read_bytes() == before


def test_predict_quiet_single_image_and_options(model_file, tmp_path,
                                                capsys):
    image = make_scenes(1, random_state=8, return_X_y=True)[0][0]
    Image.fromarray(image).save(tmp_path / "one.jpg", quality=95)
    code, out, err = run(capsys, "predict", "--model", model_file,
                         tmp_path / "one.jpg", "-o", tmp_path / "out",
                         "--resolution", "1/2", "--inference", "shift",
                         "--no-overlay", "-q")
    assert (code, out, err) == (0, "", "")
    assert os.listdir(tmp_path / "out") == ["one_labels.png"]


def test_predict_accepts_a_bare_estimator_file(model_file, tmp_path, capsys):
    bare = tmp_path / "bare.joblib"
    joblib.dump(load_model(str(model_file))[1], bare)
    image = make_scenes(1, random_state=9, return_X_y=True)[0][0]
    Image.fromarray(image).save(tmp_path / "x.png")
    code, out, err = run(capsys, "predict", "--model", bare,
                         tmp_path / "x.png", "-o", tmp_path, "-q")
    assert code == 0, err
    assert (tmp_path / "x_labels.png").exists()


def test_progress_bar_redraws_in_place_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    with Progress("predict", 3, stream=stream, width=6) as bar:
        bar.update(1, "long-name.png")
        bar.update(2, "b.png")
    # Interrupted after 2 of 3: the line is ended so an error starts afresh.
    assert stream.getvalue() == ("\rpredict 1/3 [##    ] long-name.png"
                                 "\rpredict 2/3 [####  ] b.png        \n")
    quiet = Terminal()
    Progress("predict", 3, enabled=False, stream=quiet).update(1)
    assert quiet.getvalue() == ""


# --------------------------------------------------------------- evaluate

def test_evaluate_prints_scores_and_writes_json(model_file, tmp_path,
                                                capsys):
    json_path = tmp_path / "scores.json"
    code, out, err = run(capsys, "evaluate", "--model", model_file,
                         "--dataset", "scenes", "--n-images", "3", "--json",
                         json_path)
    assert code == 0, err
    assert [line.split()[0] for line in err.splitlines()] == ["evaluate"] * 3
    report = json.loads(json_path.read_text())
    images, labels = make_scenes(3, random_state=1, return_X_y=True)
    predicted = load_model(str(model_file))[1].predict(images)
    assert report["pixel_accuracy"] == pytest.approx(
        pixel_accuracy(labels, predicted))
    assert report["mean_class_accuracy"] == pytest.approx(
        mean_class_accuracy(labels, predicted))
    assert report["mean_iou"] == pytest.approx(mean_iou(labels, predicted))
    assert f"pixel accuracy          {report['pixel_accuracy']:.4f}" in out
    assert "sky" in out and "mean IoU" in out
    rows = {row["name"]: row for row in report["classes"]}
    assert sum(row["pixels"] for row in rows.values()) == (labels >= 0).sum()


def test_evaluate_notes_when_model_and_data_name_labels_otherwise(
        model_file, tmp_path, capsys):
    model, segmenter, names, training = load_model(str(model_file))
    renamed = tmp_path / "renamed.joblib"
    save_model(str(renamed), model, ["sky", "tree"] + names[2:], training)
    code, out, err = run(capsys, "evaluate", "--model", renamed,
                         "--dataset", "scenes", "--n-images", "1")
    assert code == 0, err
    assert ("skrcnn: note: the model calls label 1 'tree' where the data "
            "calls it 'water' (1 of 6 labels named otherwise)") in err
    code, out, err = run(capsys, "evaluate", "--model", model_file,
                         "--dataset", "scenes", "--n-images", "1")
    assert code == 0 and "note" not in err


def test_a_reader_that_goes_away_ends_the_run_quietly(capsys, monkeypatch):
    """'skrcnn evaluate | head -1': the write that finds the pipe closed
    ends the run with SIGPIPE's status 141 and no error line."""
    from skrcnn import _cli_commands

    def reader_gone(args, say):
        raise BrokenPipeError(32, "Broken pipe")
    monkeypatch.setattr(_cli_commands, "evaluate", reader_gone)
    code, out, err = run(capsys, "evaluate", "--model", "m.joblib",
                         "--dataset", "scenes")
    assert (code, err) == (141, "")


def test_evaluate_with_test_time_flip_scores_the_mirror_averaged_labels(
        model_file, tmp_path, capsys):
    json_path = tmp_path / "scores.json"
    code, out, err = run(capsys, "evaluate", "--model", model_file,
                         "--dataset", "scenes", "--n-images", "2",
                         "--test-time-flip", "--json", json_path, "-q")
    assert code == 0, err
    report = json.loads(json_path.read_text())
    images, labels = make_scenes(2, random_state=1, return_X_y=True)
    segmenter = load_model(str(model_file))[1]
    predicted = segmenter.set_params(test_time_flip=True).predict(images)
    assert report["test_time_flip"] is True
    assert report["pixel_accuracy"] == pytest.approx(
        pixel_accuracy(labels, predicted))
    assert "averaged with the mirror" in out


def test_evaluate_with_test_time_scales_scores_the_scale_averaged_labels(
        model_file, tmp_path, capsys):
    json_path = tmp_path / "scores.json"
    code, out, err = run(capsys, "evaluate", "--model", model_file,
                         "--dataset", "scenes", "--n-images", "2",
                         "--test-time-scales", "0.75", "1", "--json",
                         json_path, "-q")
    assert code == 0, err
    report = json.loads(json_path.read_text())
    images, labels = make_scenes(2, random_state=1, return_X_y=True)
    segmenter = load_model(str(model_file))[1]
    predicted = segmenter.set_params(
        test_time_scales=(0.75, 1.0)).predict(images)
    assert report["test_time_scales"] == [0.75, 1.0]
    assert report["pixel_accuracy"] == pytest.approx(
        pixel_accuracy(labels, predicted))
    assert "averaged over scales 0.75 1" in out


def test_evaluate_with_superpixels_scores_the_segment_averaged_labels(
        model_file, tmp_path, capsys):
    json_path = tmp_path / "scores.json"
    code, out, err = run(capsys, "evaluate", "--model", model_file,
                         "--dataset", "scenes", "--n-images", "2",
                         "--superpixels", "--json", json_path)
    assert code == 0, err
    report = json.loads(json_path.read_text())
    images, labels = make_scenes(2, random_state=1, return_X_y=True)
    segmenter = load_model(str(model_file))[1]
    plain = segmenter.predict_proba(images)
    # The segment-averaged probabilities, by the module function.
    voted = [segmenter.classes_[average_over_segments(
        p, felzenszwalb_segmentations(image)).argmax(-1)]
        for p, image in zip(plain, images)]
    assert report["superpixels"] == "felzenszwalb"
    assert report["pixel_accuracy"] == pytest.approx(
        pixel_accuracy(labels, voted))
    assert "averaged over felzenszwalb superpixels" in out


@pytest.mark.parametrize("parameter, saved, flag, off", [
    ("test_time_flip", True, "--no-test-time-flip", False),
    ("superpixels", "felzenszwalb", "--no-superpixels", None)])
def test_a_no_option_overrides_the_model_saved_setting(
        parameter, saved, flag, off, model_file, tmp_path, capsys):
    bundle = joblib.load(model_file)  # the file skrcnn train wrote
    segmenter = bundle["model"].set_params(**{parameter: saved})
    changed = tmp_path / "changed.joblib"
    joblib.dump(bundle, changed)
    json_path = tmp_path / "scores.json"
    code, _, err = run(capsys, "evaluate", "--model", changed, "--dataset",
                       "scenes", "--n-images", "2", flag, "--json",
                       json_path, "-q")
    assert code == 0, err
    report = json.loads(json_path.read_text())
    assert report[parameter] is off
    images, labels = make_scenes(2, random_state=1, return_X_y=True)
    plain = segmenter.set_params(**{parameter: off}).predict(images)
    assert report["pixel_accuracy"] == pytest.approx(
        pixel_accuracy(labels, plain))


def test_evaluate_rejects_a_zero_test_time_scale(model_file, capsys):
    code, out, err = run(capsys, "evaluate", "--model", model_file,
                         "--dataset", "scenes", "--test-time-scales", "0")
    assert code == 2
    assert "--test-time-scales" in err and "a number > 0" in err


def test_evaluate_on_the_training_fold_says_so(model_file, capsys):
    code, out, err = run(capsys, "evaluate", "--model", model_file,
                         "--dataset", "scenes", "--fold", "train",
                         "--n-images", "1")
    assert code == 0, err
    assert "overlap" in err
    code, out, err = run(capsys, "evaluate", "--model", model_file,
                         "--dataset", "scenes", "--fold", "train",
                         "--n-images", "1", "-q")
    assert err == "" and "pixel accuracy" in out  # scores stay with -q


# ------------------------------------------------------------------ files

def test_label_png_conventions(tmp_path):
    small = np.array([[0, 3], [254, 7]])
    write_label_png(str(tmp_path / "a.png"), small)
    with Image.open(tmp_path / "a.png") as written:
        assert written.mode == "L"
    np.testing.assert_array_equal(read_label_map(str(tmp_path / "a.png")),
                                  small)
    large = np.array([[0, 300], [65534, 2]])
    write_label_png(str(tmp_path / "b.png"), large)
    np.testing.assert_array_equal(read_label_map(str(tmp_path / "b.png")),
                                  large)
    # Unknown: 255 in 8-bit and palette PNGs, 65535 in 16-bit ones.
    Image.fromarray(np.array([[1, 255]], np.uint8)).save(tmp_path / "c.png")
    np.testing.assert_array_equal(read_label_map(str(tmp_path / "c.png")),
                                  [[1, -1]])
    Image.fromarray(np.array([[1, 65535]], np.uint16)).save(
        tmp_path / "d.png")
    np.testing.assert_array_equal(read_label_map(str(tmp_path / "d.png")),
                                  [[1, -1]])
    indexed = Image.fromarray(np.array([[2, 255]], np.uint8))
    indexed.putpalette([0, 0, 0, 200, 0, 0, 0, 200, 0] * 85 + [9])
    assert indexed.mode == "P"
    indexed.save(tmp_path / "e.png")
    np.testing.assert_array_equal(read_label_map(str(tmp_path / "e.png")),
                                  [[2, -1]])
    Image.fromarray(np.array([[[1, 2, 3]]], np.uint8)).save(tmp_path / "f.png")
    with pytest.raises(InputError, match="colour picture"):
        read_label_map(str(tmp_path / "f.png"))


def _png16(path, pixels, colour_type):
    """A 16-bit PNG written by hand (Pillow cannot write colour ones)."""
    import struct
    import zlib

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    height, width = pixels.shape[:2]
    rows = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes()
                    for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(rows))
                     + chunk(b"IEND", b""))


@pytest.mark.parametrize("colour_type,mode", [(2, "RGB"), (4, "RGBA")])
def test_16_bit_colour_label_pngs_are_refused_not_read_as_zeros(
        tmp_path, colour_type, mode):
    """Pillow reads a 16-bit RGB or grey-and-alpha PNG as 8 bits (the high
    bytes): labels 0..5 all became 0."""
    labels = np.arange(6).reshape(2, 3)
    channels = [labels] * 3 if colour_type == 2 else [labels, labels * 0 + 9]
    path = tmp_path / "x.png"
    _png16(path, np.dstack(channels), colour_type)
    with Image.open(path) as picture:
        assert picture.mode == mode
    with pytest.raises(InputError, match="x.png: a 16-bit PNG with colour"):
        read_label_map(str(path))


def test_npy_labels_past_int64_are_refused_not_wrapped(tmp_path):
    """A uint64 label of 2**63 would become -1 (unknown) as an int64."""
    path = tmp_path / "big.npy"
    np.save(path, np.full((2, 2), 2 ** 63, np.uint64))
    with pytest.raises(InputError, match=r"big.npy: holds the label "
                       r"9223372036854775808, outside the range"):
        read_label_map(str(path))
    np.save(path, np.eye(2, dtype=bool))  # a mask: labels 0 and 1
    np.testing.assert_array_equal(read_label_map(str(path)), np.eye(2))


def test_images_of_other_modes_become_rgb(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    Image.fromarray(grey).save(tmp_path / "g.png")
    assert read_image(str(tmp_path / "g.png")).shape == (3, 4, 3)
    rgba = np.zeros((3, 4, 4), np.uint8)
    Image.fromarray(rgba).save(tmp_path / "a.png")
    assert read_image(str(tmp_path / "a.png")).shape == (3, 4, 3)
    deep = (np.arange(12, dtype=np.uint16) * 5000).reshape(3, 4)
    Image.fromarray(deep).save(tmp_path / "d.png")
    image = read_image(str(tmp_path / "d.png"))
    assert image.dtype == np.float32 and image[2, 3, 0] == 55000


def test_estimator_messages_name_the_files():
    message = ("y[1] has shape (3, 4) but image 1 is (5, 6): each label map "
               "must match; X[0] is 2x2 pixels")
    assert name_files(message, ["a.png", "b.png"], ["a.npy", "b.npy"]) == (
        "b.npy has shape (3, 4) but b.png is (5, 6): each label map must "
        "match; a.png is 2x2 pixels")


# ----------------------------------------------------------------- errors

def _bad_inputs(tmp_path, model_file):
    """(name, argv, fragment of the message) for every kind of bad input."""
    images_dir = tmp_path / "imgs"
    write_scenes(images_dir, 2, seed=3, label_format=("png",))
    labels_dir = tmp_path / "imgs-labels"
    no_label = tmp_path / "nolabel"
    no_label.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(no_label / "x.png")
    mismatch = tmp_path / "mismatch"
    mismatch.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(mismatch / "x.png")
    np.save(mismatch / "x.npy", np.zeros((8, 9), np.int64))
    tiny = tmp_path / "tiny"
    tiny.mkdir()
    Image.fromarray(np.zeros((1, 5, 3), np.uint8)).save(tiny / "t.png")
    np.save(tiny / "t.npy", np.zeros((1, 5), np.int64))
    colour = tmp_path / "colour"
    colour.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(colour / "c.jpg")
    Image.fromarray(np.full((8, 8, 3), [9, 0, 0], np.uint8)).save(
        colour / "c.png")
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"\xff\xd8 not really a JPEG")
    not_model = tmp_path / "other.joblib"
    joblib.dump({"weights": [1, 2]}, not_model)
    unfitted = tmp_path / "unfitted.joblib"
    joblib.dump(RecurrentCNNSegmenter(), unfitted)
    out = tmp_path / "m.joblib"
    image = images_dir / "scene0.png"
    return [
        ("missing model", ["predict", "--model", tmp_path / "none.joblib",
                           image, "-o", tmp_path], "no such model file"),
        ("text as model", ["predict", "--model", garbage, image, "-o",
                           tmp_path], "not a skrcnn model file"),
        ("other pickle", ["predict", "--model", not_model, image, "-o",
                          tmp_path], "holds a dict"),
        ("unfitted", ["evaluate", "--model", unfitted, "--dataset",
                      "scenes"], "never fitted"),
        ("missing image", ["predict", "--model", model_file,
                           tmp_path / "none.png", "-o", tmp_path],
         "none.png: no such file or folder"),
        ("unreadable image", ["predict", "--model", model_file, garbage,
                              "-o", tmp_path], "not a readable image"),
        ("output dir is a file", ["predict", "--model", model_file, image,
                                  "-o", garbage], "not a folder"),
        ("missing folder", ["train", "--images", tmp_path / "none",
                            "--labels", labels_dir, "-o", out],
         "no such folder"),
        ("missing label", ["train", "--images", no_label, "--labels",
                           no_label, "-o", out], "no label file"),
        ("shape mismatch", ["evaluate", "--model", model_file, "--images",
                            mismatch, "--labels", mismatch],
         "label map is 8x9"),
        ("colour labels", ["train", "--images", colour, "--labels", colour,
                           "-o", out], "colour picture"),
        ("image too small", ["train", "--images", tiny, "--labels", tiny,
                             "-o", out] + TINY,
         f"{tiny / 't.png'} is 1x5 pixels"),
        ("both sources", ["train", "--dataset", "scenes", "--images",
                          images_dir, "--labels", labels_dir, "-o", out],
         "not both"),
        ("no source", ["evaluate", "--model", model_file],
         "give --dataset"),
        ("fold of folders", ["evaluate", "--model", model_file, "--images",
                             images_dir, "--labels", labels_dir, "--fold",
                             "test"], "--fold"),
        ("no output folder", ["train", "--dataset", "scenes", "-o",
                              tmp_path / "none" / "m.joblib"],
         "does not exist"),
        ("bad hidden sizes", ["train", "--dataset", "scenes", "-o", out,
                              "--hidden-sizes", "4"],
         "--hidden-sizes must be 2 positive integers"),
        ("scales reversed", ["train", "--dataset", "scenes", "-o", out,
                             "--scale-range", "1.25", "0.8"],
         r"--scale-range must be None or a pair (low, high) of real numbers "
         r"with 0 < low <= high, got (1.25, 0.8)"),
        ("json folder missing", ["evaluate", "--model", model_file,
                                 "--dataset", "scenes", "--json",
                                 tmp_path / "none" / "s.json"],
         "does not exist"),
        ("json is a folder", ["evaluate", "--model", model_file,
                              "--dataset", "scenes", "--json", tmp_path],
         "give a file name such as scores.json"),
        ("json name empty", ["evaluate", "--model", model_file,
                             "--dataset", "scenes", "--json", ""],
         "an empty file name; give one such as scores.json"),
        ("empty model name", ["train", "--dataset", "scenes", "-o", ""],
         "an empty file name; give one such as model.joblib"),
        ("empty figure name", ["demo", "--output", ""],
         "an empty file name; give one such as skrcnn-demo.png"),
        ("too many instances", ["predict", "--model", model_file, image,
                                "-o", tmp_path, "--instances", "12"],
         "with n_instances=12"),
        ("too few class names", ["train", "--dataset", "scenes", "-o", out,
                                 "--class-names", "a,b,c"],
         "--class-names names 3 classes (labels 0 to 2), but the labels go "
         "up to 5"),
        ("same stems", ["predict", "--model", model_file, image,
                        labels_dir / "scene0.png", "-o", tmp_path],
         "same name"),
        # Usage errors (argparse, also exit status 2):
        ("zero epochs", ["train", "--dataset", "scenes", "-o", out,
                         "--epochs", "0"], "--epochs: must be an integer"),
        ("negative crop", ["train", "--dataset", "scenes", "-o", out,
                           "--crop-size", "-1"],
         "--crop-size: must be an integer >= 0, got '-1'"),
        ("resume from a folder", ["train", "--dataset", "scenes", "-o", out,
                                  "--resume", tmp_path], "not a file"),
        ("bad resolution", ["predict", "--model", model_file, image, "-o",
                            tmp_path, "--resolution", "0.3"], "1/k"),
        ("zero scale", ["train", "--dataset", "scenes", "-o", out,
                        "--scale-range", "0", "1.2"],
         "--scale-range: must be a number > 0, got '0'"),
        ("averaging decay 1", ["train", "--dataset", "scenes", "-o", out,
                               "--weight-averaging", "1"],
         "--weight-averaging: must be a number between 0 and 1, got '1'"),
        ("bad dataset", ["train", "--dataset", "imagenet", "-o", out],
         "invalid choice"),
    ]


def test_bad_input_is_one_line_with_status_2(model_file, tmp_path, capsys,
                                            monkeypatch):
    from skrcnn import _cli_commands

    def labelled(*args, **kwargs):
        raise AssertionError("labelling started before the input was checked")
    for name, argv, fragment in _bad_inputs(tmp_path, model_file):
        if name.startswith("json"):  # checked before any image is labelled
            monkeypatch.setattr(_cli_commands, "_predict_one", labelled)
        code, out, err = run(capsys, *argv)
        monkeypatch.undo()
        assert_one_line_error(code, err, fragment)
        assert not (tmp_path / "m.joblib").exists(), name


@pytest.mark.skipif(gpu_available(), reason="a GPU is available here")
def test_asking_for_a_missing_gpu_is_bad_input(model_file, tmp_path,
                                               capsys):
    code, _, err = run(capsys, "train", "--dataset", "scenes", "--device",
                       "gpu", "-o", tmp_path / "m.joblib")
    assert_one_line_error(code, err, "gpu")


def test_a_bug_is_one_line_unless_debug(model_file, tmp_path, capsys,
                                        monkeypatch):
    from skrcnn import _cli_commands

    def broken(args, say):
        raise RuntimeError("boom")

    monkeypatch.setattr(_cli_commands, "predict", broken)
    argv = ["predict", "--model", model_file, "x.png", "-o", tmp_path]
    code, _, err = run(capsys, *argv)
    assert code == 1 and "Traceback" not in err
    assert err.strip().splitlines() == [
        "skrcnn: error: internal error (RuntimeError: boom); run again with "
        "--debug for the traceback"]
    with pytest.raises(RuntimeError, match="boom"):
        main([str(a) for a in argv] + ["--debug"])


def test_warnings_are_one_line(model_file, tmp_path, capsys, monkeypatch):
    from skrcnn import _cli_commands

    def warns(args, say):
        import warnings
        warnings.warn("careful\nnow", UserWarning)
        return 0

    monkeypatch.setattr(_cli_commands, "evaluate", warns)
    code, _, err = run(capsys, "evaluate", "--model", model_file)
    assert code == 0
    assert err == "skrcnn: warning: careful now\n"


def test_help_of_every_command(capsys):
    for command in ("train", "predict", "evaluate", "demo"):
        code, out, _ = run(capsys, command, "--help")
        assert code == 0 and f"skrcnn {command}" in out


# ------------------------------------------------------------ entry point

def test_python_m_skrcnn(model_file, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO_ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    done = subprocess.run(
        [sys.executable, "-m", "skrcnn", "evaluate", "--model",
         str(model_file), "--dataset", "scenes", "--n-images", "2",
         "--json", "-"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert 0 <= json.loads(done.stdout)["mean_iou"] <= 1
    assert "evaluate 2/2" in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "skrcnn", "predict", "--model",
         str(tmp_path / "missing.joblib"), "x.png", "-o", str(tmp_path)],
        capture_output=True, text=True, env=env)
    assert done.returncode == 2
    assert done.stderr == (f"skrcnn: error: {tmp_path / 'missing.joblib'}: "
                           "no such model file\n")
