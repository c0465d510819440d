"""The README's main job, in a quick mode: it must really learn, write the
Fig. 5-style picture and run from both entry points."""

import functools
import subprocess
import sys

import numpy as np
from PIL import Image

import skrcnn.demo
from skrcnn.cli import main
from skrcnn.demo import PALETTE, colour_labels, run_demo


def test_demo_learns_and_writes_the_figure(tmp_path):
    lines = []
    out = tmp_path / "demo.figure"  # a PNG whatever the suffix
    result = run_demo(n_images=24, epochs=2, seed=1, output=str(out),
                      verbose=0, sink=lines.append, cv=3, image_shape=(64, 64),
                      context_scale=None)
    assert set(result["instances"]) == {1, 2, 3}
    assert len(result["folds"]) == 3
    best = max(r["pixel_accuracy"] for r in result["instances"].values())
    assert best > result["majority"] + 0.2
    # The reported scores are the means of the folds' scores.
    for p, scores in result["instances"].items():
        np.testing.assert_allclose(
            scores["mean_iou"],
            np.mean([fold[p]["mean_iou"] for fold in result["folds"]]))
    with Image.open(out) as written:
        assert written.format == "PNG"
        picture = np.asarray(written)
    # 8 held-out scenes per fold, 4 shown: image, truth, 3 instances; 3x
    # scale.
    assert picture.shape[1] == 5 * 64 * 3 + 6 * 4
    assert picture.shape[0] == 4 * 64 * 3 + 5 * 4
    assert sum(line.startswith("  after instance") for line in lines) == 3
    assert sum(line.startswith("  fold ") for line in lines) == 3


def test_colours_follow_the_label_value():
    labels = np.array([[0, 5], [-1, 2]])
    rgb = colour_labels(labels)
    np.testing.assert_array_equal(rgb[0, 0], np.round(PALETTE[0] * 255))
    np.testing.assert_array_equal(rgb[0, 1], np.round(PALETTE[5] * 255))
    np.testing.assert_array_equal(rgb[1, 0], [0, 0, 0])
    # The same class keeps its colour whatever else is in the picture.
    np.testing.assert_array_equal(colour_labels(np.array([[2]]))[0, 0],
                                  rgb[1, 1])


def test_cli_demo_entry_points(tmp_path, capsys):
    args = ["demo", "--images", "8", "--epochs", "1", "--instances", "2",
            "--folds", "2", "-q", "--output", str(tmp_path / "a.png")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "after instance 2" in out and "Iteration" not in out
    assert (tmp_path / "a.png").exists()
    args[-1] = str(tmp_path / "b.png")
    done = subprocess.run([sys.executable, "-m", "skrcnn"] + args,
                          capture_output=True, text=True, check=True)
    assert "after instance 2" in done.stdout


def test_cli_rejects_bad_counts(capsys):
    import pytest
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--epochs", "0"])
    assert exit_info.value.code == 2
    assert "--epochs must be at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--folds", "1"])
    assert exit_info.value.code == 2
    assert "--folds must be at least 2" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--images", "3", "--folds", "4"])
    assert exit_info.value.code == 2
    assert "--images (3) must be at least --folds (4)" in \
        capsys.readouterr().err


def test_cli_demo_checks_its_output_before_training(tmp_path, capsys,
                                                     monkeypatch):
    @functools.wraps(skrcnn.demo.run_demo)  # the CLI reads its defaults
    def trained(*args, **kwargs):
        raise AssertionError("training started before --output was checked")
    monkeypatch.setattr(skrcnn.demo, "run_demo", trained)
    assert main(["demo", "--output", str(tmp_path / "none" / "a.png")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err
