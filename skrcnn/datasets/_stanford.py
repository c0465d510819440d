"""The Stanford Background Dataset (Gould, Fulton and Koller, ICCV 2009).

Read from the archive as distributed (``iccv09Data.tar.gz``) or from its
extracted folder (``iccv09Data/``): ``images/*.jpg`` and
``labels/*.regions.txt``, whitespace-separated integer matrices with classes
0..7 and -1 for unknown pixels. The label text is about 120 MB, so it is
parsed with a vectorised byte scanner rather than a text parser, and the
result is cached beside the archive.
"""

import os
import re
import tarfile
import zlib

import numpy as np
from sklearn.utils import Bunch

from ._base import (CorruptDataError, Timer, decode_jpeg,
                    groups_of_identical, load_arrays, pack, unpack)

STANFORD_URL = "http://dags.stanford.edu/data/iccv09Data.tar.gz"
ARCHIVE_NAME = "iccv09Data.tar.gz"
FOLDER_NAME = "iccv09Data"
CACHE_NAME = "iccv09Data.skrcnn-cache.npz"

CLASS_NAMES = ["sky", "tree", "road", "grass", "water", "building",
               "mountain", "foreground object"]
_LABEL_SUFFIX = ".regions.txt"

_DESCR = """\
Stanford Background Dataset (Gould, Fulton and Koller, ICCV 2009)
----------------------------------------------------------------

715 outdoor images from LabelMe, MSRC, PASCAL VOC and Geometric Context,
about 320x240 pixels (531 are exactly 240x320; portrait and other sizes have
one side of 320), labelled per pixel through Amazon Mechanical Turk.

Classes: 0 sky, 1 tree, 2 road, 3 grass, 4 water, 5 building, 6 mountain,
7 foreground object; -1 marks unknown pixels (about 0.5%), which must be
ignored in training losses and metrics.

Three pairs of byte-identical images carry different labels; ``groups`` gives
both images of a pair the same id so that group-aware cross-validation
(e.g. ``GroupKFold``) keeps them on the same side of a split.

Reference: S. Gould, R. Fulton, D. Koller. Decomposing a Scene into Geometric
and Semantically Consistent Regions. ICCV 2009.
http://dags.stanford.edu/projects/scenedataset.html
"""


def load_stanford_background(data_home=None, download_if_missing=True,
                             return_X_y=False):
    """Load the Stanford Background Dataset (715 images, 8 classes).

    Looks in ``data_home`` for the extracted folder ``iccv09Data/`` first,
    then for the archive ``iccv09Data.tar.gz``, and downloads the archive
    when neither is there. The first load parses the data (a few seconds)
    and writes a binary cache beside it, ``iccv09Data.skrcnn-cache.npz``
    (about 220 MB), which later loads read instead; the cache is rebuilt
    whenever the archive or folder changes.

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

        - ``images``: list of (H, W, 3) uint8 arrays, sorted by file name;
        - ``labels``: list of (H, W) int64 arrays, 0..7, -1 for unknown;
        - ``filenames``: list of file stems such as ``'0000047'``;
        - ``class_names``: the 8 class names;
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
        file, a label matrix does not match its image's size, or it holds a
        value outside -1..7. The message names the file.
    """
    arrays = load_arrays(data_home, ARCHIVE_NAME, FOLDER_NAME, CACHE_NAME,
                         STANFORD_URL, "Stanford Background Dataset", _parse_source,
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
                 groups=arrays["groups"].astype(np.int64), DESCR=_DESCR)


# ---------------------------------------------------------------- reading

def _parse_source(path):
    """Read the archive or folder at ``path`` into the arrays of the cache."""
    with Timer("parsing Stanford Background labels (first load, cached "
               "afterwards) ..."):
        if os.path.isdir(path):
            entries = _iter_folder(path)
        else:
            entries = _iter_archive(path)
        return _assemble(entries, path)


