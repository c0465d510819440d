"""GPU figures (issue 6): skrcnn on CuPy beside PyTorch on the same GPU.

Measures, in one run:

* training patches/s (one SGD step: forward, backward, update) for rcnn2
  with 2 instances (67x67 patches), 3 instances (155x155) and the plain
  network (133x133), at batch 16, 64 and 256;
* dense full-resolution prediction (one dilated pass) of a 240x320 and a
  1024x2048 image with rcnn2 and 3 instances;

each beside the same network in PyTorch on the same device, with the same
weights, the device synchronised before every clock read. Medians; ratios
> 1 mean skrcnn is faster. Prints the issue's bars: the 240x320 pass
<= 5 ms and within 1.5x of PyTorch's; training within 1.5x of PyTorch's
at batch 64.

``--device cpu`` runs the same on NumPy and PyTorch's CPU build (skrcnn
under the threads and allocator setting that fit and predict use): a dry
run of this script where there is no GPU, which the test suite does on
small sizes. ``bench_training.py`` is the CPU benchmark.
PyTorch is a benchmark reference only, never a dependency of skrcnn.

Usage::

    python benchmarks/gpu.py [--device gpu|cpu] [--quick] [--no-torch]
        [--json F]
"""

import argparse
import contextlib
import json
import statistics
import sys
import time

import numpy as np

from bench_training import (N_CLASSES, NETWORKS, torch_forward,
                            torch_training_step)
from skrcnn._allocator import retain_freed_memory
from skrcnn._parallel import parallel_cpu
from skrcnn.architecture import patch_size, resolve_layers
from skrcnn.backend import array_module, resolve_device, to_numpy
from skrcnn.inference import image_scores
from skrcnn.network import RecurrentNetwork
from skrcnn.training import SGD, accumulate_loss, zero_grads

BAR_DENSE_S = 0.005
BAR_TORCH_RATIO = 1 / 1.5
IMAGE_SHAPES = ((240, 320), (1024, 2048))


def make_sync(xp, torch, torch_device):
    """A function that waits for both libraries' queued device work."""
    def sync():
        if xp.__name__ != "numpy":
            xp.cuda.Device().synchronize()
        if torch is not None and torch_device != "cpu":
            torch.cuda.synchronize()
    return sync


def median_time(fn, sync, repeats, min_seconds):
    """Median seconds of ``fn`` over ``repeats`` runs (more while short),
    the device synchronised around each."""
    fn()  # warm-up: kernel compilation, memory pools
    sync()
    times, start = [], time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
        if len(times) >= 20 * repeats:
            break
    return statistics.median(times)


def training_rows(args, xp, torch, sync):
    rows = []
    for (name, n_instances), label in NETWORKS.items():
        layers = resolve_layers(name)
        side = patch_size(layers, n_instances)
        for batch in args.batches:
            rng = np.random.default_rng(batch)
            patches = rng.standard_normal((batch, 3, side, side),
                                          dtype=np.float32)
            targets = rng.integers(0, N_CLASSES, batch)
            network = RecurrentNetwork.initialise(
                layers, N_CLASSES, np.random.RandomState(0), xp)
            on_device = xp.asarray(patches)
            solver = SGD(1e-4)

            def ours():
                zero_grads(network.params)
                accumulate_loss(network, [(n_instances, on_device, targets)],
                                xp)
                solver.step(network.params)

            row = {"net": label, "batch": batch, "ours_per_s": batch /
                   median_time(ours, sync, args.repeats, args.min_seconds)}
            if torch is not None:
                row["torch_per_s"] = batch / median_time(
                    torch_training_step(torch, layers, network, patches,
                                        targets, n_instances,
                                        args.torch_device),
                    sync, args.repeats, args.min_seconds)
            rows.append(row)
            print_training_row(row)
    return rows


def print_training_row(row):
    line = (f"{row['net']:>7} batch {row['batch']:>3}: skrcnn "
            f"{row['ours_per_s']:9.1f} patches/s")
    if "torch_per_s" in row:
        ratio = row["ours_per_s"] / row["torch_per_s"]
        line += (f" | torch {row['torch_per_s']:9.1f}/s (ratio {ratio:.2f}"
                 + (f", bar >= {BAR_TORCH_RATIO:.2f}: "
                    f"{'ok' if ratio >= BAR_TORCH_RATIO else 'FAIL'}"
                    if row["batch"] == 64 else "") + ")")
    print(line, flush=True)


