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


def _stanford_mosaic_shape(data_home):
    """Size of the mosaic of the fake set's 2 test images at scale 0.5 (no
    pixel repeat for sides under 100: 3x)."""
    from skrcnn.datasets import load_stanford_background
    from skrcnn.model_selection import canonical_stanford_split
    data = load_stanford_background(data_home=data_home)
    _, test = canonical_stanford_split(data.filenames)
    shapes = [tuple(s // 2 for s in data.images[i].shape[:2]) for i in test]
    height = sum(3 * h for h, _ in shapes) + 4 * (len(shapes) + 1)
    width = 5 * 3 * max(w for _, w in shapes) + 6 * 4
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
