"""Dataset loaders on small archives built here in the distributed layouts.

Every loader test builds its own tiny Stanford Background or SIFT Flow
archive (or extracted folder) in ``tmp_path``, with hand-made label matrices,
so the suite needs neither the network nor the real data. One test reads the
real Stanford archive when it is available and skips otherwise.
"""

import io
import os
import pathlib
import tarfile
import zipfile

import numpy as np
import pytest
import imageio.v3 as iio
import scipy.io
import skimage.io

from skrcnn.datasets import (CorruptDataError, DataNotFoundError,
                             get_data_home, load_sift_flow,
                             load_stanford_background)
from skrcnn.datasets import _sift_flow, _stanford
from skrcnn.datasets._stanford import parse_label_matrix


def _jpeg_bytes(image):
    # imageio is what skimage.io.imsave calls; it can also return the bytes.
    return iio.imwrite("<bytes>", image, extension=".jpg", quality=95)


def _decoded(data):
    """What an independent decoder makes of JPEG bytes."""
    return skimage.io.imread(io.BytesIO(data))


def _smooth_image(rng, shape):
    rows = np.linspace(0, 255, shape[0])[:, None, None]
    cols = np.linspace(0, 255, shape[1])[None, :, None]
    tint = rng.uniform(0.3, 1.0, size=3)
    return ((rows + cols) / 2 * tint).astype(np.uint8)


def _matrix_text(matrix, sep=" ", newline="\n"):
    return "".join(sep.join(str(v) for v in row) + newline
                   for row in matrix).encode()


# --------------------------------------------------- Stanford Background

def _stanford_files(rng=None):
    """A tiny dataset in the distributed layout: {relpath: bytes}, truth.

    Three landscape images, one portrait one, and one byte-identical copy of
    the first image (under another name, with other labels), as in the real
    data.
    """
    rng = rng or np.random.default_rng(0)
    shapes = {"0000047": (6, 8), "0000051": (6, 8), "6000117": (6, 8),
              "1000003": (8, 6)}
    files = {"iccv09Data/README": b"README FOR ICCV09DATA\n",
             "iccv09Data/horizons.txt": b"0000047 8 6 3.5\n"}
    truth = {}
    for stem, shape in shapes.items():
        labels = rng.integers(-1, 8, size=shape)
        jpeg = _jpeg_bytes(_smooth_image(rng, shape))
        files[f"iccv09Data/images/{stem}.jpg"] = jpeg
        files[f"iccv09Data/labels/{stem}.regions.txt"] = _matrix_text(labels)
        files[f"iccv09Data/labels/{stem}.surfaces.txt"] = _matrix_text(
            labels % 3)
        truth[stem] = (jpeg, labels)
    duplicate = rng.integers(0, 8, size=(6, 8))
    files["iccv09Data/images/6000324.jpg"] = truth["6000117"][0]
    files["iccv09Data/labels/6000324.regions.txt"] = _matrix_text(duplicate)
    truth["6000324"] = (truth["6000117"][0], duplicate)
    return files, truth


def _write_tar(path, files, truncate=None):
    with tarfile.open(path, "w:gz") as tar:
        for relpath in sorted(files):
            data = files[relpath]
            info = tarfile.TarInfo(relpath)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    if truncate is not None:
        data = pathlib.Path(path).read_bytes()
        pathlib.Path(path).write_bytes(data[:int(len(data) * truncate)])
    return path


def _write_folder(root, files):
    for relpath, data in files.items():
        path = pathlib.Path(root, relpath)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _check_stanford(data, truth):
    stems = sorted(truth)
    assert data.filenames == stems
    assert data.class_names == ["sky", "tree", "road", "grass", "water",
                                "building", "mountain", "foreground object"]
    assert len(data.images) == len(data.labels) == len(stems)
    for stem, image, labels in zip(stems, data.images, data.labels):
        jpeg, expected = truth[stem]
        assert image.dtype == np.uint8 and image.shape[2] == 3
        assert np.array_equal(image, _decoded(jpeg))
        assert labels.dtype == np.int64
        assert np.array_equal(labels, expected)
    groups = dict(zip(stems, data.groups.tolist()))
    assert groups["6000117"] == groups["6000324"]
    assert len(set(groups.values())) == len(stems) - 1


@pytest.fixture
def stanford_archive(tmp_path):
    files, truth = _stanford_files()
    home = tmp_path / "home"
    home.mkdir()
    _write_tar(home / "iccv09Data.tar.gz", files)
    return home, truth


