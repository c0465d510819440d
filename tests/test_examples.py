"""The scripts in examples/, each run in its quick mode, drawn with
matplotlib and without it (matplotlib is an optional extra: without it the
examples fall back to a NumPy mosaic and print the legend).

The scripts are imported by path; ``main(argv, sink)`` runs one and returns
what it measured. Tests that need matplotlib skip where it is missing; the
fallback runs everywhere, with matplotlib's import made to fail.
"""

import importlib.util
import os
import sys

import numpy as np
import pytest
from PIL import Image
from skimage.io import imsave

from skrcnn.demo import PALETTE, figure_panel

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "examples")

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning")


def load(name):
    """Import ``examples/<name>.py`` as a module (it is not a package)."""
    spec = importlib.util.spec_from_file_location(
        f"skrcnn_example_{name}", os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(params=["matplotlib", "numpy"])
def drawing(request, monkeypatch):
    """Run a test with matplotlib (skipped if not installed) and without:
    every ``import matplotlib...`` then raises ImportError."""
    if request.param == "matplotlib":
        pytest.importorskip("matplotlib")
    else:
        for name in [n for n in sys.modules
                     if n == "matplotlib" or n.startswith("matplotlib.")]:
            monkeypatch.setitem(sys.modules, name, None)
        monkeypatch.setitem(sys.modules, "matplotlib", None)
    return request.param


def check_png(path, drawing, numpy_shape):
    """The picture exists, is RGB(A), not blank, and (NumPy mosaic) has the
    exact expected size; matplotlib figures are 100 dpi, 2 inches a tile."""
    with Image.open(path) as written:
        assert written.format == "PNG"  # whatever the name's suffix
        picture = np.asarray(written)
    assert picture.ndim == 3 and picture.shape[2] in (3, 4)
    assert picture[..., :3].std() > 10
    if drawing == "numpy":
        assert picture.shape[:2] == numpy_shape
    return picture


def test_plot_instances_quick(tmp_path, drawing):
    lines = []
    out = tmp_path / "instances"  # no suffix: still a PNG, at that name
    result = load("plot_instances").main(["--quick", "--output", str(out)],
                                         sink=lines.append)
    assert result["drawn_with"] == drawing
    assert set(result["scores"]) == {1, 2, 3}
    for scores in result["scores"].values():
        assert all(0 <= v <= 1 for v in scores.values())
    assert sum(line.startswith("  after instance") for line in lines) == 3
    # 4 held-out 48x48 scenes; image | truth | 3 instances; 3x, 4 px gaps.
    picture = check_png(out, drawing, (4 * 144 + 5 * 4, 5 * 144 + 6 * 4))
    if drawing == "matplotlib":
        assert picture.shape[1] == 5 * 2 * 100      # 5 tiles of 2 inches
        assert picture.shape[0] > 4 * 180           # 4 rows of tiles
    else:
        assert any("sky: light blue" in line and "water: dark blue" in line
                   for line in lines)


def _quick_held_out():
    """The held-out scenes of ``--quick`` (seed 0): the first 4 of 16."""
    from skrcnn.datasets import make_scenes
    scenes = make_scenes(16, image_shape=(48, 48), random_state=0)
    return scenes.images[:4], scenes.labels[:4]


def _saved_model(tmp_path, kind):
    """A small fitted 2-instance rcnn2 saved the way ``kind`` says:
    ``joblib.dump`` of the estimator or of a pipeline, or the model file
    of ``skrcnn train``; returns its path and the fitted pipeline/model."""
    import joblib
    from sklearn.pipeline import make_pipeline

    from skrcnn import ImageStandardizer, RecurrentCNNSegmenter
    from skrcnn.cli import main as cli_main
    from skrcnn.datasets import make_scenes

    path = tmp_path / f"{kind}.joblib"
    if kind == "cli":
        assert cli_main(["train", "--dataset", "scenes", "--n-images", "4",
                         "--epochs", "1", "--hidden-sizes", "4,8",
                         "--instances", "2", "-q", "-o", str(path)]) == 0
        return path, joblib.load(path)["model"]
    X, y = make_scenes(6, image_shape=(48, 48), random_state=1,
                       return_X_y=True)
    model = RecurrentCNNSegmenter(hidden_sizes=(4, 8), n_instances=2,
                                  max_iter=1, random_state=0)
    if kind == "pipeline":
        model = make_pipeline(ImageStandardizer(), model)
    model.fit(X, y)
    joblib.dump(model, path)
    return path, model


@pytest.mark.parametrize("kind", ["estimator", "pipeline", "cli"])
def test_plot_instances_draws_a_saved_model(tmp_path, drawing, kind):
    path, model = _saved_model(tmp_path, kind)
    lines = []
    out = tmp_path / "saved.png"
    result = load("plot_instances").main(
        ["--quick", "--model", str(path), "--output", str(out)],
        sink=lines.append)
    assert result["fit_seconds"] == 0
    assert lines[0].startswith(f"drawing {path} (2 instances) on 4 held-out")
    # One column per instance of the model (2 here), each scored as the
    # saved model labels the same held-out scenes after that instance.
    X_test, y_test = _quick_held_out()
    assert set(result["scores"]) == {1, 2}
    for p in (1, 2):
        expected = model.predict(X_test, n_instances=p)
        assert result["scores"][p]["pixel_accuracy"] == pytest.approx(
            float(np.mean(np.asarray(expected) == y_test)))
    check_png(out, drawing, (4 * 144 + 5 * 4, 4 * 144 + 5 * 4))


def test_plot_instances_refuses_a_model_of_other_classes(tmp_path, capsys):
    import joblib

    from skrcnn import RecurrentCNNSegmenter
    from skrcnn.datasets import make_scenes
    X, y = make_scenes(4, image_shape=(48, 48), random_state=1,
                       return_X_y=True)
    model = RecurrentCNNSegmenter(hidden_sizes=(4, 8), n_instances=1,
                                  max_iter=1, random_state=0)
    model.fit(X, y + 10)   # labels 10.. are no scene class
    joblib.dump(model, tmp_path / "other.joblib")
    with pytest.raises(SystemExit) as info:
        load("plot_instances").main(
            ["--quick", "--model", str(tmp_path / "other.joblib"),
             "--output", str(tmp_path / "x.png")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "are not label values of 4 held-out synthetic scenes" in err
    assert not (tmp_path / "x.png").exists()


def test_grid_search_quick(tmp_path, drawing):
    lines = []
    out = tmp_path / "search.png"
    module = load("grid_search")
    result = module.main(["--quick", "--output", str(out)], sink=lines.append)
    search = result["search"]
    results = search.cv_results_
    assert len(results["params"]) == 4
    # The refitted candidate is the one with the best cross-validated
    # average per-class accuracy (the example's REFIT).
    assert module.REFIT == "mean_class_accuracy"
    best = int(np.argmax(results["mean_test_mean_class_accuracy"]))
    assert search.best_params_ == results["params"][best]
    for metric in module.METRICS:
        assert f"mean_test_{metric}" in search.cv_results_
    table = "\n".join(lines)
    assert table.count("P=1, lr=") >= 2 and "mean_class_accuracy" in table
    assert all(0 <= v <= 1 for v in result["held_out"].values())
    picture = check_png(out, drawing,
                        # best model on 4 held-out scenes: 3 tiles a row.
                        (4 * 144 + 5 * 4, 3 * 144 + 4 * 4))
    if drawing == "matplotlib":
        assert picture.shape[1] > picture.shape[0]  # a bar chart


def test_pipeline_persistence_quick(tmp_path, drawing):
    lines = []
    out = tmp_path / "pipeline.png"
    result = load("pipeline_persistence").main(
        ["--quick", "--output", str(out)], sink=lines.append)
    assert result["identical"] is True
    assert result["model_path"] == str(tmp_path / "pipeline.joblib")
    assert os.path.getsize(result["model_path"]) == result["model_bytes"] > 0
    assert {"fit", "dump", "load", "predict after loading"} <= set(
        result["timings"])
    check_png(out, drawing, (4 * 144 + 5 * 4, 3 * 144 + 4 * 4))


def test_colours_are_fixed_per_class():
    common = load("_common")
    names = ["sky", "water", "mountain", "grass", "tree", "building"]
    palette = common.palette_for(names)
    # The same colours as `skrcnn demo`'s picture.
    np.testing.assert_allclose(palette, PALETTE)
    everything = np.array([[0, 1, 2], [3, 4, 5], [-1, 0, 5]])
    rgb = common.label_colours(everything, palette)
    for value in range(6):
        alone = common.label_colours(np.full((2, 2), value), palette)
        np.testing.assert_allclose(alone, np.broadcast_to(palette[value],
                                                          (2, 2, 3)))
        where = everything == value
        np.testing.assert_allclose(
            rgb[where], np.broadcast_to(palette[value], (where.sum(), 3)))
    # Two classes without the others, in either order of appearance.
    pair = common.label_colours(np.array([[5, 2]]), palette)
    np.testing.assert_allclose(pair[0], palette[[5, 2]])
    np.testing.assert_array_equal(rgb[2, 0], [0, 0, 0])  # unknown
    with pytest.raises(ValueError, match="no colour"):
        common.label_colours(np.array([[6]]), palette)


def test_fallback_mosaic_matches_the_demo_picture():
    common = load("_common")
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
              for _ in range(2)]
    truths = [rng.integers(-1, 6, (10, 12)) for _ in range(2)]
    predictions = [[rng.integers(0, 6, (10, 12)) for _ in range(2)]
                   for _ in range(3)]
    palette = common.palette_for(["sky", "water", "mountain", "grass",
                                  "tree", "building"])
    rows = [[images[k], common._to_uint8(common.label_colours(truths[k],
                                                               palette))]
            + [common._to_uint8(common.label_colours(p[k], palette))
               for p in predictions] for k in range(2)]
    np.testing.assert_array_equal(common.tile_rows(rows, scale=3),
                                  figure_panel(images, truths, predictions))


def _fake_stanford(root, n_images=10):
    """A tiny extracted Stanford Background folder: 8 classes, two sizes."""
    rng = np.random.default_rng(0)
    os.makedirs(root / "iccv09Data" / "images")
    os.makedirs(root / "iccv09Data" / "labels")
    for k in range(n_images):
        shape = (40, 56) if k % 3 else (56, 40)
        labels = np.repeat(np.arange(8), shape[0] // 8 + 1)[:shape[0], None]
        labels = np.broadcast_to(labels, shape).copy()
        labels[0, :3] = -1
        image = (30 * labels[..., None] + rng.integers(0, 20, shape + (3,))
                 ).clip(0, 255).astype(np.uint8)
        stem = f"{6000000 + k:07d}"
        imsave(root / "iccv09Data" / "images" / f"{stem}.jpg", image,
               check_contrast=False)
        np.savetxt(root / "iccv09Data" / "labels" / f"{stem}.regions.txt",
                   labels, fmt="%d")


def test_plot_instances_stanford_flag(tmp_path, drawing):
    _fake_stanford(tmp_path / "data")
    lines = []
    out = tmp_path / "stanford.png"
    result = load("plot_instances").main(
        ["--quick", "--stanford", "--data-home", str(tmp_path / "data"),
         "--scale", "0.5", "--n-images", "6", "--n-test", "2",
         "--output", str(out)], sink=lines.append)
    assert "6 Stanford Background training images" in lines[0]
    assert "resized by 0.5" in lines[0]
    assert set(result["scores"]) == {1, 2, 3}
    picture = check_png(out, drawing, None if drawing == "matplotlib"
                        else _stanford_mosaic_shape(tmp_path / "data"))
    assert picture is not None
    if drawing == "numpy":
        assert any("foreground object: yellow" in line for line in lines)


def test_plot_instances_stanford_model_at_full_resolution(tmp_path,
                                                         monkeypatch):
    import joblib

    from skrcnn import RecurrentCNNSegmenter
    from skrcnn.datasets import load_stanford_background
    for name in [n for n in sys.modules if n.startswith("matplotlib")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    _fake_stanford(tmp_path / "data")
    data = load_stanford_background(data_home=tmp_path / "data")
    model = RecurrentCNNSegmenter(hidden_sizes=(4, 8), n_instances=2,
                                  max_iter=1, random_state=0)
    model.fit(data.images, data.labels)
    joblib.dump(model, tmp_path / "m.joblib")
    lines = []
    out = tmp_path / "stanford.png"
    result = load("plot_instances").main(
        ["--stanford", "--data-home", str(tmp_path / "data"), "--model",
         str(tmp_path / "m.joblib"), "--n-test", "2", "--output", str(out)],
        sink=lines.append)
    # Not resized: a model file's network is drawn at full resolution.
    assert lines[0].endswith("on 2 of the canonical fold's Stanford "
                             "Background test images")
    assert set(result["scores"]) == {1, 2}
    check_png(out, "numpy", _stanford_mosaic_shape(
        tmp_path / "data", scale=1, n_label_columns=3))


def _stanford_mosaic_shape(data_home, scale=0.5, n_label_columns=4):
    """Size of the mosaic of the fake set's 2 test images at ``scale`` (1 or
    0.5; sides under 100 pixels are repeated 3x), image and label tiles."""
    from skrcnn.datasets import load_stanford_background
    from skrcnn.model_selection import canonical_stanford_split
    data = load_stanford_background(data_home=data_home)
    _, test = canonical_stanford_split(data.filenames)
    shapes = [tuple(int(s * scale) for s in data.images[i].shape[:2])
              for i in test]
    height = sum(3 * h for h, _ in shapes) + 4 * (len(shapes) + 1)
    n_tiles = 1 + n_label_columns
    width = n_tiles * 3 * max(w for _, w in shapes) + (n_tiles + 1) * 4
    return height, width


@pytest.mark.parametrize("script, argv, message", [
    ("plot_instances", ["--epochs", "0"], "--epochs: must be at least 1"),
    ("plot_instances", ["--scale", "1.5"], "--scale"),
    ("plot_instances", ["--n-show", "0"], "--n-show: must be at least 1"),
    ("plot_instances", ["--seed", "-1"], "--seed: must be at least 0"),
    ("plot_instances", ["--output", "no/such/folder/x.png"],
     "--output no/such/folder/x.png: folder"),
    ("grid_search", ["--folds", "1"], "--folds: must be at least 2"),
    ("grid_search", ["--n-jobs", "0"], "--n-jobs: must not be 0"),
    ("grid_search", ["--folds", "x"], "invalid integer >= 2 value: 'x'"),
    ("pipeline_persistence", ["--model-path", "no/such/m.joblib"],
     "--model-path no/such/m.joblib: folder"),
    ("pipeline_persistence", ["--model-path", "."],
     "--model-path .: is a folder; give a file name"),
    ("plot_instances", ["--output", ""], "--output: an empty file name"),
    ("plot_instances", ["--model", "no/such.joblib"],
     "--model no/such.joblib: no such file"),
    ("plot_instances", ["--model", "m.joblib", "--epochs", "2"],
     "--epochs: not with --model"),
    ("plot_instances", ["--model", "m.joblib", "--n-images", "2"],
     "--n-images: not with --model"),
    ("plot_instances", ["--model", __file__],
     "test_examples.py: not a model file ("),
])
def test_bad_options_are_refused_before_any_work(capsys, monkeypatch, script,
                                                 argv, message):
    module = load(script)

    def loaded(*args, **kwargs):
        raise AssertionError("data loaded before the options were checked")
    monkeypatch.setattr(module, "load_data", loaded)
    with pytest.raises(SystemExit) as info:
        module.main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err
