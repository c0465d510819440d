"""Training throughput and whole-image prediction time of the paper's networks.

Measures, in one run:

* training patches/s (one SGD step with softmax cross-entropy: forward,
  backward, update) for rcnn2 with 2 instances (67x67 patches), rcnn2 with 3
  instances (155x155) and plain (133x133), at batch 1, 16 and 64;
* dense full-resolution prediction of one 240x320 image with rcnn2 and 3
  instances (one dilated pass), and shift-and-stitch with its 64 passes;

each beside the same network in PyTorch (CPU, same threads, same weights)
in the same run when ``import torch`` works, and beside REFERENCE.md's
PyTorch figures. Medians over repeats; ratios > 1 mean skrcnn is faster.
PyTorch is a benchmark reference only, never a dependency of skrcnn.

Usage::

    python benchmarks/bench_training.py [--quick] [--no-torch] [--json F]
        [--nets plain rcnn2-2 rcnn2-3] [--no-prediction] [--blas-threads-only]
        [--default-allocator] [--unfused] [--rounds N]
"""

import argparse
import contextlib
import json
import statistics
import sys
import time

import numpy as np

from skrcnn._allocator import retain_freed_memory
from skrcnn._parallel import parallel_cpu
from skrcnn.architecture import patch_size, resolve_layers
from skrcnn.backend import to_numpy
from skrcnn.inference import image_scores
from skrcnn.network import RecurrentNetwork, rgb_offsets
from skrcnn.training import SGD, accumulate_loss, zero_grads

N_CLASSES = 8
# REFERENCE.md section 4: PyTorch 2.13 CPU, 2 threads, patches/s.
REFERENCE_TORCH = {("rcnn2", 2): {1: 139, 16: 191, 64: 200},
                   ("rcnn2", 3): {1: 22, 16: 25, 64: 25},
                   ("plain", 1): {1: 261, 16: 462, 64: 501}}
REFERENCE_DENSE_S = 0.69
BAR_DENSE_S = 0.55
BAR_SHIFT_S = 8.0
NETWORKS = {("rcnn2", 2): "rcnn2-2", ("rcnn2", 3): "rcnn2-3",
            ("plain", 1): "plain"}


def median_time(fn, repeats, min_seconds):
    """Median seconds of ``fn`` over ``repeats`` runs (more while short)."""
    fn()  # warm-up: allocations, caches, thread pools
    times, start = [], time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= 10 * repeats:
            break
    return statistics.median(times)


# ----------------------------------------------------------------------
# skrcnn
# ----------------------------------------------------------------------
def make_ours(layers, seed=0):
    return RecurrentNetwork.initialise(layers, N_CLASSES,
                                       np.random.RandomState(seed))


# ----------------------------------------------------------------------
# PyTorch reference: the same recurrent composition and alignment
# ----------------------------------------------------------------------
def torch_forward(torch, layers, params, rgb, n_instances, dense):
    F = torch.nn.functional
    stride = 1
    for layer in layers:
        if layer[0] == "pool":
            stride *= layer[1]

    def instance(h, dilation, first):
        weights = iter(params)
        for index, layer in enumerate(layers):
            if layer[0] == "conv":
                w, b = next(weights), next(weights)
                if first and index == 0:
                    w = w[:, N_CLASSES:]
                h = F.conv2d(h, w, b, dilation=dilation)
            elif layer[0] == "pool":
                if dense:
                    h = F.max_pool2d(h, layer[1], stride=1, dilation=dilation)
                    dilation *= layer[1]
                else:
                    h = F.max_pool2d(h, layer[1])
            else:
                h = torch.tanh(h)
        return h, dilation

    scores, dilation = instance(rgb, 1, True)
    pooled, spacing = rgb, 1
    box = torch.full((3, 1, stride, stride), 1.0 / stride ** 2,
                     dtype=rgb.dtype, device=rgb.device)
    for offset in rgb_offsets(layers, n_instances):
        if dense:  # dilated average pooling as a depthwise convolution
            pooled = F.conv2d(pooled, box, dilation=spacing, groups=3)
        else:
            pooled = F.avg_pool2d(pooled, stride)
        spacing *= stride
        shift = offset * spacing if dense else offset
        height, width = scores.shape[2:]
        context = pooled[:, :, shift:shift + height, shift:shift + width]
        scores, dilation = instance(torch.cat([scores, context], 1), dilation,
                                    False)
    return scores