def test_stanford_loads_the_distributed_archive(stanford_archive):
    home, truth = stanford_archive
    data = load_stanford_background(data_home=home,
                                    download_if_missing=False)
    _check_stanford(data, truth)
    assert data.images[stems_index(data, "1000003")].shape == (8, 6, 3)
    assert "Gould" in data.DESCR


def stems_index(data, stem):
    return data.filenames.index(stem)


def test_stanford_loads_the_extracted_folder(tmp_path):
    files, truth = _stanford_files()
    _write_folder(tmp_path, files)
    _check_stanford(load_stanford_background(data_home=tmp_path), truth)


def test_stanford_prefers_the_extracted_folder(stanford_archive):
    home, _ = stanford_archive
    files, truth = _stanford_files(np.random.default_rng(7))
    _write_folder(home, files)
    _check_stanford(load_stanford_background(data_home=home), truth)


def test_stanford_greyscale_jpeg_becomes_rgb(tmp_path):
    files, truth = _stanford_files()
    grey = _smooth_image(np.random.default_rng(3), (6, 8))[:, :, 0]
    files["iccv09Data/images/0000051.jpg"] = _jpeg_bytes(grey)
    _write_tar(tmp_path / "iccv09Data.tar.gz", files)
    data = load_stanford_background(data_home=tmp_path)
    image = data.images[data.filenames.index("0000051")]
    assert image.shape == (6, 8, 3)
    expected = _decoded(files["iccv09Data/images/0000051.jpg"])
    assert expected.ndim == 2
    for channel in range(3):
        assert np.array_equal(image[:, :, channel], expected)


def test_stanford_cache_is_readable_like_any_new_file(stanford_archive):
    home, _ = stanford_archive
    load_stanford_background(data_home=home)
    umask = os.umask(0)
    os.umask(umask)
    mode = os.stat(home / "iccv09Data.skrcnn-cache.npz").st_mode & 0o777
    assert mode == 0o666 & ~umask


def test_stanford_return_X_y(stanford_archive):
    home, truth = stanford_archive
    images, labels = load_stanford_background(data_home=home,
                                              return_X_y=True)
    assert len(images) == len(labels) == len(truth)
    assert np.array_equal(labels[0], truth[sorted(truth)[0]][1])


def test_stanford_cache_is_used_then_invalidated(stanford_archive,
                                                 monkeypatch, capsys):
    home, truth = stanford_archive
    load_stanford_background(data_home=home)
    assert "parsing Stanford Background labels" in capsys.readouterr().err
    assert (home / "iccv09Data.skrcnn-cache.npz").is_file()

    def refuse(path):
        raise AssertionError("parsed again although the cache is valid")

    monkeypatch.setattr(_stanford, "_parse_source", refuse)
    _check_stanford(load_stanford_background(data_home=home), truth)
    assert capsys.readouterr().err == ""

    # A changed archive must be parsed again.
    files, truth = _stanford_files(np.random.default_rng(1))
    _write_tar(home / "iccv09Data.tar.gz", files)
    monkeypatch.undo()
    _check_stanford(load_stanford_background(data_home=home), truth)
    assert not [p for p in os.listdir(home) if p.endswith(".part")]


def test_stanford_unreadable_cache_is_rebuilt(stanford_archive):
    home, truth = stanford_archive
    (home / "iccv09Data.skrcnn-cache.npz").write_bytes(b"not a cache")
    _check_stanford(load_stanford_background(data_home=home), truth)
    _check_stanford(load_stanford_background(data_home=home), truth)


def test_stanford_missing_offline_says_what_to_put_where(tmp_path):
    with pytest.raises(DataNotFoundError) as info:
        load_stanford_background(data_home=tmp_path,
                                 download_if_missing=False)
    assert isinstance(info.value, OSError)
    message = str(info.value)
    assert "'iccv09Data.tar.gz'" in message and str(tmp_path) in message
    assert _stanford.STANFORD_URL in message


