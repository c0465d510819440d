"""Helpers shared by the dataset loaders: where data lives, downloads, caches.

Everything that touches the file system is written so that an interruption
(Ctrl-C, a full disk, a dropped connection) never leaves a file in place that
a later call would trust: downloads and caches are written to a temporary
file in the destination folder and moved into place with ``os.replace``.
"""

import hashlib
import http.client
import os
import secrets
import shutil
import sys
import time
import urllib.request
import warnings
import zipfile

import numpy as np

DATA_HOME_ENV = "SKRCNN_DATA"
DEFAULT_DATA_HOME = os.path.join("~", "skrcnn_data")

# Bumped whenever the cache layout changes, so that old caches are ignored.
CACHE_VERSION = 1


class DataNotFoundError(OSError):
    """A dataset is neither in the data folder nor obtainable by download."""


class CorruptDataError(ValueError):
    """A dataset file is unreadable, truncated or not laid out as expected."""


def get_data_home(data_home=None):
    """Return the folder where skrcnn keeps datasets, creating it if needed.

    Parameters
    ----------
    data_home : str or path-like, default=None
        The folder to use. When None: the ``SKRCNN_DATA`` environment
        variable if it is set, otherwise ``~/skrcnn_data``. A leading ``~``
        is expanded.

    Returns
    -------
    str
        The absolute path of the data folder.

    Raises
    ------
    NotADirectoryError
        If ``data_home`` names a file.
    """
    if data_home is None:
        data_home = os.environ.get(DATA_HOME_ENV) or DEFAULT_DATA_HOME
    data_home = os.path.abspath(os.path.expanduser(os.fspath(data_home)))
    if os.path.exists(data_home) and not os.path.isdir(data_home):
        raise NotADirectoryError(f"data home {data_home} is a file, not a "
                                 "folder")
    os.makedirs(data_home, exist_ok=True)
    return data_home


def progress(message):
    """Tell the user on stderr what a slow step is doing."""
    print(f"skrcnn: {message}", file=sys.stderr, flush=True)


def missing_message(dataset, filename, folder, url, reason):
    """Say exactly which file to put where, for a dataset that is missing."""
    return (f"{dataset} not found in {folder!r} and {reason}. Download {url} "
            f"yourself and put {filename!r} (or the folder it extracts to) "
            f"in {folder!r}, or pass data_home= (or set {DATA_HOME_ENV}) to "
            f"the folder that holds it.")


def fetch(url, target, verify, *, dataset):
    """Download ``url`` to ``target`` atomically; return ``verify``'s result.

    The bytes go to a temporary file beside ``target``; ``verify(tmp_path)``
    must read it completely and succeed before it is renamed into place, so a
    truncated or corrupt download never ends up where later calls look.

    Raises
    ------
    DataNotFoundError
        If the download fails (no network, HTTP error, short read).
    CorruptDataError
        If the downloaded file fails ``verify``.
    """
    folder, filename = os.path.split(target)
    help_text = missing_message(dataset, filename, folder, url,
                                "the download failed")
    progress(f"downloading {url} to {target} ...")
    fd, tmp = _create_temp(folder, filename)
    try:
        try:
            with os.fdopen(fd, "wb") as out:
                _copy_url(url, out)
        # URLError, HTTPError and timeouts are OSErrors; a chunked transfer
        # cut short raises http.client.IncompleteRead.
        except (OSError, http.client.HTTPException) as exc:
            raise DataNotFoundError(f"{help_text} ({exc})") from exc
        try:
            result = verify(tmp)
        except CorruptDataError as exc:
            raise CorruptDataError(
                f"the file downloaded from {url} is corrupt or incomplete "
                f"and was discarded: {exc}") from exc
        os.replace(tmp, target)
    except BaseException:
        _remove_quietly(tmp)
        raise
    return result


def _copy_url(url, out):
    with urllib.request.urlopen(url, timeout=60) as response:
        expected = response.headers.get("Content-Length")
        shutil.copyfileobj(response, out, 1 << 20)
        size = out.tell()
    # urllib returns a short body without complaint when a server closes early.
    if expected is not None and int(expected) != size:
        raise OSError(f"connection closed after {size} of {expected} bytes")


