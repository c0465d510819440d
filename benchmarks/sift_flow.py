"""The paper's SIFT Flow protocol (Table 4 rows), on a time budget.

The standard split (2488 train / 200 test images of 256x256, 33 classes,
``TestSet1.txt``), read by ``skrcnn.datasets.load_sift_flow`` from
``--data-home`` (the folder holding ``SiftFlowDataset.zip`` or its extracted
``SiftFlowDataset/``). Trains rcnn2 with 2 then 3 instances (staged, shared
weights) and the plain network (SIFT Flow sizes: 50 and 50 hidden units),
each on ``--train-minutes``, and scores them at full resolution: pixel
accuracy, average per-class accuracy, mean IoU, training and prediction
time, beside REFERENCE.md's bars. Writes JSON + Markdown.

Usage::

    python benchmarks/sift_flow.py --data-home DIR --train-minutes 60
"""

import argparse
import sys
import time

from skrcnn.datasets import DataNotFoundError, load_sift_flow

from _protocol import (add_training_arguments, parse_training_args, report,
                       rows_for_fold)

REFERENCES = [("bar (REFERENCE.md 5), full resolution",
               {"pixel": ">= 77%", "class": ">= 30%"})]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-home", required=True,
                        help="folder holding SiftFlowDataset.zip")
    add_training_arguments(parser)
    parser.add_argument("--output", default="sift_flow_results")
    args = parse_training_args(parser, argv)

    try:
        data = load_sift_flow(data_home=args.data_home,
                              download_if_missing=False)
    except DataNotFoundError as exc:
        parser.error(f"--data-home {args.data_home}: {exc}")
    pick = lambda seq, idx: [seq[i] for i in idx]  # noqa: E731
    train, test = data.train_indices, data.test_indices
    print(f"SIFT Flow: {len(train)} train / {len(test)} test images, "
          f"{len(data.class_names)} classes", flush=True)
    start = time.perf_counter()
    rows, _, curve = rows_for_fold(
        0, pick(data.images, train), pick(data.labels, train),
        pick(data.images, test), pick(data.labels, test),
        len(data.class_names), args, plain_hidden=(50, 50),
        log=lambda line: print(line, flush=True))
    report(args, rows, REFERENCES,
           f"SIFT Flow, {len(train)}/{len(test)} split", start,
           [(0, curve)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