def torch_training_step(torch, layers, network, patches, targets,
                        n_instances, device="cpu"):
    """One PyTorch SGD step on ``device``, with ``network``'s weights (on
    NumPy or CuPy)."""
    params = [torch.tensor(to_numpy(p.data), device=device,
                           requires_grad=True) for p in network.params]
    x = torch.from_numpy(patches).to(device)
    t = torch.from_numpy(targets).to(device)
    optimiser = torch.optim.SGD(params, lr=1e-4)

    def step():
        optimiser.zero_grad()
        scores = torch_forward(torch, layers, params, x, n_instances, False)
        loss = torch.nn.functional.cross_entropy(scores[:, :, 0, 0], t)
        loss.backward()
        optimiser.step()
    return step


# ----------------------------------------------------------------------
def training_table(args, torch):
    rows = []
    configs = [config for config, name in NETWORKS.items()
               if name in args.nets]
    for name, n_instances in configs:
        layers = resolve_layers(name)
        side = patch_size(layers, n_instances)
        for batch in args.batches:
            rng = np.random.default_rng(batch)
            patches = rng.standard_normal((batch, 3, side, side),
                                          dtype=np.float32)
            targets = rng.integers(0, N_CLASSES, batch)
            network = make_ours(layers)
            solver = SGD(1e-4)

            def ours():
                zero_grads(network.params)
                accumulate_loss(network, [(n_instances, patches, targets)],
                                np)
                solver.step(network.params)

            step = None if torch is None else torch_training_step(
                torch, layers, network, patches, targets, n_instances)
            # With --rounds, the two take turns, so that a drift in the
            # machine's speed reaches both alike.
            ours_rates, torch_rates = [], []
            for _ in range(args.rounds):
                with ours_threads(args):
                    ours_rates.append(batch / median_time(
                        ours, args.repeats, args.min_seconds))
                if step is not None:
                    torch_rates.append(batch / median_time(
                        step, args.repeats, args.min_seconds))
            row = {"net": name, "instances": n_instances, "patch": side,
                   "batch": batch,
                   "ours_per_s": statistics.median(ours_rates),
                   "reference_torch_per_s":
                       REFERENCE_TORCH[(name, n_instances)].get(batch)}
            if step is not None:
                row["torch_per_s"] = statistics.median(torch_rates)
                row["round_ratios"] = [o / t for o, t in
                                       zip(ours_rates, torch_rates)]
            rows.append(row)
            print_row(row)
    return rows


def ours_threads(args):
    """skrcnn's threading as fit and predict run it (``skrcnn._parallel``),
    or BLAS's own threads alone with ``--blas-threads-only``."""
    return (contextlib.nullcontext() if args.blas_threads_only
            else parallel_cpu())


def print_row(row):
    line = (f"{row['net']:>5} P={row['instances']} patch {row['patch']:>3} "
            f"batch {row['batch']:>2}: skrcnn {row['ours_per_s']:7.1f}/s")
    if "torch_per_s" in row:
        line += (f" | torch same run {row['torch_per_s']:7.1f}/s "
                 f"(ratio {row['ours_per_s'] / row['torch_per_s']:.2f})")
        ratios = sorted(row["round_ratios"])
        if len(ratios) > 1:
            line += (f" [{len(ratios)} rounds: ratio {ratios[0]:.2f}"
                     f"-{ratios[-1]:.2f}, median "
                     f"{statistics.median(ratios):.2f}]")
    ref = row["reference_torch_per_s"]
    if ref:
        line += f" | REFERENCE torch {ref}/s (ratio {row['ours_per_s'] / ref:.2f})"
    print(line, flush=True)


