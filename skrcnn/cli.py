"""Command line: ``skrcnn demo`` (also ``python -m skrcnn demo``)."""

import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="skrcnn", description="Recurrent CNN scene parsing.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="train on built-in synthetic scenes, print held-out "
        "scores after each recurrent instance, write a Fig. 5-style PNG")
    demo.add_argument("--images", type=int, default=120,
                      help="synthetic scenes to generate (a quarter held out)")
    demo.add_argument("--epochs", type=int, default=6)
    demo.add_argument("--instances", type=int, default=3)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--output", default="skrcnn-demo.png",
                      help="where to write the picture")
    demo.add_argument("-q", "--quiet", action="store_true",
                      help="no per-epoch lines")
    args = parser.parse_args(argv)
    if args.command == "demo":
        for name in ("images", "epochs", "instances"):
            if getattr(args, name) < 1:
                parser.error(f"--{name} must be at least 1")
        from .demo import run_demo
        run_demo(n_images=max(args.images, 2), epochs=args.epochs,
                 n_instances=args.instances, seed=args.seed,
                 output=args.output, verbose=0 if args.quiet else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
