"""Command line: ``skrcnn demo | train | predict | evaluate`` (also
``python -m skrcnn ...``).

* ``skrcnn demo``: the README's main job on built-in synthetic scenes.
* ``skrcnn train``: a dataset (``--dataset scenes|stanford|sift-flow``) or
  folders of images and label maps (``--images DIR --labels DIR``) -> a
  model file (``--output model.joblib``); one line per epoch.
* ``skrcnn predict``: a model and images (files or folders) ->
  ``<name>_labels.png`` and ``<name>_overlay.png`` in ``--output-dir``, with
  a progress bar on stderr for several images.
* ``skrcnn evaluate``: a model and labelled images -> pixel accuracy,
  average per-class accuracy, mean IoU and a per-class table (``--json``
  writes them to a file, or to stdout with ``--json -``).

``-q`` silences progress (the scores of ``evaluate`` and ``demo`` are still
printed). A problem with the input (a missing or unreadable file, a size
mismatch, a file that is not a model, a bad option value) is reported as one
line ``skrcnn: error: ...`` on stderr with exit status 2; usage errors too
(``skrcnn <command>: error: ...``). Ctrl-C during training stops it and
saves the model reached so far; elsewhere it exits with status 130. The
file conventions (label PNGs, model files) are in :mod:`skrcnn._cli_io`.
"""

import argparse
import contextlib
import inspect
import os
import sys
import warnings

from ._cli_commands import DATASETS, FOLDS, SEED_DEFAULT
from ._cli_io import InputError

_CHOICES = {"architecture": ("rcnn2", "rcnn1", "plain"),
            "schedule": ("staged", "random", "fixed"),
            "instance_loss": ("last", "all"),
            "class_weight": ("none", "balanced"),
            "sampling": ("dense", "patch"), "solver": ("adam", "sgd"),
            "device": ("auto", "cpu", "gpu"),
            "inference": ("dense", "shift")}

_LABELS_HELP = """\
Folders: every image in --images (*.jpg, *.jpeg, *.png, *.bmp, *.tif,
*.tiff) needs a label map in --labels with the same stem: STEM.png (one
integer label per pixel; 8-bit 0..254 with 255 = unknown, or 16-bit with
65535 = unknown; palette PNGs by index), STEM.npy (an (H, W) integer
array, negative = unknown) or STEM.regions.txt (Stanford Background text).
Datasets: scenes are generated (train fold: make_scenes(N, random_state=0),
test fold: random_state=1, N = --n-images, default 120); stanford and
sift-flow are read from --data-home (or SKRCNN_DATA, or ~/skrcnn_data) and
downloaded when missing; their folds are the canonical Stanford split and
the SIFT Flow train/test lists."""


