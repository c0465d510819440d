"""Files of the command line: images, label maps, model files, progress.

Everything here turns a problem with the user's input into an
:class:`InputError` whose message names the file; ``skrcnn.cli`` prints it as
one line and exits with status 2.

Conventions
-----------
Images
    ``.jpg``, ``.jpeg``, ``.png``, ``.bmp``, ``.tif``, ``.tiff``; greyscale,
    palette and RGBA pictures become RGB (alpha is dropped). 16-bit
    greyscale and floating-point pictures are read as float (the segmenter
    standardises every image, so the scale does not matter); 16-bit colour
    PNGs at 8 bits (Pillow reads their high bytes only).
Label maps, matched to an image by file stem (``a.jpg`` <-> ``a.png``)
    * ``.png``: one integer label per pixel, 8-bit (0..254, 255 = unknown)
      or 16-bit (0..65534, 65535 = unknown); palette PNGs (as in PASCAL VOC)
      are read by palette index, so 255 is unknown there too. An 8-bit RGB
      PNG is accepted only when its three channels are equal; 16-bit colour
      or grey-and-alpha ones are refused (Pillow reads their high bytes
      only).
    * ``.npy``: an (H, W) integer array (or integral floats); negative =
      unknown.
    * ``.regions.txt``: the Stanford Background text matrix (-1 = unknown).
Model files
    ``joblib.dump`` of a dict ``{"format": "skrcnn-model", "version": 1,
    "model": estimator, "class_names": list or None, "training": dict}``;
    ``class_names[v]`` names label value ``v``. A bare fitted
    :class:`~skrcnn.RecurrentCNNSegmenter`, or a scikit-learn ``Pipeline``
    ending in one, saved with ``joblib.dump`` loads as well. Loading runs
    pickle: load only model files you trust.
"""

import os
import re
import sys

import numpy as np

from ._validation import check_label_values

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
LABEL_SUFFIXES = (".png", ".npy", ".regions.txt")
MODEL_FORMAT = "skrcnn-model"
MODEL_VERSION = 1

#: Unknown label in 8-bit and 16-bit label PNGs.
UNKNOWN_8, UNKNOWN_16 = 255, 65535


class InputError(Exception):
    """Bad input (a missing or unreadable file, a mismatch, a bad value)."""


# ------------------------------------------------------------------ files

def _hidden(name):
    return name.startswith(".")


def list_images(folder):
    """The image files directly in ``folder``, sorted by name."""
    if not os.path.isdir(folder):
        raise InputError(f"{folder}: no such folder" if not os.path.exists(
            folder) else f"{folder}: not a folder")
    try:
        names = sorted(os.listdir(folder))
    except OSError as exc:
        raise InputError(f"{folder}: cannot list the folder "
                         f"({exc.strerror or exc})") from None
    paths = [os.path.join(folder, name) for name in names
             if not _hidden(name) and name.lower().endswith(IMAGE_SUFFIXES)
             and os.path.isfile(os.path.join(folder, name))]
    if not paths:
        raise InputError(f"{folder}: no images (*{', *'.join(IMAGE_SUFFIXES)})"
                         " in this folder")
    return paths


def collect_images(inputs):
    """Image files from a list of files and folders, in the order given."""
    paths = []
    for path in inputs:
        if os.path.isdir(path):
            paths += list_images(path)
        elif os.path.isfile(path):
            paths.append(path)
        else:
            raise InputError(f"{path}: no such file or folder")
    return paths


def stem(path):
    """``a/b/x.regions.txt`` -> ``x``; ``a/b/x.jpg`` -> ``x``."""
    name = os.path.basename(path)
    if name.lower().endswith(".regions.txt"):
        return name[:-len(".regions.txt")]
    return os.path.splitext(name)[0]