def prediction_table(args, torch):
    layers = resolve_layers("rcnn2")
    network = make_ours(layers, seed=1)
    image = np.random.default_rng(0).standard_normal((3, 240, 320),
                                                     dtype=np.float32)
    results = {}
    with ours_threads(args):
        dense = median_time(lambda: image_scores(network, image, 3,
                                                 method="dense"),
                            args.repeats, args.min_seconds)
    results["dense_s"] = dense
    print(f"dense full-resolution 240x320, rcnn2 P=3: {dense:.3f} s "
          f"(bar <= {BAR_DENSE_S} s; REFERENCE torch {REFERENCE_DENSE_S} s)",
          flush=True)
    if torch is not None:
        side = patch_size(layers, 3)
        padded = np.pad(image, ((0, 0), (side // 2, side // 2),
                                (side // 2, side // 2)))
        params = [torch.from_numpy(p.data) for p in network.params]
        x = torch.from_numpy(padded[None].copy())

        def torch_dense():
            with torch.no_grad():
                return torch_forward(torch, layers, params, x, 3, True)

        torch_s = median_time(torch_dense, args.repeats, args.min_seconds)
        ours, _, _ = image_scores(network, image, 3, method="dense")
        diff = float(np.abs(torch_dense().numpy()[0] - ours).max())
        results.update(torch_dense_s=torch_s, max_abs_diff=diff)
        print(f"  torch dilated pass same run: {torch_s:.3f} s (ratio "
              f"{torch_s / dense:.2f}); max |ours - torch| = {diff:.2e}",
              flush=True)
    if not args.quick:
        with ours_threads(args):
            t0 = time.perf_counter()
            image_scores(network, image, 3, method="shift")
            shift = time.perf_counter() - t0
        results["shift_s"] = shift
        print(f"shift-and-stitch, 64 passes: {shift:.2f} s (bar <= "
              f"{BAR_SHIFT_S} s; REFERENCE torch 8.26 s)", flush=True)
    return results


def unfuse_convolution_pooling():
    """Make networks run conv2d then max_pool2d where they would fuse."""
    import skrcnn.network
    from skrcnn.functions import conv2d, max_pool2d

    skrcnn.network.conv_max_pool2d = \
        lambda x, weight, bias, size: max_pool2d(conv2d(x, weight, bias), size)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer repeats, batches 1 and 16, no shift")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--nets", nargs="+", default=list(NETWORKS.values()),
                        choices=list(NETWORKS.values()),
                        help="networks of the training table (default: all)")
    parser.add_argument("--no-prediction", action="store_true",
                        help="skip the whole-image prediction timings")
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument(
        "--blas-threads-only", action="store_true",
        help="time skrcnn without its own threads (skrcnn._parallel), as "
             "before they existed: BLAS threads each GEMM, the rest runs on "
             "one core")
    parser.add_argument(
        "--default-allocator", action="store_true",
        help="leave glibc's allocator at its defaults; by default both "
             "skrcnn and PyTorch run under the setting fit and predict use "
             "(skrcnn._allocator: freed blocks kept for reuse)")
    parser.add_argument(
        "--unfused", action="store_true",
        help="run a convolution and the large max pool after it (the plain "
             "network's first layer) as two operations, as before "
             "skrcnn.functions.conv_pool")
    parser.add_argument(
        "--rounds", type=int, default=1,
        help="time skrcnn and PyTorch this many times each, in turns, and "
             "report the medians and the spread of the per-round ratios")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.unfused:
        unfuse_convolution_pooling()
    args.batches = (1, 16) if args.quick else (1, 16, 64)
    args.repeats = 3 if args.quick else 5
    args.min_seconds = 0.5 if args.quick else 2.0
    torch = None
    if not args.no_torch:
        try:
            import torch
            torch.set_num_threads(len(__import__("os").sched_getaffinity(0)))
        except ImportError:
            print("(PyTorch not installed: no same-run reference)")
    print(f"numpy {np.__version__}; torch "
          f"{torch.__version__ if torch else 'absent'}", flush=True)
    allocator = (contextlib.nullcontext() if args.default_allocator
                 else retain_freed_memory())
    print("allocator: " + ("glibc defaults" if args.default_allocator else
                           "freed blocks kept (as in fit/predict), for both"),
          flush=True)
    with allocator:
        results = {"training": training_table(args, torch)}
        if not args.no_prediction:
            results["prediction"] = prediction_table(args, torch)
    results["allocator"] = "default" if args.default_allocator else "retain"
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
