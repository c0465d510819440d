"""Benchmark loading the real Stanford Background archive.

What it measures
----------------
The archive is copied into a fresh temporary data folder, then loaded twice
with ``load_stanford_background``, each time in a fresh Python process so
that neither load benefits from the other's imports or memory:

* **cold load**: no cache yet: gunzip + untar, label text parsing, JPEG
  decoding, duplicate detection and writing the binary cache;
* **cached load**: reading that cache.

For each: seconds spent in the call, seconds for the whole process
(interpreter start and imports included) and the process's peak RSS
(``ru_maxrss``). Then, from the cached load: the number of images and label
matrices, the histogram of image sizes, the class pixel shares beside
REFERENCE.md's, the unknown share, and the byte-identical image pairs found.

Bars: cold load < 20 s, cached load < 3 s, the three known byte-identical
pairs found.

How to run
----------
    python benchmarks/bench_datasets.py [path/to/iccv09Data.tar.gz]

The archive comes from the argument, else ``SKRCNN_STANFORD_ARCHIVE``, else
``../shared/data/iccv09Data.tar.gz`` beside the repository.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

REFERENCE_SHARES = {"sky": 14.5, "tree": 14.0, "road": 22.5, "grass": 6.8,
                    "water": 4.0, "building": 22.6, "mountain": 1.3,
                    "foreground object": 13.7}
KNOWN_PAIRS = [["6000068", "6000318"], ["6000117", "6000324"],
               ["6000257", "6000348"]]
COLD_BAR_S, CACHED_BAR_S = 20.0, 3.0


def find_archive(path):
    candidates = [path] + [
        os.environ.get("SKRCNN_STANFORD_ARCHIVE"),
        os.path.join(REPO_ROOT, "..", "shared", "data", "iccv09Data.tar.gz")]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate):
            return os.path.abspath(candidate)
    sys.exit("bench_datasets: iccv09Data.tar.gz not found; pass its path or "
             "set SKRCNN_STANFORD_ARCHIVE")


def child(data_home):
    """Runs in a fresh process: one load, its figures as JSON on stdout."""
    sys.path.insert(0, REPO_ROOT)
    import numpy as np

    from skrcnn.datasets import load_stanford_background

    start = time.perf_counter()
    data = load_stanford_background(data_home=data_home,
                                    download_if_missing=False)
    seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    counts = np.zeros(len(data.class_names) + 1, dtype=np.int64)
    for labels in data.labels:
        counts += np.bincount(labels.ravel() + 1, minlength=counts.size)
    groups = {}
    for name, group in zip(data.filenames, data.groups.tolist()):
        groups.setdefault(group, []).append(name)
    sizes = Counter(f"{i.shape[0]}x{i.shape[1]}" for i in data.images)
    print(json.dumps({
        "seconds": seconds, "peak_rss_mib": peak_mib,
        "n_images": len(data.images), "n_labels": len(data.labels),
        "shapes_match": all(i.shape[:2] == l.shape
                            for i, l in zip(data.images, data.labels)),
        "sizes": sizes.most_common(),
        "shares": dict(zip(["unknown"] + data.class_names,
                           (100 * counts / counts.sum()).tolist())),
        "pairs": sorted(g for g in groups.values() if len(g) > 1),
    }))


def run_child(data_home):
    start = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--child", data_home],
                          stdout=subprocess.PIPE, check=True, text=True)
    result = json.loads(done.stdout)
    result["process_seconds"] = time.perf_counter() - start
    return result


def report(cold, cached):
    print("\nStanford Background loading (fresh process each)")
    for name, run, bar in (("cold (parse + cache)", cold, COLD_BAR_S),
                           ("cached", cached, CACHED_BAR_S)):
        verdict = "PASS" if run["seconds"] < bar else "FAIL"
        print(f"  {name:<21} {run['seconds']:6.2f} s in the call, "
              f"{run['process_seconds']:6.2f} s whole process, peak RSS "
              f"{run['peak_rss_mib']:6.0f} MiB   bar < {bar:.0f} s: "
              f"{verdict}")

    print(f"\n  images {cached['n_images']}, label matrices "
          f"{cached['n_labels']}, every label matrix matches its image: "
          f"{cached['shapes_match']}")
    sizes = ", ".join(f"{size}: {n}" for size, n in cached["sizes"][:8])
    print(f"  sizes ({len(cached['sizes'])} distinct): {sizes}, ...")

    print("\n  class pixel shares (%)      measured  REFERENCE")
    for name, share in cached["shares"].items():
        reference = REFERENCE_SHARES.get(name, 0.5)
        print(f"    {name:<24} {share:8.2f}  {reference:8.1f}")

    pairs_ok = cached["pairs"] == KNOWN_PAIRS
    print(f"\n  byte-identical pairs: {cached['pairs']}   known three "
          f"found: {'PASS' if pairs_ok else 'FAIL'}")
    return (cold["seconds"] < COLD_BAR_S and cached["seconds"] < CACHED_BAR_S
            and pairs_ok and cold["pairs"] == cached["pairs"])


def main(argv):
    if len(argv) == 3 and argv[1] == "--child":
        child(argv[2])
        return 0
    parser = argparse.ArgumentParser(
        description="Time a cold and a cached load of the Stanford "
        "Background archive, each in a fresh process, and check the bars.")
    parser.add_argument("archive", nargs="?", default=None,
                        help="iccv09Data.tar.gz (default: "
                        "$SKRCNN_STANFORD_ARCHIVE, else "
                        "../shared/data/iccv09Data.tar.gz beside the "
                        "repository)")
    archive = find_archive(parser.parse_args(argv[1:]).archive)
    data_home = tempfile.mkdtemp(prefix="skrcnn-bench-data-")
    try:
        shutil.copy2(archive, data_home)
        print(f"archive: {archive} ({os.path.getsize(archive) / 2**20:.1f} "
              f"MiB), data home: {data_home}")
        cold = run_child(data_home)
        cached = run_child(data_home)
        cache = os.path.join(data_home, "iccv09Data.skrcnn-cache.npz")
        print(f"cache file: {os.path.getsize(cache) / 2**20:.0f} MiB")
        ok = report(cold, cached)
    finally:
        shutil.rmtree(data_home, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