def check_unique_stems(paths):
    """Fail if two inputs would write the same output files."""
    seen = {}
    for path in paths:
        previous = seen.setdefault(stem(path), path)
        if previous is path:
            continue
        if os.path.realpath(previous) == os.path.realpath(path):
            raise InputError(f"{path}: given twice")
        raise InputError(
            f"{previous} and {path} have the same name {stem(path)!r}: "
            "their outputs would overwrite each other; rename one")


OUTPUT_SUFFIXES = ("_labels.png", "_overlay.png")


def _written_by_predict(path):
    """Whether ``path`` is a PNG that 'skrcnn predict' wrote (its mark)."""
    from PIL import Image

    try:
        with Image.open(path) as picture:
            return picture.format == "PNG" and \
                picture.info.get(OUTPUT_MARK[0]) == OUTPUT_MARK[1]
    except Exception:  # unreadable: not ours; check_pictures names it
        return False


def drop_predict_outputs(paths):
    """``paths`` without the label maps and overlays 'skrcnn predict'
    wrote (``x_labels.png`` and ``x_overlay.png`` carrying its mark):
    outputs, never images to label or train on. Returns (kept paths,
    dropped paths)."""
    kept, dropped = [], []
    for path in paths:
        name = os.path.basename(path)
        ours = any(name.endswith(suffix) for suffix in OUTPUT_SUFFIXES) \
            and _written_by_predict(path)
        (dropped if ours else kept).append(path)
    return kept, dropped


def check_outputs_spare_inputs(paths, output_dir, suffixes):
    """Fail if an output file would overwrite one of the inputs."""
    inputs = {os.path.realpath(path): path for path in paths}
    for path in paths:
        for suffix in suffixes:
            output = os.path.join(output_dir, stem(path) + suffix)
            if os.path.realpath(output) in inputs:
                raise InputError(
                    f"{inputs[os.path.realpath(output)]}: an input, would "
                    f"be overwritten by the output {output} of {path}; "
                    "choose another --output-dir or rename it")


def pair_labels(image_paths, labels_folder):
    """The label file of every image, matched by stem in ``labels_folder``."""
    if not os.path.isdir(labels_folder):
        raise InputError(f"{labels_folder}: no such folder" if not
                         os.path.exists(labels_folder) else
                         f"{labels_folder}: not a folder")
    by_stem = {}
    for name in sorted(os.listdir(labels_folder)):
        if not _hidden(name) and name.lower().endswith(LABEL_SUFFIXES):
            by_stem.setdefault(stem(name), []).append(
                os.path.join(labels_folder, name))
    same = os.path.abspath(labels_folder) == os.path.abspath(
        os.path.dirname(image_paths[0]) if image_paths else "")
    label_paths = []
    for path in image_paths:
        found = [p for p in by_stem.get(stem(path), [])
                 if not (same and os.path.samefile(p, path))]
        if not found:
            raise InputError(
                f"{path}: no label file for this image in {labels_folder} "
                f"(expected {stem(path)}.png, {stem(path)}.npy or "
                f"{stem(path)}.regions.txt)")
        if len(found) > 1:
            raise InputError(f"{path}: several label files match this "
                             f"image: {', '.join(found)}; keep one")
        label_paths.append(found[0])
    return label_paths


# ----------------------------------------------------------------- images

def _open_picture(path, load=True):
    from PIL import Image

    try:
        with Image.open(path) as picture:
            if load:
                picture.load()  # the pixels stay when the file closes
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not an image") from None
    except Exception as exc:  # Pillow raises many types on bad bytes
        raise InputError(f"{path}: not a readable image "
                         f"({type(exc).__name__}: {exc})") from None
    return picture


def check_pictures(paths):
    """Fail before any image is labelled when a file is not a picture
    (its header only is read: cheap, but a file cut short inside its pixel
    data is found only when read)."""
    for path in paths:
        _open_picture(path, load=False)


