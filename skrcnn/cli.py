"""Command line: ``skrcnn demo`` (also ``python -m skrcnn demo``)."""

import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="skrcnn", description="Recurrent CNN scene parsing.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="train a small scene labeller on built-in synthetic "
        "scenes and report its held-out accuracy")
    demo.add_argument("--epochs", type=int, default=12)
    demo.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "demo":
        from ._engine_demo import run_demo
        run_demo(epochs=args.epochs, seed=args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