class _Parser(argparse.ArgumentParser):
    """Usage errors on one line (exit status 2, as argparse's)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} "
                     "--help')\n")


# ------------------------------------------------------------ value types

def _int_from(minimum):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f"must be an integer >= {minimum}, got {text!r}")
        return value
    return parse


_positive_int = _int_from(1)
_non_negative_int = _int_from(0)


def _float_in(low, high, low_open, high_open, what):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        ok = (value > low if low_open else value >= low) and (
            high is None or (value < high if high_open else value <= high))
        if not ok:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value
    return parse


_positive_float = _float_in(0, None, True, False, "a number > 0")
_fraction = _float_in(0, 1, True, True, "a number between 0 and 1")
_alpha = _float_in(0, 1, False, False, "a number from 0 to 1")


def _resolution(text):
    """``0.5`` or ``1/2``: 1/k for a positive integer k."""
    try:
        if "/" in text:
            top, bottom = text.split("/")
            value = int(top) / int(bottom)
        else:
            value = float(text)
        k = round(1 / value)
        ok = 0 < value <= 1 and abs(1 / k - value) < 1e-9
    except (ValueError, ZeroDivisionError, OverflowError):
        ok = False
    if not ok:
        raise argparse.ArgumentTypeError(
            f"must be 1/k for a positive integer k (1, 0.5, 1/3, 0.25, ...), "
            f"got {text!r}")
    return 1 / k


def _default(value):
    return f"default: {value}"


def _int_list(text):
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(
            f"must be positive integers separated by commas, got {text!r}")
    return values


def _name_list(text):
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(
            f"must be names separated by commas, got {text!r}")
    return names


# ----------------------------------------------------------------- parser

def _common(command):
    command.add_argument("-q", "--quiet", action="store_true",
                         help="no progress output")
    command.add_argument("--debug", action="store_true",
                         help=argparse.SUPPRESS)


def _data_options(command, default_fold):
    group = command.add_argument_group(
        "data (--dataset, or --images and --labels)")
    group.add_argument("--dataset", choices=DATASETS)
    group.add_argument("--data-home", metavar="DIR",
                       help="where stanford and sift-flow are kept")
    group.add_argument("--fold", choices=FOLDS,
                       help=f"which images of the dataset (default: "
                       f"{default_fold})")
    group.add_argument("--images", metavar="DIR", help="folder of images")
    group.add_argument("--labels", metavar="DIR",
                       help="folder of label maps, matched by file stem")
    group.add_argument("--n-images", type=_positive_int, metavar="N",
                       help="use N images (a fixed random subset; for "
                       "scenes, N scenes per fold)")


def _inference_options(command):
    command.add_argument("--model", required=True, metavar="FILE",
                         help="model file written by 'skrcnn train' (or "
                         "joblib.dump of a fitted RecurrentCNNSegmenter); "
                         "it is unpickled: use only files you trust")
    command.add_argument("--instances", type=_positive_int, metavar="P",
                         help="recurrent instances to run (default: the "
                         "model's)")
    command.add_argument("--resolution", type=_resolution, metavar="1/K",
                         help="label every K-th pixel per axis and "
                         "interpolate (default: the model's, usually 1)")
    command.add_argument("--inference", choices=_CHOICES["inference"],
                         help="dense pass or shift-and-stitch (same "
                         "result)")
    command.add_argument("--test-time-flip",
                         action=argparse.BooleanOptionalAction, default=None,
                         help="also label each image's mirror and average "
                         "(twice the time, usually a little more accurate); "
                         "--no-test-time-flip: not, whatever the model's "
                         "setting")
    command.add_argument("--test-time-scales", type=_positive_float,
                         nargs="+", metavar="S",
                         help="label each image resized by these "
                         "factors, e.g. 0.75 1 1.25 (1: its own size), and "
                         "average (the sum of their squares times the "
                         "time)")
    command.add_argument("--superpixels",
                         action=argparse.BooleanOptionalAction, default=None,
                         help="average the class probabilities over "
                         "Felzenszwalb segments of each image at three "
                         "scales (about 0.3 s an image; usually a little "
                         "more accurate; not in the paper); "
                         "--no-superpixels: not, whatever the model's "
                         "setting")
    command.add_argument("--device", choices=_CHOICES["device"])


def build_parser():
    from . import __version__
    from .demo import run_demo
    from .segmenter import RecurrentCNNSegmenter

    # The demo's options default to run_demo's, so the two cannot drift.
    demo_defaults = {name: parameter.default for name, parameter in
                     inspect.signature(run_demo).parameters.items()}

    parser = _Parser(prog="skrcnn",
                     description="Recurrent CNN scene parsing.")
    parser.add_argument("--version", action="version",
                        version=f"skrcnn {__version__}")
    commands = parser.add_subparsers(dest="command", required=True,
                                     metavar="COMMAND")

    demo = commands.add_parser(
        "demo", help="train on built-in synthetic scenes, print "
        "cross-validated scores after each recurrent instance, write a "
        "Fig. 5-style PNG")
    for flag, parameter, text in (
            ("--images", "n_images", "synthetic scenes to generate"),
            ("--folds", "cv", "cross-validation folds, at least 2"),
            ("--epochs", "epochs", "training epochs per fold"),
            ("--instances", "n_instances",
             "recurrent instances trained and scored"),
            ("--seed", "seed", "seed of the scenes, folds and models")):
        demo.add_argument(flag, type=int, default=demo_defaults[parameter],
                          help=text + " (default: %(default)s)")
    demo.add_argument("--output", default=demo_defaults["output"],
                      help="where to write the picture (default: "
                      "%(default)s)")
    demo.add_argument("-q", "--quiet", action="store_true",
                      help="no per-epoch lines")
    demo.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)

    defaults = RecurrentCNNSegmenter().get_params()
    train = commands.add_parser(
        "train", help="train a model on a dataset or on folders of images "
        "and label maps; save it to a file",
        description="Train a RecurrentCNNSegmenter and save it (joblib).",
        epilog=_LABELS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _data_options(train, "train")
    train.add_argument("--output", "-o", required=True, metavar="FILE",
                       help="model file to write, e.g. model.joblib")
    train.add_argument("--class-names", type=_name_list, metavar="A,B,...",
                       help="names of label values 0, 1, ... (datasets "
                       "bring theirs)")
    train.add_argument("--resume", metavar="MODEL",
                       help="train on the model in MODEL (written by "
                       "'skrcnn train'): its weights, solver state and "
                       "options go on from where they were; the options "
                       "below that are given change them (all but "
                       "--architecture and --hidden-sizes), and --epochs "
                       "counts the epochs to add (default: as many as its "
                       "last training)")
    train.add_argument("--teacher", metavar="MODEL",
                       help="distil from another model file (e.g. a plain "
                       "network: --architecture plain): its class "
                       "probabilities for the training images become part "
                       "of every labelled pixel's target, by "
                       "--distillation-weight")
    model = train.add_argument_group(
        "model and training (not given: the default shown, or with "
        "--resume the model's own)")
    model.add_argument("--architecture", choices=_CHOICES["architecture"],
                       help=_default(defaults["architecture"]))
    model.add_argument("--hidden-sizes", type=_int_list, metavar="N,N",
                       help="widths of the hidden convolutions (rcnn2: "
                       "25,50)")
    model.add_argument("--instances", type=_positive_int, metavar="P",
                       help="recurrent instances ("
                       + _default(defaults["n_instances"])
                       + "; 1 with --architecture plain)")
    model.add_argument("--schedule", choices=_CHOICES["schedule"],
                       help="instances used in training ("
                       + _default(defaults["instance_schedule"]) + ")")
    model.add_argument("--instance-loss", choices=_CHOICES["instance_loss"],
                       help="train the last instance's scores or every "
                       "instance's (" + _default(defaults["instance_loss"])
                       + ")")
    model.add_argument("--class-weight", choices=_CHOICES["class_weight"],
                       help="balanced: weigh each class's pixels by the "
                       "inverse of its frequency in the training labels, "
                       "for average per-class accuracy (default: none)")
    model.add_argument("--sampling", choices=_CHOICES["sampling"],
                       help="dense (crops or whole images through the "
                       "strided net) or the paper's patches ("
                       + _default(defaults["sampling"]) + ")")
    model.add_argument("--crop-size", type=_non_negative_int, metavar="M",
                       help="dense sampling on crops of MxM outputs; 0 for "
                       "whole images (" + _default(defaults["crop_size"])
                       + ")")
    model.add_argument("--solver", choices=_CHOICES["solver"],
                       help=_default(defaults["solver"]))
    model.add_argument("--learning-rate", type=_positive_float, metavar="LR",
                       help=_default(defaults["learning_rate"]))
    model.add_argument("--weight-averaging", type=_fraction, metavar="DECAY",
                       help="predict with a moving average of the weights "
                       "over the updates, e.g. 0.999 (about the last 1000 "
                       "updates)")
    model.add_argument("--batch-size", type=_positive_int, metavar="N",
                       help="patches or crops per step ("
                       + _default(defaults["batch_size"]) + ")")
    model.add_argument("--patches-per-epoch", type=_positive_int,
                       metavar="N", help="patches or crops per epoch ("
                       + _default(defaults["patches_per_epoch"]) + ")")
    model.add_argument("--epochs", type=_positive_int, metavar="N",
                       help="at most N epochs ("
                       + _default(defaults["max_iter"]) + ")")
    model.add_argument("--horizontal-flip",
                       action=argparse.BooleanOptionalAction,
                       help="mirror training crops left-right with "
                       "probability 1/2 (data augmentation; default: off)")
    model.add_argument("--scale-range", type=_positive_float, nargs=2,
                       metavar=("LOW", "HIGH"),
                       help="resize each training image by a factor drawn "
                       "log-uniformly in [LOW, HIGH] before its crop is "
                       "taken (data augmentation, e.g. 0.8 1.25)")
    model.add_argument("--distillation-weight", type=_alpha, metavar="W",
                       help="share of the --teacher's probabilities in the "
                       "targets (" + _default(defaults["distillation_weight"])
                       + ")")
    model.add_argument("--early-stopping",
                       action=argparse.BooleanOptionalAction,
                       help="hold out --validation-fraction of the images "
                       "and stop when their accuracy stops improving "
                       "(default: off)")
    model.add_argument("--validation-fraction", type=_fraction, metavar="F",
                       help=_default(defaults["validation_fraction"]))
    model.add_argument("--patience", type=_positive_int, metavar="N",
                       help="epochs without improvement before stopping ("
                       + _default(defaults["n_iter_no_change"]) + ")")
    model.add_argument("--device", choices=_CHOICES["device"],
                       help=_default(defaults["device"]))
    model.add_argument("--seed", type=int,
                       help="seeds weights and sampling (default: "
                       f"{SEED_DEFAULT})")
    _common(train)

    predict = commands.add_parser(
        "predict", help="label images with a model: label PNGs and "
        "coloured overlays",
        description="Write OUTPUT_DIR/NAME_labels.png (the label value of "
        "every pixel: 8-bit, or 16-bit when a value exceeds 254) and "
        "OUTPUT_DIR/NAME_overlay.png (the image blended with one fixed "
        "colour per label value) for every image.")
    predict.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR",
                         help="image files, or folders of them")
    predict.add_argument("--output-dir", "-o", required=True, metavar="DIR")
    _inference_options(predict)
    predict.add_argument("--alpha", type=_alpha, default=0.5,
                         help="weight of the class colours in the overlay "
                         "(default: %(default)s)")
    predict.add_argument("--no-overlay", action="store_true",
                         help="write the label PNGs only")
    _common(predict)

    evaluate = commands.add_parser(
        "evaluate", help="score a model on labelled images",
        description="Pixel accuracy, average per-class accuracy, mean IoU "
        "and per-class scores, pooled over all pixels (unknown pixels "
        "ignored).", epilog=_LABELS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _inference_options(evaluate)
    _data_options(evaluate, "test")
    evaluate.add_argument("--json", metavar="FILE",
                          help="also write the scores as JSON ('-': "
                          "to stdout, instead of the table)")
    _common(evaluate)
    return parser


# ------------------------------------------------------------------- main

@contextlib.contextmanager
def _one_line_warnings():
    """Warnings as ``skrcnn: warning: ...`` lines, not file:line dumps."""
    def show(message, category, *args, **kwargs):
        text = " ".join(str(message).split())
        print(f"skrcnn: warning: {text}", file=sys.stderr, flush=True)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def _one_line(exc):
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return f"{exc.filename}: {exc.strerror}"
    return " ".join(str(exc).split()) or type(exc).__name__


def _run(args):
    say = (lambda *a, **k: None) if args.quiet else print
    if args.command == "demo":
        from ._cli_io import check_writable_file
        from .demo import run_demo
        check_writable_file(args.output, example="skrcnn-demo.png")
        run_demo(n_images=args.images, epochs=args.epochs, cv=args.folds,
                 n_instances=args.instances, seed=args.seed,
                 output=args.output, verbose=0 if args.quiet else 1)
        return 0
    from . import _cli_commands
    return getattr(_cli_commands, args.command)(args, say)


def _subparser(parser, name):
    """The parser of command ``name``."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[name]
    raise KeyError(name)


