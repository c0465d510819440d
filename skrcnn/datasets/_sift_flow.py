"""The SIFT Flow dataset (Liu, Yuen and Torralba; Tighe and Lazebnik).

Read from the archive as distributed (``SiftFlowDataset.zip``) or from its
extracted folder (``SiftFlowDataset/``): 256x256 JPEG images, MATLAB label
files whose variable ``S`` holds 0 (unlabelled) or 1..33, and the list of the
200 test images ``TestSet1.txt`` (Windows path separators).
"""

import io
import os
import zipfile
import zlib

import numpy as np
from sklearn.utils import Bunch

from ._base import (CorruptDataError, Timer, decode_jpeg,
                    groups_of_identical, load_arrays, pack, unpack)

SIFT_FLOW_URL = ("http://www.cs.unc.edu/~jtighe/Papers/ECCV10/siftflow/"
                 "SiftFlowDataset.zip")
ARCHIVE_NAME = "SiftFlowDataset.zip"
FOLDER_NAME = "SiftFlowDataset"
CACHE_NAME = "SiftFlowDataset.skrcnn-cache.npz"

_CATEGORY = "spatial_envelope_256x256_static_8outdoorcategories"
IMAGE_DIR = f"Images/{_CATEGORY}"
LABEL_DIR = f"SemanticLabels/{_CATEGORY}"
TEST_LIST = "TestSet1.txt"
TRAIN_LIST = "TrainSet1.txt"

CLASS_NAMES = [
    "awning", "balcony", "bird", "boat", "bridge", "building", "bus", "car",
    "cow", "crosswalk", "desert", "door", "fence", "field", "grass", "moon",
    "mountain", "person", "plant", "pole", "river", "road", "rock", "sand",
    "sea", "sidewalk", "sign", "sky", "staircase", "streetlight", "sun",
    "tree", "window"]

_DESCR = """\
SIFT Flow dataset (Liu, Yuen and Torralba; semantic labels by Tighe and
Lazebnik, ECCV 2010)
------------------------------------------------------------------------

2688 outdoor images of 256x256 pixels from LabelMe (8 scene categories:
coast, forest, highway, inside city, mountain, open country, street, tall
building), labelled per pixel with 33 classes. The standard split holds 200
test images (TestSet1.txt) and 2488 training images.

Classes 0..32: awning, balcony, bird, boat, bridge, building, bus, car, cow,
crosswalk, desert, door, fence, field, grass, moon, mountain, person, plant,
pole, river, road, rock, sand, sea, sidewalk, sign, sky, staircase,
streetlight, sun, tree, window (the files' 1..33); -1 marks unlabelled pixels
(the files' 0). The test set has no cow, desert or moon pixels. Two pairs of
byte-identical images exist; ``groups`` gives each pair one id.

Reference: C. Liu, J. Yuen, A. Torralba. Nonparametric Scene Parsing: Label
Transfer via Dense Scene Alignment. CVPR 2009. J. Tighe, S. Lazebnik.
SuperParsing: Scalable Nonparametric Image Parsing with Superpixels. ECCV
2010.
"""


def load_sift_flow(data_home=None, download_if_missing=True,
                   return_X_y=False):
    """Load the SIFT Flow dataset (2688 images of 256x256, 33 classes).

    Looks in ``data_home`` for the extracted folder ``SiftFlowDataset/``
    first, then for the archive ``SiftFlowDataset.zip``, and downloads the
    archive when neither is there. The first load parses the data and writes
    a binary cache beside it, ``SiftFlowDataset.skrcnn-cache.npz``, which
    later loads read instead; the cache is rebuilt whenever the archive or
    folder changes.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder holding the data; see :func:`get_data_home`.
    download_if_missing : bool, default=True
        Download the archive when it is not in ``data_home``. The download
        is checked in full before it is put in place.
    return_X_y : bool, default=False
        If True, return ``(images, labels)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        With attributes

        - ``images``: list of (256, 256, 3) uint8 arrays, sorted by name;
        - ``labels``: list of (256, 256) int64 arrays, 0..32, -1 for
          unlabelled pixels;
        - ``filenames``: list of file stems such as ``'coast_arnat59'``;
        - ``class_names``: the 33 class names;
        - ``train_indices``, ``test_indices``: sorted int64 arrays indexing
          the lists above; the test set is ``TestSet1.txt``, the training
          set ``TrainSet1.txt`` when present, otherwise all other images;
        - ``groups``: (n_images,) int64 array, one id per image except that
          byte-identical images share one;
        - ``DESCR``: a description of the dataset.
    (images, labels) : tuple
        If ``return_X_y`` is True.

    Raises
    ------
    DataNotFoundError
        If the data is missing and cannot be downloaded; the message says
        which file to put in which folder.
    CorruptDataError
        If the archive is unreadable or truncated, an image has no label
        file, a label file is unreadable, lacks ``S``, does not match its
        image's size or holds a value outside 0..33, or a split list names
        an image that does not exist. The message names the file.
    """
    arrays = load_arrays(data_home, ARCHIVE_NAME, FOLDER_NAME, CACHE_NAME,
                         SIFT_FLOW_URL, "SIFT Flow dataset", _parse_source,
                         download_if_missing)
    return _to_bunch(arrays, return_X_y)