def read_image(path):
    """An (H, W, 3) RGB array: uint8, or float32 for deeper pictures."""
    picture = _open_picture(path)
    if picture.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        image = np.asarray(picture, dtype=np.float32)
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
    else:
        if picture.mode != "RGB":
            picture = picture.convert("RGB")
        image = np.asarray(picture)
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"{path}: expected an RGB image, got shape "
                         f"{image.shape}")
    return image


def image_as_uint8(image):
    """The image for display: uint8 as it is, other types rescaled."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image
    image = image.astype(np.float64)
    low, high = float(image.min()), float(image.max())
    if low >= 0 and high <= 1:
        return np.round(image * 255).astype(np.uint8)
    if low >= 0 and high <= 255:
        return np.round(image).astype(np.uint8)
    return np.round((image - low) / max(high - low, 1e-12) * 255).astype(
        np.uint8)


# ------------------------------------------------------------- label maps

def read_label_map(path):
    """An (H, W) int64 label map; -1 marks unknown pixels."""
    suffix = path.lower()
    if suffix.endswith(".npy"):
        return _read_npy_labels(path)
    if suffix.endswith(".regions.txt"):
        from .datasets._stanford import parse_label_matrix

        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({exc.strerror or exc})") \
                from None
        try:
            return parse_label_matrix(data, path).astype(np.int64)
        except ValueError as exc:
            raise InputError(str(exc)) from None
    return _read_png_labels(path)


def _read_npy_labels(path):
    try:
        labels = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except Exception as exc:
        raise InputError(f"{path}: not a readable .npy array "
                         f"({type(exc).__name__}: {exc})") from None
    if not isinstance(labels, np.ndarray) or labels.ndim != 2:
        raise InputError(f"{path}: expected an (H, W) label array, got shape "
                         f"{getattr(labels, 'shape', None)}")
    if labels.dtype.kind != "b":  # a boolean mask is labels 0 and 1
        try:
            check_label_values(labels, f"{path}:")
        except (ValueError, TypeError) as exc:
            raise InputError(str(exc)) from None
    labels = labels.astype(np.int64)
    labels[labels < 0] = -1
    return labels


def _png_bit_depth(path):
    """The bit depth in a PNG's header (None if it has none)."""
    with open(path, "rb") as file:
        head = file.read(25)
    if len(head) == 25 and head[:8] == b"\x89PNG\r\n\x1a\n" \
            and head[12:16] == b"IHDR":
        return head[24]
    return None


def _read_png_labels(path):
    picture = _open_picture(path)
    mode = picture.mode
    if mode in ("RGB", "RGBA", "LA") and _png_bit_depth(path) == 16:
        raise InputError(
            f"{path}: a 16-bit PNG with colour or alpha channels, whose "
            "values Pillow reads only in part; save label maps as 16-bit "
            "greyscale (65535 = unknown)")
    if mode in ("RGB", "RGBA", "LA"):
        channels = np.asarray(picture)
        colour = channels[..., :3] if mode != "LA" else channels[..., :1]
        if (colour != colour[..., :1]).any():
            raise InputError(
                f"{path}: a colour picture; label PNGs must hold one integer "
                "label per pixel (8-bit grey or palette, 255 = unknown; or "
                "16-bit, 65535 = unknown)")
        labels, unknown = colour[..., 0], UNKNOWN_8
    elif mode in ("L", "P"):
        labels, unknown = np.asarray(picture), UNKNOWN_8
    elif mode == "1":
        labels, unknown = np.asarray(picture).astype(np.uint8), None
    elif mode in ("I;16", "I;16B", "I;16L", "I"):
        labels = np.asarray(picture)
        unknown = UNKNOWN_16 if mode != "I" or labels.max(initial=0) <= \
            UNKNOWN_16 else None
    else:
        raise InputError(f"{path}: PNG mode {mode!r} is not a label image "
                         "(expected 8-bit or 16-bit greyscale, or palette)")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.ndim != 2:
        raise InputError(f"{path}: expected a single-channel label image, "
                         f"got shape {labels.shape}")
    if unknown is not None:
        labels = np.where(labels == unknown, -1, labels)
    return np.where(labels < 0, -1, labels)