def _member_kind(relpath):
    """Classify ``iccv09Data/images/X.jpg`` and ``.../labels/X.regions.txt``.

    Returns ``(kind, stem)`` with kind "image", "label" or None (anything
    else: README, horizons, the surfaces and layers files, macOS litter).
    """
    parts = relpath.split("/")
    if parts[0] == ".":
        parts = parts[1:]
    if len(parts) != 3 or parts[0] != FOLDER_NAME or parts[2].startswith("."):
        return None, None
    folder, name = parts[1], parts[2]
    if folder == "images" and name.lower().endswith(".jpg"):
        return "image", name[:-4]
    if folder == "labels" and name.endswith(_LABEL_SUFFIX):
        return "label", name[:-len(_LABEL_SUFFIX)]
    return None, None


def _iter_archive(path):
    """Yield ``(relpath, bytes)`` of the images and label files in order."""
    with open(path, "rb") as raw:  # a missing file is not a corrupt one
        try:
            with tarfile.open(fileobj=raw, mode="r:*") as tar:
                for member in tar:
                    kind, _ = _member_kind(member.name)
                    if kind is not None and member.isfile():
                        yield member.name, tar.extractfile(member).read()
        # gzip reports damage as OSError (BadGzipFile), EOFError or
        # zlib.error, tarfile as TarError.
        except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            raise CorruptDataError(f"{path}: corrupt or truncated archive "
                                   f"({type(exc).__name__}: {exc})") from exc


def _iter_folder(path):
    """Yield ``(relpath, bytes)`` like :func:`_iter_archive`, from a folder."""
    for sub in ("images", "labels"):
        folder = os.path.join(path, sub)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            relpath = f"{FOLDER_NAME}/{sub}/{name}"
            if _member_kind(relpath)[0] is not None:
                with open(os.path.join(folder, name), "rb") as f:
                    yield relpath, f.read()


def _display_name(source, relpath):
    """How an error names a file: a path, or ``archive: member``."""
    if os.path.isdir(source):
        return os.path.join(os.path.dirname(source), *relpath.split("/"))
    return f"{source}: {relpath}"


def _assemble(entries, source):
    jpegs, matrices = {}, {}
    for relpath, data in entries:
        kind, stem = _member_kind(relpath)
        if kind == "image":
            jpegs[stem] = data
        else:  # parsed at once: the text is 30 times the size of the result
            matrices[stem] = parse_label_matrix(
                data, _display_name(source, relpath))
    if not jpegs:
        raise CorruptDataError(
            f"{source}: no images found in {FOLDER_NAME}/images/; expected "
            f"the Stanford Background Dataset layout ({FOLDER_NAME}/images/"
            f"*.jpg, {FOLDER_NAME}/labels/*{_LABEL_SUFFIX})")

    stems = sorted(jpegs)
    images, labels = [], []
    for stem in stems:
        label_path = f"{FOLDER_NAME}/labels/{stem}{_LABEL_SUFFIX}"
        if stem not in matrices:
            raise CorruptDataError(
                f"{_display_name(source, label_path)}: missing; every image "
                f"in {FOLDER_NAME}/images/ needs its label file")
        image = decode_jpeg(jpegs[stem], _display_name(
            source, f"{FOLDER_NAME}/images/{stem}.jpg"))
        if matrices[stem].shape != image.shape[:2]:
            raise CorruptDataError(
                f"{_display_name(source, label_path)}: label matrix is "
                f"{_size(matrices[stem].shape)} but image {stem}.jpg is "
                f"{_size(image.shape)}")
        images.append(image)
        labels.append(matrices[stem])

    image_flat, image_shapes = pack(images)
    label_flat, label_shapes = pack(labels)
    return dict(images=image_flat, image_shapes=image_shapes,
                labels=label_flat, label_shapes=label_shapes,
                filenames=np.array(stems),
                groups=groups_of_identical([jpegs[s] for s in stems]))