def _create_temp(folder, filename):
    """Open a new hidden file beside ``filename`` for writing.

    Unlike ``tempfile.mkstemp`` (mode 0600) the file gets the permissions of
    any other new file (0666 less the umask), because it is renamed into
    place and shared data folders must stay readable by others.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        path = os.path.join(folder,
                            f".{filename}.{secrets.token_hex(4)}.part")
        try:
            return os.open(path, flags, 0o666), path
        except FileExistsError:
            continue


def _remove_quietly(path):
    try:
        os.remove(path)
    except OSError:
        pass


def source_key(path):
    """A string that changes whenever the dataset file or folder changes.

    A file is identified by its size and modification time; a folder by the
    sizes and modification times of every file below it (a few thousand
    ``stat`` calls, much cheaper than re-reading the data).
    """
    if os.path.isfile(path):
        stat = os.stat(path)
        return f"v{CACHE_VERSION}:file:{stat.st_size}:{stat.st_mtime_ns}"
    digest = hashlib.sha1()
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            stat = os.stat(full)
            rel = os.path.relpath(full, path)
            digest.update(f"{rel}\0{stat.st_size}\0{stat.st_mtime_ns}\n"
                          .encode("utf-8", "surrogateescape"))
    return f"v{CACHE_VERSION}:dir:{digest.hexdigest()}"


def read_cache(cache_path, key):
    """Return the arrays saved under ``key``, or None if absent or stale.

    A cache that cannot be read (partial, from another version) counts as
    absent: it is only ever a copy of data that can be parsed again.
    """
    if not os.path.isfile(cache_path):
        return None
    try:
        with np.load(cache_path, allow_pickle=False) as npz:
            if str(npz["key"]) != key:
                return None
            return {name: npz[name] for name in npz.files if name != "key"}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None


def write_cache(cache_path, key, arrays):
    """Save ``arrays`` under ``key`` atomically; warn instead of failing.

    A read-only data folder must not stop the data from loading, it only
    makes the next load slow again.
    """
    folder, filename = os.path.split(cache_path)
    tmp = None
    try:
        fd, tmp = _create_temp(folder, filename)
        with os.fdopen(fd, "wb") as out:
            # Uncompressed: loading then costs a disk read and no inflating.
            np.savez(out, key=np.asarray(key), **arrays)
        os.replace(tmp, cache_path)
    except OSError as exc:
        if tmp is not None:
            _remove_quietly(tmp)
        warnings.warn(f"could not write the cache {cache_path!r} ({exc}); "
                      "the next load will parse the dataset again",
                      RuntimeWarning, stacklevel=3)


def load_arrays(data_home, archive_name, folder_name, cache_name, url,
                dataset, parse, download_if_missing):
    """The cached arrays of a dataset: read the extracted folder or the
    archive in ``data_home`` (through the cache), download the archive when
    neither is there and ``download_if_missing``, else raise
    :class:`DataNotFoundError` saying which file to put where."""
    home = get_data_home(data_home)
    archive = os.path.join(home, archive_name)
    folder = os.path.join(home, folder_name)
    cache = os.path.join(home, cache_name)
    if os.path.isdir(folder) or os.path.isfile(archive):
        source = folder if os.path.isdir(folder) else archive
        key = source_key(source)
        arrays = read_cache(cache, key)
        if arrays is None:
            arrays = parse(source)
            write_cache(cache, key, arrays)
        return arrays
    if download_if_missing:
        arrays = fetch(url, archive, parse, dataset=dataset)
        write_cache(cache, source_key(archive), arrays)
        return arrays
    raise DataNotFoundError(missing_message(
        dataset, archive_name, home, url, "download_if_missing=False"))


def pack(arrays):
    """Concatenate arrays of different shapes into one flat array + shapes."""
    shapes = np.array([a.shape for a in arrays], dtype=np.int64)
    flat = (np.concatenate([a.ravel() for a in arrays]) if arrays
            else np.zeros(0))
    return flat, shapes


def unpack(flat, shapes, dtype=None):
    """Split a flat array made by :func:`pack` back into a list of arrays.

    The pieces are views of one converted array, so converting the dtype
    costs one allocation rather than one per image.
    """
    if dtype is not None:
        flat = flat.astype(dtype, copy=False)
    sizes = np.prod(shapes, axis=1)
    ends = np.cumsum(sizes)
    return [flat[end - size:end].reshape(shape)
            for end, size, shape in zip(ends, sizes, shapes.tolist())]


def groups_of_identical(blobs):
    """One group id per item; byte-identical items share an id.

    Ids are consecutive and follow the order of first appearance, so a
    dataset without duplicates gets ``0, 1, ..., n - 1``.
    """
    first_seen = {}
    groups = np.empty(len(blobs), dtype=np.int64)
    for i, blob in enumerate(blobs):
        digest = hashlib.sha256(blob).digest()
        groups[i] = first_seen.setdefault(digest, len(first_seen))
    return groups


def decode_jpeg(data, name):
    """Decode JPEG bytes to an (H, W, 3) uint8 array; errors name the file."""
    import imageio.v3 as iio  # imported late: a cached load never needs it

    try:
        # Pillow only (imageio would try every other plugin on bad bytes);
        # mode RGB also converts greyscale and CMYK JPEGs.
        image = iio.imread(data, plugin="pillow", mode="RGB")
    except Exception as exc:  # decoders raise a zoo of types on bad input
        raise CorruptDataError(f"{name}: not a readable JPEG image "
                               f"({type(exc).__name__}: {exc})") from exc
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise CorruptDataError(f"{name}: expected an 8-bit RGB image, got "
                               f"{image.dtype} of shape {image.shape}")
    return image


class Timer:
    """Announce a slow step on stderr, and how long it took when done."""

    def __init__(self, message):
        self.message = message

    def __enter__(self):
        progress(self.message)
        self._start = time.perf_counter()
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            progress(f"done in {time.perf_counter() - self._start:.1f} s")