def write_label_png(path, labels):
    """Save predicted labels: 8-bit when every value fits in 0..254, else
    16-bit (0..65534); the unknown value (255 / 65535) never appears."""
    from PIL import Image

    labels = np.asarray(labels)
    top = int(labels.max(initial=0))
    if labels.min(initial=0) < 0 or top > UNKNOWN_16 - 1:
        raise InputError(f"{path}: labels {labels.min()}..{top} do not fit "
                         "in a 16-bit PNG")
    if top < UNKNOWN_8:
        picture = Image.fromarray(labels.astype(np.uint8))
    else:
        picture = Image.fromarray(labels.astype(np.uint16))
    _save_picture(picture, path)


#: A PNG text chunk marking the pictures 'skrcnn predict' writes, so that a
#: later run into the same folder knows them from the user's images.
OUTPUT_MARK = ("Software", "skrcnn predict")


def _save_picture(picture, path):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(*OUTPUT_MARK)
    try:
        picture.save(path, format="PNG", pnginfo=info)
    except OSError as exc:
        raise InputError(f"{path}: cannot write ({exc.strerror or exc})") \
            from None


def write_rgb_png(path, image):
    from PIL import Image

    _save_picture(Image.fromarray(np.asarray(image, np.uint8)), path)


# ---------------------------------------------------------------- colours

# After the demo's six scene colours: a fixed list of distinct colours, then
# golden-ratio hues for as many more classes as there are.
_MORE_COLOURS = np.array([
    [0.95, 0.85, 0.1], [0.6, 0.2, 0.7], [1.0, 0.55, 0.0], [0.0, 0.7, 0.7],
    [0.95, 0.4, 0.7], [0.45, 0.45, 0.45], [0.65, 0.95, 0.95],
    [0.5, 0.25, 0.05], [0.75, 0.75, 0.35], [0.2, 0.2, 0.45],
    [1.0, 0.8, 0.65], [0.0, 0.45, 0.35], [0.7, 0.0, 0.2], [0.85, 0.85, 0.85]])


def palette(n_colours):
    """``(n_colours, 3)`` RGB in [0, 1]; row ``v`` is label value ``v``'s
    colour, the same in every picture and for every model."""
    from colorsys import hsv_to_rgb

    from .demo import PALETTE

    colours = list(np.vstack([PALETTE, _MORE_COLOURS]))
    k = 0
    while len(colours) < n_colours:
        hue = (0.13 + 0.618033988749895 * k) % 1.0
        value = 0.95 if k % 2 == 0 else 0.7
        colours.append(np.array(hsv_to_rgb(hue, 0.75, value)))
        k += 1
    return np.asarray(colours[:max(n_colours, 1)], dtype=np.float64)


def overlay(image, labels, alpha=0.5):
    """The image blended with its label colours (fixed colour per value)."""
    from .demo import colour_labels

    labels = np.asarray(labels)
    colours = colour_labels(labels, palette(int(labels.max(initial=0)) + 1))
    base = image_as_uint8(image).astype(np.float64)
    blended = (1 - alpha) * base + alpha * colours
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)


# ------------------------------------------------------------ model files

def save_model(path, model, class_names=None, training=None):
    """Write the model file atomically (a temporary file, then a rename)."""
    import joblib

    bundle = {"format": MODEL_FORMAT, "version": MODEL_VERSION,
              "model": model,
              "class_names": None if class_names is None
              else [str(name) for name in class_names],
              "training": dict(training or {})}
    folder = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(folder, f".{os.path.basename(path)}.partial")
    try:
        joblib.dump(bundle, temporary)
        os.replace(temporary, path)
    except OSError as exc:
        try:
            os.remove(temporary)
        except OSError:
            pass
        raise InputError(f"{path}: cannot write the model "
                         f"({exc.strerror or exc})") from None