def _size(shape):
    return f"{shape[0]} rows x {shape[1]} columns"


# ---------------------------------------------------------- label parsing

_WHITESPACE = np.zeros(256, dtype=bool)
_WHITESPACE[[ord(c) for c in " \t\n\r\v\f"]] = True
_MIN_LABEL, _MAX_LABEL = -1, len(CLASS_NAMES) - 1
_INTEGER_TOKEN = re.compile(rb"[-+]?[0-9]+")


def parse_label_matrix(data, name):
    """Parse a ``.regions.txt`` file: one matrix row per line, int8 values.

    Parameters
    ----------
    data : bytes
        The file's content.
    name : str
        How error messages name the file.

    Returns
    -------
    ndarray of int8, shape (rows, columns)

    Raises
    ------
    CorruptDataError
        If the text is not a rectangular integer matrix or holds a value
        outside -1..7.
    """
    parsed = _scan_single_digits(np.frombuffer(data, dtype=np.uint8))
    if parsed is None:  # multi-digit or odd tokens: exact but slow path
        parsed = _parse_tokens(data, name)
    values, row_lengths = parsed
    row_lengths = row_lengths[row_lengths > 0]  # blank lines, trailing newline
    if row_lengths.size == 0:
        raise CorruptDataError(f"{name}: empty label file")
    if np.any(row_lengths != row_lengths[0]):
        raise CorruptDataError(
            f"{name}: rows have different lengths ({row_lengths.min()} to "
            f"{row_lengths.max()} values); not a label matrix")
    bad = (values < _MIN_LABEL) | (values > _MAX_LABEL)
    if bad.any():
        raise CorruptDataError(
            f"{name}: unknown class values {sorted(set(values[bad].tolist()))}"
            f"; expected {_MIN_LABEL} (unknown) to {_MAX_LABEL}")
    return values.astype(np.int8).reshape(row_lengths.size, row_lengths[0])


def _scan_single_digits(text):
    """Vectorised parse for the common case: every token is d or -d.

    Returns ``(values, tokens per line)``, or None when some token has
    another form (then the caller falls back to the exact parser).
    """
    is_digit = (text - 48) < 10  # uint8 arithmetic wraps for bytes below '0'
    is_minus = text == ord("-")
    filled = ~_WHITESPACE[text]
    if np.any(filled & ~(is_digit | is_minus)):
        return None
    # Two adjacent non-space bytes are allowed only as '-' then a digit.
    pairs = filled[:-1] & filled[1:]
    if np.any(pairs & ~(is_minus[:-1] & is_digit[1:])):
        return None
    if text.size and is_minus[-1]:
        return None
    if np.any(is_minus[:-1] & ~is_digit[1:]):
        return None

    digits = np.flatnonzero(is_digit)
    values = (text[digits] - 48).astype(np.int8)
    negative = is_minus[digits - 1] & (digits > 0)
    np.negative(values, out=values, where=negative)
    newlines = np.flatnonzero(text == ord("\n"))
    line_of_token = np.searchsorted(newlines, digits)
    return values, np.bincount(line_of_token, minlength=newlines.size + 1)


def _parse_tokens(data, name):
    lines = data.split(b"\n")
    rows = []
    for line in lines:
        tokens = line.split()
        # int() would also take "0_7" (np.loadtxt does not).
        bad = [t for t in tokens if not _INTEGER_TOKEN.fullmatch(t)]
        if bad:
            raise CorruptDataError(f"{name}: not an integer matrix (token "
                                   f"{bad[0].decode(errors='replace')!r})")
        rows.append([int(token) for token in tokens])
    try:
        values = np.array([v for row in rows for v in row], dtype=np.int64)
    except OverflowError:
        raise CorruptDataError(f"{name}: a label is too large for an integer "
                               f"matrix; expected {_MIN_LABEL} (unknown) to "
                               f"{_MAX_LABEL}") from None
    return values, np.array([len(row) for row in rows], dtype=np.int64)