def prediction_rows(args, xp, torch, sync):
    layers = resolve_layers("rcnn2")
    network = RecurrentNetwork.initialise(layers, N_CLASSES,
                                          np.random.RandomState(1), xp)
    rows = []
    for height, width in args.image_shapes:
        image = np.random.default_rng(0).standard_normal(
            (3, height, width), dtype=np.float32)
        on_device = xp.asarray(image)
        seconds = median_time(
            lambda: image_scores(network, on_device, 3, method="dense",
                                 max_bytes=args.max_inference_bytes),
            sync, args.repeats, args.min_seconds)
        row = {"image": f"{height}x{width}", "ours_s": seconds}
        if torch is not None:
            side = patch_size(layers, 3)
            top = (side - 1) // 2
            padded = np.pad(image, ((0, 0), (top, side - 1 - top),
                                    (top, side - 1 - top)))
            params = [torch.tensor(to_numpy(p.data), device=args.torch_device)
                      for p in network.params]
            x = torch.from_numpy(padded[None].copy()).to(args.torch_device)

            def torch_dense():
                with torch.no_grad():
                    return torch_forward(torch, layers, params, x, 3, True)

            row["torch_s"] = median_time(torch_dense, sync, args.repeats,
                                         args.min_seconds)
            ours = to_numpy(image_scores(
                network, on_device, 3, method="dense",
                max_bytes=args.max_inference_bytes)[0])
            row["max_abs_diff"] = float(np.abs(
                torch_dense().cpu().numpy()[0] - ours).max())
        rows.append(row)
        print_prediction_row(row)
    return rows


def print_prediction_row(row):
    line = f"dense rcnn2 P=3 {row['image']:>9}: skrcnn {row['ours_s']:.4f} s"
    if row["image"] == "240x320":
        line += (f" (bar <= {BAR_DENSE_S} s: "
                 f"{'ok' if row['ours_s'] <= BAR_DENSE_S else 'FAIL'})")
    if "torch_s" in row:
        ratio = row["torch_s"] / row["ours_s"]
        line += (f" | torch {row['torch_s']:.4f} s (ratio {ratio:.2f}, bar "
                 f">= {BAR_TORCH_RATIO:.2f}: "
                 f"{'ok' if ratio >= BAR_TORCH_RATIO else 'FAIL'}); max "
                 f"|ours - torch| = {row['max_abs_diff']:.1e}")
    print(line, flush=True)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["gpu", "cpu"], default="gpu")
    parser.add_argument("--quick", action="store_true",
                        help="batch 16 and 64, the 240x320 image only, "
                             "fewer repeats")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    args.batches = (16, 64) if args.quick else (16, 64, 256)
    args.image_shapes = IMAGE_SHAPES[:1] if args.quick else IMAGE_SHAPES
    args.repeats = 3 if args.quick else 10
    args.min_seconds = 0.2 if args.quick else 1.0
    # The whole 1024x2048 pass in one band where the device has room.
    args.max_inference_bytes = 2 ** 33 if args.device == "gpu" else 2 ** 29
    return args


def main(argv=None):
    args = parse_args(argv)
    xp = array_module(resolve_device(args.device))
    torch = None
    args.torch_device = "cuda" if args.device == "gpu" else "cpu"
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            print("(PyTorch not installed: no same-device reference)")
    if torch is not None and args.device == "gpu" and \
            not torch.cuda.is_available():
        print("(PyTorch has no CUDA here: no same-device reference)")
        torch = None
    print(f"skrcnn on {xp.__name__} {xp.__version__}; torch "
          f"{torch.__version__ if torch else 'absent'} on "
          f"{args.torch_device}", flush=True)
    sync = make_sync(xp, torch, args.torch_device)
    with contextlib.ExitStack() as stack:
        if xp is np:
            stack.enter_context(retain_freed_memory())
            stack.enter_context(parallel_cpu())
        results = {"device": args.device,
                   "training": training_rows(args, xp, torch, sync),
                   "prediction": prediction_rows(args, xp, torch, sync)}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