def main(argv=None):
    """Run the command line; return the exit status (0, 1, 2 or 130).

    Usage errors raise ``SystemExit(2)`` from argparse after printing one
    line; every other failure is reported on one line and returned.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        demo = _subparser(parser, "demo")  # 'skrcnn demo: error: ...'
        for name in ("images", "epochs", "instances"):
            if getattr(args, name) < 1:
                demo.error(f"--{name} must be at least 1")
        if args.folds < 2:
            demo.error("--folds must be at least 2")
        if args.images < args.folds:
            demo.error(f"--images ({args.images}) must be at least "
                       f"--folds ({args.folds})")
    try:
        with _one_line_warnings():
            return _run(args)
    except KeyboardInterrupt:
        print("skrcnn: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away ('skrcnn evaluate | head'): stop quietly, as
        # other tools do, and keep Python from failing again on the final
        # flush of stdout.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass  # a stdout without a file descriptor (captured in tests)
        return 141  # 128 + SIGPIPE, as a shell reports a piped tool
    except (InputError, ValueError, TypeError, OSError) as exc:
        if args.debug:
            raise
        print(f"skrcnn: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: still one line, unless --debug
        if args.debug:
            raise
        print(f"skrcnn: error: internal error ({type(exc).__name__}: "
              f"{_one_line(exc)}); run again with --debug for the traceback",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