def test_stanford_failed_download_leaves_nothing(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setattr(_stanford, "STANFORD_URL",
                        (tmp_path / "nowhere.tar.gz").as_uri())
    with pytest.raises(DataNotFoundError, match="iccv09Data.tar.gz"):
        load_stanford_background(data_home=home)
    assert os.listdir(home) == []


def test_stanford_downloads_verifies_and_caches(tmp_path, monkeypatch):
    files, truth = _stanford_files()
    remote = _write_tar(tmp_path / "remote.tar.gz", files)
    monkeypatch.setattr(_stanford, "STANFORD_URL", remote.as_uri())
    home = tmp_path / "home"
    _check_stanford(load_stanford_background(data_home=home), truth)
    assert sorted(os.listdir(home)) == ["iccv09Data.skrcnn-cache.npz",
                                        "iccv09Data.tar.gz"]
    assert (home / "iccv09Data.tar.gz").read_bytes() == remote.read_bytes()
    # The second load reads the cache without downloading again.
    monkeypatch.setattr(_stanford, "STANFORD_URL", "file:///nonexistent")
    _check_stanford(load_stanford_background(data_home=home), truth)


def test_stanford_truncated_download_leaves_nothing(tmp_path, monkeypatch):
    files, _ = _stanford_files()
    remote = _write_tar(tmp_path / "remote.tar.gz", files, truncate=0.6)
    monkeypatch.setattr(_stanford, "STANFORD_URL", remote.as_uri())
    home = tmp_path / "home"
    with pytest.raises(CorruptDataError, match="corrupt or truncated"):
        load_stanford_background(data_home=home)
    assert os.listdir(home) == []


@pytest.mark.parametrize("fraction", [0.3, 0.95])
def test_stanford_truncated_archive_names_it(tmp_path, fraction):
    files, _ = _stanford_files()
    archive = _write_tar(tmp_path / "iccv09Data.tar.gz", files,
                         truncate=fraction)
    with pytest.raises(CorruptDataError, match="corrupt or truncated") as e:
        load_stanford_background(data_home=tmp_path)
    assert str(archive) in str(e.value)


def test_stanford_garbage_archive_names_it(tmp_path):
    (tmp_path / "iccv09Data.tar.gz").write_bytes(b"\x1f\x8b" + bytes(100))
    with pytest.raises(CorruptDataError, match="iccv09Data.tar.gz"):
        load_stanford_background(data_home=tmp_path)


def _load_broken(tmp_path, edit):
    files, _ = _stanford_files()
    edit(files)
    _write_tar(tmp_path / "iccv09Data.tar.gz", files)
    return load_stanford_background(data_home=tmp_path)


def test_stanford_missing_label_file_is_named(tmp_path):
    def edit(files):
        del files["iccv09Data/labels/0000051.regions.txt"]
    with pytest.raises(CorruptDataError,
                       match=r"iccv09Data/labels/0000051\.regions\.txt.*"
                       "missing"):
        _load_broken(tmp_path, edit)


def test_stanford_shape_mismatch_is_named(tmp_path):
    def edit(files):
        files["iccv09Data/labels/0000051.regions.txt"] = _matrix_text(
            np.zeros((6, 7), int))
    with pytest.raises(CorruptDataError,
                       match=r"0000051\.regions\.txt.*6 rows x 7 columns.*"
                       r"0000051\.jpg is 6 rows x 8 columns"):
        _load_broken(tmp_path, edit)


@pytest.mark.parametrize("bad_value", [8, -2, 12])
def test_stanford_unknown_class_values_are_named(tmp_path, bad_value):
    def edit(files):
        labels = np.zeros((6, 8), int)
        labels[2, 3] = bad_value
        files["iccv09Data/labels/0000047.regions.txt"] = _matrix_text(labels)
    with pytest.raises(CorruptDataError,
                       match=rf"0000047\.regions\.txt.*\[{bad_value}\]"):
        _load_broken(tmp_path, edit)


def test_stanford_ragged_rows_are_named(tmp_path):
    def edit(files):
        files["iccv09Data/labels/0000047.regions.txt"] = (
            _matrix_text(np.zeros((5, 8), int)) + b"0 0 0 0 0 0 0\n0\n")
    with pytest.raises(CorruptDataError,
                       match=r"0000047\.regions\.txt.*different lengths"):
        _load_broken(tmp_path, edit)


def test_stanford_bad_jpeg_is_named(tmp_path):
    def edit(files):
        files["iccv09Data/images/0000051.jpg"] = b"\xff\xd8 not a jpeg"
    with pytest.raises(CorruptDataError, match=r"0000051\.jpg.*JPEG"):
        _load_broken(tmp_path, edit)


def test_stanford_wrong_archive_says_so(tmp_path):
    _write_tar(tmp_path / "iccv09Data.tar.gz", {"other/file.txt": b"1"})
    with pytest.raises(CorruptDataError, match="no images found"):
        load_stanford_background(data_home=tmp_path)


@pytest.mark.parametrize("text, expected", [
    (b"0 1 2\n3 4 5\n", [[0, 1, 2], [3, 4, 5]]),
    (b"0 1 2\r\n3 4 5\r\n", [[0, 1, 2], [3, 4, 5]]),  # CRLF
    (b"-1 7\t0 \n 5 -1 6", [[-1, 7, 0], [5, -1, 6]]),  # tabs, no final \n
    (b"\n0 1\n\n2 3\n\n", [[0, 1], [2, 3]]),  # blank lines
    (b"00 +1 -01\n2 3 4\n", [[0, 1, -1], [2, 3, 4]]),  # unusual spellings
    (b"7", [[7]]),
])
def test_label_text_parser_matches_loadtxt(text, expected):
    parsed = parse_label_matrix(text, "x.regions.txt")
    assert parsed.tolist() == expected
    reference = np.loadtxt(io.StringIO(text.decode()), dtype=int, ndmin=2)
    assert np.array_equal(parsed, reference)


@pytest.mark.parametrize("text, match", [
    (b"", "empty"),
    (b"1 2\n3 x\n", "not an integer"),
    (b"1 - 2\n", "not an integer"),
    (b"1 2\n3\n", "different lengths"),
    (b"1 9\n", r"\[9\]"),
    (b"1 0_7\n", r"not an integer matrix \(token '0_7'\)"),  # int() takes it
    (b"1 99999999999999999999\n", "too large"),  # past int64
])
def test_label_text_parser_rejects_bad_text(text, match):
    with pytest.raises(CorruptDataError, match="x.regions.txt.*" + match):
        parse_label_matrix(text, "x.regions.txt")


def test_label_text_parser_on_a_large_random_matrix():
    rng = np.random.default_rng(0)
    labels = rng.integers(-1, 8, size=(240, 320))
    parsed = parse_label_matrix(_matrix_text(labels), "big")
    assert parsed.dtype == np.int8
    assert np.array_equal(parsed, labels)


# --------------------------------------------------------------- data home

def test_get_data_home_prefers_argument_then_env_then_home(tmp_path,
                                                           monkeypatch):
    explicit = tmp_path / "explicit"
    assert get_data_home(explicit) == str(explicit)
    assert explicit.is_dir()
    monkeypatch.setenv("SKRCNN_DATA", str(tmp_path / "from_env"))
    assert get_data_home() == str(tmp_path / "from_env")
    monkeypatch.delenv("SKRCNN_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert get_data_home() == str(tmp_path / "user" / "skrcnn_data")
    assert get_data_home("~/elsewhere") == str(tmp_path / "user" /
                                               "elsewhere")
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(NotADirectoryError, match="a_file is a file, not a "
                       "folder"):
        get_data_home(tmp_path / "a_file")


def test_loader_uses_env_data_home(stanford_archive, monkeypatch):
    home, truth = stanford_archive
    monkeypatch.setenv("SKRCNN_DATA", str(home))
    _check_stanford(load_stanford_background(), truth)


def test_cache_write_failure_only_warns(stanford_archive, monkeypatch):
    home, truth = stanford_archive

    def fail(*args, **kwargs):
        raise PermissionError("read-only folder")

    monkeypatch.setattr("skrcnn.datasets._base._create_temp", fail)
    with pytest.warns(RuntimeWarning, match="could not write the cache"):
        data = load_stanford_background(data_home=home)
    _check_stanford(data, truth)
    assert not (home / "iccv09Data.skrcnn-cache.npz").exists()


# -------------------------------------------------------------- SIFT Flow

_CATEGORY = "spatial_envelope_256x256_static_8outdoorcategories"
_SIFT_STEMS = ["coast_arnat59", "coast_bea1", "forest_for15",
               "highway_bost164", "street_par21", "tallbuilding_art1004"]
_SIFT_TEST = ["coast_bea1", "street_par21"]


def _sift_files(rng=None, train_list=False, shape=(12, 10)):
    rng = rng or np.random.default_rng(0)
    files, truth = {}, {}
    for stem in _SIFT_STEMS:
        jpeg = _jpeg_bytes(_smooth_image(rng, shape))
        raw = rng.integers(0, 34, size=shape).astype(np.float64)  # MATLAB
        buffer = io.BytesIO()
        scipy.io.savemat(buffer, {"S": raw, "names": np.array(["sky"],
                                                              dtype=object)})
        files[f"SiftFlowDataset/Images/{_CATEGORY}/{stem}.jpg"] = jpeg
        files[f"SiftFlowDataset/SemanticLabels/{_CATEGORY}/{stem}.mat"] = \
            buffer.getvalue()
        truth[stem] = (jpeg, raw.astype(np.int64) - 1)
    files["SiftFlowDataset/TestSet1.txt"] = "".join(
        f"{_CATEGORY}\\{stem}.jpg\r\n" for stem in _SIFT_TEST).encode()
    if train_list:
        files["SiftFlowDataset/TrainSet1.txt"] = "".join(
            f"{_CATEGORY}\\{stem}.jpg\n" for stem in train_list).encode()
    return files, truth


def _write_zip(path, files, truncate=None):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for relpath in sorted(files):
            archive.writestr(relpath, files[relpath])
    if truncate is not None:
        data = pathlib.Path(path).read_bytes()
        pathlib.Path(path).write_bytes(data[:int(len(data) * truncate)])
    return path


def _check_sift(data, truth, train=None):
    assert data.filenames == sorted(truth)
    assert len(data.class_names) == 33
    assert data.class_names[0] == "awning"
    assert data.class_names[27] == "sky"
    assert data.class_names[32] == "window"
    for stem, image, labels in zip(data.filenames, data.images, data.labels):
        jpeg, expected = truth[stem]
        assert np.array_equal(image, _decoded(jpeg))
        assert labels.dtype == np.int64
        assert np.array_equal(labels, expected)
    test = [data.filenames[i] for i in data.test_indices]
    assert test == _SIFT_TEST
    train = train or [s for s in sorted(truth) if s not in _SIFT_TEST]
    assert [data.filenames[i] for i in data.train_indices] == train
    assert data.groups.tolist() == list(range(len(truth)))


def test_sift_flow_loads_the_distributed_zip(tmp_path):
    files, truth = _sift_files()
    _write_zip(tmp_path / "SiftFlowDataset.zip", files)
    data = load_sift_flow(data_home=tmp_path, download_if_missing=False)
    _check_sift(data, truth)
    assert np.min([labels.min() for labels in data.labels]) == -1
    assert np.max([labels.max() for labels in data.labels]) == 32


def test_sift_flow_loads_the_folder_with_a_train_list(tmp_path):
    train = ["coast_arnat59", "forest_for15"]
    files, truth = _sift_files(train_list=train)
    _write_folder(tmp_path, files)
    _check_sift(load_sift_flow(data_home=tmp_path), truth, train)


@pytest.mark.parametrize("writer", ["zip", "folder"])
def test_sift_flow_image_suffixes_in_any_case(tmp_path, writer):
    files, truth = _sift_files()
    upper = f"SiftFlowDataset/Images/{_CATEGORY}/forest_for15"
    files[upper + ".JPG"] = files.pop(upper + ".jpg")
    if writer == "zip":
        _write_zip(tmp_path / "SiftFlowDataset.zip", files)
    else:
        _write_folder(tmp_path, files)
    _check_sift(load_sift_flow(data_home=tmp_path), truth)


def test_sift_flow_return_X_y_and_cache(tmp_path, monkeypatch, capsys):
    files, truth = _sift_files()
    _write_zip(tmp_path / "SiftFlowDataset.zip", files)
    images, labels = load_sift_flow(data_home=tmp_path, return_X_y=True)
    assert "parsing the SIFT Flow dataset" in capsys.readouterr().err
    assert len(images) == len(labels) == len(truth)

    def refuse(path):
        raise AssertionError("parsed again although the cache is valid")

    monkeypatch.setattr(_sift_flow, "_parse_source", refuse)
    _check_sift(load_sift_flow(data_home=tmp_path), truth)
    assert capsys.readouterr().err == ""


def test_sift_flow_download_and_failures(tmp_path, monkeypatch):
    files, truth = _sift_files()
    home = tmp_path / "home"
    with pytest.raises(DataNotFoundError) as info:
        load_sift_flow(data_home=home, download_if_missing=False)
    assert "'SiftFlowDataset.zip'" in str(info.value)
    assert str(home) in str(info.value)

    broken = _write_zip(tmp_path / "broken.zip", files, truncate=0.7)
    monkeypatch.setattr(_sift_flow, "SIFT_FLOW_URL", broken.as_uri())
    with pytest.raises(CorruptDataError, match="corrupt"):
        load_sift_flow(data_home=home)
    assert os.listdir(home) == []

    remote = _write_zip(tmp_path / "remote.zip", files)
    monkeypatch.setattr(_sift_flow, "SIFT_FLOW_URL", remote.as_uri())
    _check_sift(load_sift_flow(data_home=home), truth)
    assert sorted(os.listdir(home)) == ["SiftFlowDataset.skrcnn-cache.npz",
                                        "SiftFlowDataset.zip"]


def test_sift_flow_truncated_zip_is_named(tmp_path):
    files, _ = _sift_files()
    archive = _write_zip(tmp_path / "SiftFlowDataset.zip", files,
                         truncate=0.5)
    with pytest.raises(CorruptDataError, match="corrupt") as info:
        load_sift_flow(data_home=tmp_path)
    assert str(archive) in str(info.value)


def _load_broken_sift(tmp_path, edit):
    files, _ = _sift_files()
    edit(files)
    _write_zip(tmp_path / "SiftFlowDataset.zip", files)
    return load_sift_flow(data_home=tmp_path)


def _mat(**variables):
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, variables)
    return buffer.getvalue()


_MAT = f"SiftFlowDataset/SemanticLabels/{_CATEGORY}/forest_for15.mat"


@pytest.mark.parametrize("edit, match", [
    (lambda files: files.pop(_MAT), r"forest_for15\.mat: missing"),
    (lambda files: files.update({_MAT: b"MATLAB garbage"}),
     r"forest_for15\.mat: not a readable MATLAB file"),
    (lambda files: files.update({_MAT: _mat(L=np.zeros((12, 10)))}),
     r"forest_for15\.mat: has no variable 'S'"),
    (lambda files: files.update({_MAT: _mat(S=np.zeros((10, 10)))}),
     r"forest_for15\.mat: label matrix S is 10x10 but image "
     r"forest_for15\.jpg is 12x10"),
    (lambda files: files.update({_MAT: _mat(S=np.full((12, 10), 34.0))}),
     r"forest_for15\.mat: unknown class values \[34"),
    (lambda files: files.update({_MAT: _mat(S=np.full((12, 10), 1.5))}),
     r"forest_for15\.mat: unknown class values \[1\.5"),
    (lambda files: files.pop("SiftFlowDataset/TestSet1.txt"),
     r"TestSet1\.txt: missing"),
    (lambda files: files.update({"SiftFlowDataset/TestSet1.txt": "\r\n"}),
     r"TestSet1\.txt: lists no images"),
    (lambda files: files.update({"SiftFlowDataset/TestSet1.txt":
                                 b"x\\coast_nowhere.jpg\n"}),
     r"TestSet1\.txt: lists .*coast_nowhere"),
    (lambda files: files.update({"SiftFlowDataset/TrainSet1.txt":
                                 b"x\\coast_bea1.jpg\n"}),
     r"TrainSet1\.txt: lists 1 test images"),
])
def test_sift_flow_errors_name_the_file(tmp_path, edit, match):
    with pytest.raises(CorruptDataError, match=match):
        _load_broken_sift(tmp_path, edit)


def test_sift_flow_integer_label_matrices_are_accepted(tmp_path):
    def edit(files):
        files[_MAT] = _mat(S=np.full((12, 10), 28, dtype=np.uint8))
    data = _load_broken_sift(tmp_path, edit)
    labels = data.labels[data.filenames.index("forest_for15")]
    assert np.all(labels == 27) and data.class_names[27] == "sky"


# ----------------------------------------------------- the real archive

def test_real_stanford_archive(real_stanford):
    data = real_stanford
    assert len(data.images) == len(data.labels) == 715
    assert data.filenames == sorted(data.filenames)
    shapes = [image.shape[:2] for image in data.images]
    assert shapes == [labels.shape for labels in data.labels]
    assert shapes.count((240, 320)) == 531
    assert all(320 in shape for shape in shapes)

    counts = np.bincount(np.concatenate([l.ravel() for l in data.labels]) + 1,
                         minlength=9)
    shares = counts / counts.sum()
    assert shares[0] == pytest.approx(0.005, abs=0.001)
    expected = [14.5, 14.0, 22.5, 6.8, 4.0, 22.6, 1.3, 13.7]
    assert np.allclose(100 * shares[1:], expected, atol=0.051)

    pairs = []
    for group in np.unique(data.groups):
        members = np.flatnonzero(data.groups == group)
        if len(members) > 1:
            pairs.append(tuple(data.filenames[i] for i in members))
    assert sorted(pairs) == [("6000068", "6000318"), ("6000117", "6000324"),
                             ("6000257", "6000348")]