def _to_bunch(arrays, return_X_y):
    images = unpack(arrays["images"], arrays["image_shapes"])
    labels = unpack(arrays["labels"], arrays["label_shapes"], np.int64)
    if return_X_y:
        return images, labels
    return Bunch(images=images, labels=labels,
                 filenames=arrays["filenames"].tolist(),
                 class_names=list(CLASS_NAMES),
                 train_indices=arrays["train_indices"].astype(np.int64),
                 test_indices=arrays["test_indices"].astype(np.int64),
                 groups=arrays["groups"].astype(np.int64), DESCR=_DESCR)


# ---------------------------------------------------------------- reading

class _Folder:
    """The extracted dataset folder, read through the same calls as a zip."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False

    def listdir(self, relpath):
        folder = os.path.join(self.path, *relpath.split("/"))
        return sorted(os.listdir(folder)) if os.path.isdir(folder) else []

    def exists(self, relpath):
        return os.path.isfile(os.path.join(self.path, *relpath.split("/")))

    def read(self, relpath):
        with open(os.path.join(self.path, *relpath.split("/")), "rb") as f:
            return f.read()

    def name(self, relpath):
        return os.path.join(self.path, *relpath.split("/"))


class _Zip:
    """The distributed zip archive; paths are relative to its top folder."""

    def __init__(self, path):
        self.path = path
        self._raw = open(path, "rb")  # a missing file is not a corrupt one
        try:
            self._zip = zipfile.ZipFile(self._raw)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            self._raw.close()
            raise CorruptDataError(f"{path}: corrupt or truncated zip archive "
                                   f"({exc})") from exc
        self._members = {info.filename: info for info in self._zip.infolist()
                         if not info.is_dir()}

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._zip.close()
        self._raw.close()
        return False

    def listdir(self, relpath):
        prefix = f"{FOLDER_NAME}/{relpath}/"
        return sorted(name[len(prefix):] for name in self._members
                      if name.startswith(prefix)
                      and "/" not in name[len(prefix):])

    def exists(self, relpath):
        return f"{FOLDER_NAME}/{relpath}" in self._members

    def read(self, relpath):
        try:  # the CRC check at the end of each member catches damage
            return self._zip.read(f"{FOLDER_NAME}/{relpath}")
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
            raise CorruptDataError(f"{self.name(relpath)}: corrupt archive "
                                   f"member ({exc})") from exc

    def name(self, relpath):
        return f"{self.path}: {FOLDER_NAME}/{relpath}"


def _parse_source(path):
    """Read the archive or folder at ``path`` into the arrays of the cache."""
    with Timer("parsing the SIFT Flow dataset (first load, cached "
               "afterwards) ..."):
        opener = _Folder if os.path.isdir(path) else _Zip
        with opener(path) as source:
            return _assemble(source)


def _assemble(source):
    # Stem -> file name, whose suffix may be in any case (.jpg, .JPG).
    image_names = {name[:-4]: name for name in source.listdir(IMAGE_DIR)
                   if name.lower().endswith(".jpg")
                   and not name.startswith(".")}
    stems = list(image_names)
    if not stems:
        raise CorruptDataError(
            f"{source.name(IMAGE_DIR)}: no images found; expected the SIFT "
            f"Flow layout ({FOLDER_NAME}/{IMAGE_DIR}/*.jpg, "
            f"{FOLDER_NAME}/{LABEL_DIR}/*.mat, {FOLDER_NAME}/{TEST_LIST})")
    stems.sort()
    test = _read_split(source, TEST_LIST, stems)
    if source.exists(TRAIN_LIST):
        train = _read_split(source, TRAIN_LIST, stems)
        overlap = np.intersect1d(train, test)
        if overlap.size:
            raise CorruptDataError(
                f"{source.name(TRAIN_LIST)}: lists {overlap.size} test "
                f"images, e.g. {stems[overlap[0]]!r}")
    else:
        train = np.setdiff1d(np.arange(len(stems)), test)

    images, labels, jpegs = [], [], []
    for stem in stems:
        image_path = f"{IMAGE_DIR}/{image_names[stem]}"
        label_path = f"{LABEL_DIR}/{stem}.mat"
        jpegs.append(source.read(image_path))
        image = decode_jpeg(jpegs[-1], source.name(image_path))
        if not source.exists(label_path):
            raise CorruptDataError(f"{source.name(label_path)}: missing; "
                                   "every image needs its label file")
        label = _parse_label_mat(source.read(label_path),
                                 source.name(label_path))
        if label.shape != image.shape[:2]:
            raise CorruptDataError(
                f"{source.name(label_path)}: label matrix S is "
                f"{label.shape[0]}x{label.shape[1]} but image "
                f"{image_names[stem]} is "
                f"{image.shape[0]}x{image.shape[1]}")
        images.append(image)
        labels.append(label)

    image_flat, image_shapes = pack(images)
    label_flat, label_shapes = pack(labels)
    return dict(images=image_flat, image_shapes=image_shapes,
                labels=label_flat, label_shapes=label_shapes,
                filenames=np.array(stems), train_indices=train,
                test_indices=test, groups=groups_of_identical(jpegs))


def _read_split(source, relpath, stems):
    """Indices (into ``stems``) of the images a split list names."""
    if not source.exists(relpath):
        raise CorruptDataError(f"{source.name(relpath)}: missing; it lists "
                               "the images of the standard split")
    text = source.read(relpath).decode("utf-8", "replace")
    position = {stem: i for i, stem in enumerate(stems)}
    indices = set()
    for line in text.splitlines():  # also splits CRLF line ends
        entry = line.strip()
        if not entry:
            continue
        # Lines look like "spatial_envelope_..._8outdoorcategories\name.jpg".
        stem = os.path.splitext(entry.replace("\\", "/").rsplit("/", 1)[-1])[0]
        if stem not in position:
            raise CorruptDataError(f"{source.name(relpath)}: lists {entry!r},"
                                   f" which is not in {IMAGE_DIR}/")
        indices.add(position[stem])
    if not indices:
        raise CorruptDataError(f"{source.name(relpath)}: lists no images")
    return np.array(sorted(indices), dtype=np.int64)


def _parse_label_mat(data, name):
    """Read the label matrix ``S`` of a MATLAB file as int8, 0 -> -1."""
    from scipy.io import loadmat  # imported late: a cached load never needs it

    try:
        mat = loadmat(io.BytesIO(data), variable_names=["S"])
    except Exception as exc:  # scipy raises many types on damaged files
        raise CorruptDataError(f"{name}: not a readable MATLAB file "
                               f"({type(exc).__name__}: {exc})") from exc
    if "S" not in mat:
        raise CorruptDataError(f"{name}: has no variable 'S' (the label "
                               "matrix)")
    matrix = np.asarray(mat["S"])
    if matrix.ndim != 2 or not (np.issubdtype(matrix.dtype, np.integer)
                                or np.issubdtype(matrix.dtype, np.floating)):
        raise CorruptDataError(f"{name}: S should be a 2-D numeric matrix, "
                               f"got {matrix.dtype} of shape {matrix.shape}")
    values = np.unique(matrix)
    bad = values[(values != np.round(values)) | (values < 0)
                 | (values > len(CLASS_NAMES))]
    if bad.size:
        raise CorruptDataError(
            f"{name}: unknown class values {bad[:10].tolist()} in S; "
            f"expected 0 (unlabelled) to {len(CLASS_NAMES)}")
    return (matrix.astype(np.int16) - 1).astype(np.int8)
