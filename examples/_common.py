"""What the examples share: the data (synthetic scenes or Stanford
Background), fixed class colours and the Fig. 5-style panel.

Not an example itself. The scripts import it from their own folder, so copy
it along with a script you take elsewhere.

Colours: :func:`skimage.color.label2rgb` gives colours to labels in the
order of the values present in each picture, so on its own a class could be
blue in the truth and green in a prediction that lacks another class.
:func:`label_colours` appends one pixel of every class value (and of
"unknown") before colouring, so every value keeps the same rank, hence the
same colour, in every picture.
"""

import argparse
import os

import numpy as np
from skimage.color import label2rgb

from skrcnn.datasets import load_stanford_background, make_scenes
from skrcnn.model_selection import canonical_stanford_split

# Colours by class name, so that a class looks the same for both datasets
# (and as in `skrcnn demo`'s picture): (RGB in [0, 1], a name for the text
# legend when there is no matplotlib).
COLOURS = {
    "sky": ((0.55, 0.75, 1.0), "light blue"),
    "water": ((0.1, 0.3, 0.8), "dark blue"),
    "mountain": ((0.55, 0.45, 0.4), "brown"),
    "grass": ((0.5, 0.85, 0.3), "light green"),
    "tree": ((0.1, 0.45, 0.1), "dark green"),
    "building": ((0.85, 0.3, 0.2), "red"),
    "road": ((0.5, 0.5, 0.5), "grey"),
    "foreground object": ((1.0, 0.8, 0.1), "yellow"),
}
UNKNOWN = ((0.0, 0.0, 0.0), "black")
# For class names without an entry above: matplotlib's tab10 colours.
_SPARE = [(0.12, 0.47, 0.71), (1.0, 0.5, 0.05), (0.17, 0.63, 0.17),
          (0.84, 0.15, 0.16), (0.58, 0.4, 0.74), (0.55, 0.34, 0.29),
          (0.89, 0.47, 0.76), (0.5, 0.5, 0.5), (0.74, 0.74, 0.13),
          (0.09, 0.75, 0.81)]


def palette_for(class_names):
    """One RGB colour in [0, 1] per class value 0..n-1, chosen by name."""
    return np.array([COLOURS[name][0] if name in COLOURS
                     else _SPARE[index % len(_SPARE)]
                     for index, name in enumerate(class_names)])


def legend_text(class_names):
    """``"sky: light blue, ..."``: the legend of a picture without text."""
    parts = [f"{name}: {COLOURS[name][1]}" if name in COLOURS
             else f"{name}: #{_hex(palette_for(class_names)[k])}"
             for k, name in enumerate(class_names)]
    return ", ".join(parts + [f"unknown: {UNKNOWN[1]}"])


def _hex(rgb):
    return "".join(f"{int(round(c * 255)):02x}" for c in rgb)


def label_colours(labels, palette):
    """RGB float picture of a label map, class value k in ``palette[k]``.

    Parameters
    ----------
    labels : (H, W) int array
        Class values 0..len(palette)-1; negative means unknown (black).
    palette : (n_classes, 3) array of RGB in [0, 1]

    Returns
    -------
    (H, W, 3) float array in [0, 1]
    """
    labels = np.asarray(labels)
    if labels.size and labels.max() >= len(palette):
        raise ValueError(f"label {labels.max()} has no colour in a palette "
                         f"of {len(palette)}")
    # One pixel of every value, so label2rgb ranks value k as k + 1 (and
    # unknown, its bg_label, as 0) whatever this picture holds: value k then
    # takes palette[k] in every picture.
    key = np.arange(-1, len(palette))
    flat = np.concatenate([np.where(labels < 0, -1, labels).ravel(), key])
    rgb = label2rgb(flat, colors=[tuple(c) for c in palette], bg_label=-1,
                    bg_color=UNKNOWN[0])
    return rgb[:labels.size].reshape(labels.shape + (3,))


# ---------------------------------------------------------------- data

# Stanford images are resized by this unless --scale says otherwise: the
# examples train small models quickly at half size.
DEFAULT_SCALE = 0.5


def add_data_arguments(parser, scenes, stanford):
    """The data options every example takes.

    ``scenes`` and ``stanford`` are the script's defaults for
    ``n_images``, ``n_test`` and ``epochs`` (dicts) without and with
    ``--stanford``; ``--quick`` has its own.
    """
    group = parser.add_argument_group("data")
    group.add_argument("--quick", action="store_true",
                       help="tiny data and one epoch: a few seconds (tests)")
    group.add_argument("--stanford", action="store_true",
                       help="Stanford Background (canonical fold: train on "
                       "part of its 572 training images, show test images) "
                       "instead of synthetic scenes")
    group.add_argument("--data-home", default=None,
                       help="folder holding iccv09Data.tar.gz (default: "
                       "$SKRCNN_DATA or ~/skrcnn_data)")
    helps = {"n_images": "training images", "n_test": "held-out images "
             "scored", "epochs": "training epochs"}
    for name, text in helps.items():
        group.add_argument("--" + name.replace("_", "-"), type=at_least(1),
                           default=None,
                           help=f"{text} (default: {scenes[name]}; "
                           f"--stanford: {stanford[name]})")
    group.add_argument("--scale", type=_scale, default=None,
                       help="--stanford: resize the images by this factor "
                       f"(default: {DEFAULT_SCALE}, i.e. 160x120 and about 4 "
                       "times faster than 1, the full resolution)")
    group.add_argument("--seed", type=at_least(0), default=0)
    parser.set_defaults(_defaults={False: dict(scenes), True: dict(stanford)})
    return group