def check_writable_file(path, example="model.joblib"):
    """Fail early (before long work) when ``path`` cannot be written."""
    if str(path) == "":
        raise InputError(f"an empty file name; give one such as {example}")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a folder; give a file name such as "
                         f"{example}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError(f"{path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise InputError(f"{path}: folder {folder} is not writable")


def segmenter_of(model):
    """The :class:`~skrcnn.RecurrentCNNSegmenter` in a model (or None)."""
    from .segmenter import RecurrentCNNSegmenter

    if isinstance(model, RecurrentCNNSegmenter):
        return model
    steps = getattr(model, "steps", None)
    if isinstance(steps, list) and steps and isinstance(
            steps[-1][1], RecurrentCNNSegmenter):
        return steps[-1][1]
    return None


def load_model(path):
    """``(model, segmenter, class_names, training)`` from a model file."""
    import joblib

    if not os.path.isfile(path):
        raise InputError(f"{path}: no such model file" if not os.path.exists(
            path) else f"{path}: not a file")
    try:
        loaded = joblib.load(path)
    except Exception as exc:  # pickle raises a zoo of types on foreign data
        raise InputError(f"{path}: not a skrcnn model file "
                         f"({type(exc).__name__}: {exc})") from None
    class_names, training = None, {}
    if isinstance(loaded, dict) and loaded.get("format") == MODEL_FORMAT:
        if loaded.get("version", 0) > MODEL_VERSION:
            raise InputError(f"{path}: written by a newer skrcnn (model file "
                             f"version {loaded['version']}); upgrade skrcnn")
        class_names = loaded.get("class_names")
        training = loaded.get("training") or {}
        loaded = loaded.get("model")
    segmenter = segmenter_of(loaded)
    if segmenter is None:
        raise InputError(f"{path}: not a skrcnn model file (it holds a "
                         f"{type(loaded).__name__}, not a "
                         "RecurrentCNNSegmenter)")
    if not hasattr(segmenter, "coefs_"):
        raise InputError(f"{path}: the model in it was never fitted")
    return loaded, segmenter, class_names, training


def class_name(class_names, value):
    if class_names is not None and 0 <= value < len(class_names):
        return class_names[value]
    return ""


# --------------------------------------------------------------- messages

_INDEXED = re.compile(r"\b(X|y|y_true|y_pred)\[(\d+)\]")
_IMAGE_N = re.compile(r"\bimage (\d+) is\b")


def name_files(message, image_names, label_names=None):
    """Replace ``X[3]`` / ``y[3]`` in an estimator's message by file names."""
    def named(names, index, fallback):
        if names is not None and 0 <= index < len(names):
            return str(names[index])
        return fallback

    def indexed(match):
        index = int(match.group(2))
        if match.group(1) == "X":
            return named(image_names, index, match.group(0))
        return named(label_names, index, match.group(0))

    message = _INDEXED.sub(indexed, message)
    return _IMAGE_N.sub(lambda m: named(image_names, int(m.group(1)),
                                        m.group(0)[:-3]) + " is", message)


# --------------------------------------------------------------- progress

class Progress:
    """A text progress bar on stderr: redrawn in place on a terminal, one
    line per step otherwise (logs, pipes, tests). Silent when disabled."""

    def __init__(self, label, total, enabled=True, stream=None, width=24):
        self.label, self.total, self.width = label, total, width
        self.enabled = enabled and total > 0
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._drawn = 0

    def update(self, done, name=""):
        if not self.enabled:
            return
        filled = int(round(self.width * done / self.total))
        bar = "#" * filled + " " * (self.width - filled)
        text = f"{self.label} {done}/{self.total} [{bar}] {name}".rstrip()
        if self.tty:
            self.stream.write("\r" + text.ljust(self._drawn))
            self._drawn = len(text)
            if done >= self.total:
                self.stream.write("\n")
                self._drawn = 0
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self):
        """End a partly drawn terminal line (on an error, say)."""
        if self.enabled and self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