QUICK_DEFAULTS = dict(n_images=12, n_test=4, epochs=1, image_shape=(48, 48))


def at_least(minimum):
    """An argparse type: an integer >= ``minimum``."""
    def parse(text):
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f"must be at least {minimum}, got {value}")
        return value
    parse.__name__ = f"integer >= {minimum}"  # argparse's "invalid ..." text
    return parse


def n_jobs(text):
    """An argparse type: joblib's n_jobs, any integer but 0."""
    value = int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must not be 0 (1 for one process, "
                                         "-1 for all cores)")
    return value


def check_output(parser, path, option="--output"):
    """Exit with a usage error now, not after training, when a file cannot
    be written there: an empty name, a folder, or a missing folder."""
    if not path.strip():
        parser.error(f"{option}: an empty file name")
    if os.path.isdir(path):
        parser.error(f"{option} {path}: is a folder; give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        parser.error(f"{option} {path}: folder {folder} does not exist")


def _scale(text):
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {value}")
    return value


def resolve(args, name):
    """An option's value: given, else the quick / Stanford / default one."""
    given = getattr(args, name)
    if given is not None:
        return given
    if args.quick:
        return QUICK_DEFAULTS[name]
    return args._defaults[args.stanford][name]


def load_data(args):
    """Training and held-out images for the options in ``args``.

    Returns
    -------
    dict
        ``X_train``, ``y_train``, ``X_test``, ``y_test``, ``class_names``,
        ``palette``, ``name`` (a description for the report),
        ``test_name`` (one of the held-out images alone).
    """
    n_train, n_test = resolve(args, "n_images"), resolve(args, "n_test")
    if args.stanford:
        return _stanford(args, n_train, n_test)
    shape = QUICK_DEFAULTS["image_shape"] if args.quick else (64, 64)
    scenes = make_scenes(n_train + n_test, image_shape=shape,
                         random_state=args.seed)
    X, y = scenes.images, scenes.labels
    return dict(X_train=X[n_test:], y_train=y[n_test:], X_test=X[:n_test],
                y_test=y[:n_test], class_names=scenes.class_names,
                palette=palette_for(scenes.class_names),
                name=f"{n_train} synthetic scenes of {shape[0]}x{shape[1]} "
                f"(held out: {n_test})",
                test_name=f"{n_test} held-out synthetic scenes of "
                f"{shape[0]}x{shape[1]}")


def _stanford(args, n_train, n_test):
    scale = DEFAULT_SCALE if args.scale is None else args.scale
    data = load_stanford_background(data_home=args.data_home)
    train, test = canonical_stanford_split(data.filenames)
    rng = np.random.RandomState(args.seed)
    train = np.sort(rng.choice(train, min(n_train, len(train)),
                               replace=False))
    test = np.sort(rng.choice(test, min(n_test, len(test)), replace=False))

    def pick(seq, idx):
        return [_rescale(seq[i], scale) for i in idx]

    name = (f"{len(train)} Stanford Background training images of the "
            f"canonical fold (held out: {len(test)} of its test images)")
    test_name = (f"{len(test)} of the canonical fold's Stanford Background "
                 "test images")
    if scale != 1:
        name += f", resized by {scale}"
        test_name += f", resized by {scale}"
    return dict(X_train=pick(data.images, train),
                y_train=pick(data.labels, train),
                X_test=pick(data.images, test), y_test=pick(data.labels, test),
                class_names=data.class_names,
                palette=palette_for(data.class_names), name=name,
                test_name=test_name)


def _rescale(array, scale):
    """An image (smoothed) or a label map (nearest) resized by ``scale``."""
    if scale == 1:
        return array
    from skimage.transform import rescale
    if array.ndim == 3:
        out = rescale(array, scale, order=1, anti_aliasing=True,
                      preserve_range=True, channel_axis=-1)
        return np.clip(np.round(out), 0, 255).astype(np.uint8)
    out = rescale(array, scale, order=0, anti_aliasing=False,
                  preserve_range=True)
    return np.round(out).astype(array.dtype)


# ---------------------------------------------------------------- figures

def matplotlib_figure():
    """matplotlib's ``Figure`` class, or None when matplotlib is missing.

    A bare ``Figure`` renders to PNG without pyplot: no GUI backend, no
    global state.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    return Figure


def save_panel(path, images, truths, columns, titles, class_names, palette,
               notes=None, suptitle=None, sink=print, scale=None):
    """Rows of [image | truth | column 1 | ...] with a class legend, as PNG.

    Parameters
    ----------
    path : str
    images : list of (H, W, 3) uint8
    truths : list of (H, W) label maps
    columns : list over columns of lists over images of label maps
    titles : list of str
        One title per label column (the image and truth columns are named
        here).
    class_names : list of str
    palette : (n_classes, 3) array
    notes : list over columns of lists over images of str, optional
        A line under each tile of that column (e.g. its pixel accuracy).
    suptitle : str, optional
    scale : int, optional
        Pixel repeat of the tiles without matplotlib (default: 3 for small
        images, 1 otherwise).

    Returns
    -------
    str
        ``"matplotlib"`` or ``"numpy"``: how the picture was drawn. Without
        matplotlib the picture has no text; the legend goes to ``sink``.
    """
    images = [np.asarray(image) for image in images]
    coloured = [[label_colours(t, palette) for t in truths]]
    coloured += [[label_colours(m, palette) for m in column]
                 for column in columns]
    Figure = matplotlib_figure()
    if Figure is None:
        if scale is None:
            scale = 3 if max(i.shape[0] for i in images) <= 100 else 1
        rows = [[image] + [_to_uint8(column[k]) for column in coloured]
                for k, image in enumerate(images)]
        _save_png(path, tile_rows(rows, scale=scale))
        sink(f"colours (no matplotlib, so no legend in the picture): "
             f"{legend_text(class_names)}")
        sink("columns: " + " | ".join(["image", "truth"] + list(titles)))
        return "numpy"

    from matplotlib.patches import Patch
    handles = [Patch(facecolor=c, edgecolor="0.3", label=n)
               for c, n in zip(palette, class_names)]
    if any((np.asarray(t) < 0).any() for t in truths):
        handles.append(Patch(facecolor=UNKNOWN[0], edgecolor="0.3",
                             label="unknown"))
    n_rows, n_cols = len(images), len(coloured) + 1
    aspect = max(i.shape[0] / i.shape[1] for i in images)
    # Inches: tiles 2 wide with 6% gaps, side margins 2%; rows as tall as
    # the tallest picture, then the line of notes (or a small gap).
    width = 2.0 * n_cols
    wspace, left, right = 0.06, 0.02, 0.98
    tile_w = width * (right - left) / (n_cols + (n_cols - 1) * wspace)
    tile_h = tile_w * aspect
    gap = 0.35 if notes is not None else 0.1
    height = n_rows * tile_h + n_rows * gap
    # Legend entries in balanced rows of about 1.5 inches an entry.
    legend_rows = -(-len(handles) // max(1, int(width / 1.5)))
    legend_cols = -(-len(handles) // legend_rows)
    legend_h = 0.25 * legend_rows + 0.2
    title_h = 0.4 if suptitle else 0.0
    total = height + legend_h + title_h + 0.3
    figure = Figure(figsize=(width, total), dpi=100)
    axes = figure.subplots(n_rows, n_cols, squeeze=False)
    names = ["image", "truth"] + list(titles)
    for row in range(n_rows):
        tiles = [images[row]] + [column[row] for column in coloured]
        for col, picture in enumerate(tiles):
            ax = axes[row, col]
            ax.imshow(picture, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(names[col], fontsize=9)
            if notes is not None and col >= 2 and notes[col - 2] is not None:
                ax.set_xlabel(notes[col - 2][row], fontsize=8)
    figure.legend(handles=handles, loc="lower center", frameon=False,
                  ncol=legend_cols, fontsize=8, handlelength=1.2,
                  columnspacing=1.0)
    if suptitle:
        figure.suptitle(suptitle, fontsize=10)
    figure.subplots_adjust(left=left, right=right, wspace=wspace,
                           hspace=gap / tile_h,
                           bottom=(legend_h + gap) / total,
                           top=1 - (title_h + 0.3) / total)
    figure.savefig(path, format="png")  # at ``path``, whatever its suffix
    return "matplotlib"


def _to_uint8(rgb):
    return np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def tile_rows(rows, scale=1, gap=4):
    """One uint8 picture of rows of RGB tiles (sizes may differ), white gaps.

    The layout of :func:`skrcnn.demo.figure_panel`, for any palette.
    """
    scaled = [[np.kron(np.asarray(t, np.uint8), np.ones((scale, scale, 1),
                                                         np.uint8))
               for t in row] for row in rows]
    height = [max(t.shape[0] for t in row) for row in scaled]
    widths = [max(row[c].shape[1] for row in scaled if c < len(row))
              for c in range(max(len(row) for row in scaled))]
    out = np.full((sum(height) + gap * (len(rows) + 1),
                   sum(widths) + gap * (len(widths) + 1), 3), 255, np.uint8)
    top = gap
    for row, h in zip(scaled, height):
        left = gap
        for t, w in zip(row, widths):
            out[top:top + t.shape[0], left:left + t.shape[1]] = t
            left += w + gap
        top += h + gap
    return out


def _save_png(path, picture):
    from PIL import Image
    Image.fromarray(picture).save(path, format="PNG")
