#!/usr/bin/env bash
# Everything a session lent a GPU should run, in one call of the workplace's
# device tool (its machine has CuPy, PyTorch with CUDA, scikit-learn,
# scikit-image, joblib and pytest, and no package registry; skrcnn runs
# from this checkout through PYTHONPATH, nothing to install):
#
#     bash benchmarks/device_check.sh            # all of it, about 6 minutes
#     bash benchmarks/device_check.sh --quick    # GPU tests and a quick benchmark
#
# Writes its logs and benchmarks/gpu.py's figures (gpu.json) to $OUT (the
# device tool's folder that comes back), or to ./device-check elsewhere.
# Each part has its own time limit, so one that hangs leaves the rest.
#
# The Stanford protocol on the GPU needs the archive carried along (11.7 MB;
# ../shared does not travel): here, `mkdir -p .gpu-data && cp
# ../shared/data/iccv09Data.tar.gz .gpu-data/` (an ignored folder), name
# .gpu-data in the call's carry, and run there e.g. `python3
# benchmarks/stanford.py --canonical --device gpu --data-home .gpu-data
# --train-minutes 5`.
set -o pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
out="${OUT:-device-check}"
mkdir -p "$out"
quick=""
[ "${1:-}" = "--quick" ] && quick="--quick"
status=0

{ nvidia-smi -L; python3 -c "import cupy, torch, skrcnn.backend as b; \
print('cupy', cupy.__version__, '| torch', torch.__version__, \
'| skrcnn sees a GPU:', b.gpu_available())"; } 2>&1 | tee "$out/device.log"

timeout 240 python3 -m pytest -q -m gpu tests -p no:cacheprovider 2>&1 \
    | tee "$out/gpu_tests.log" || status=1

timeout 300 python3 benchmarks/gpu.py $quick --json "$out/gpu.json" 2>&1 \
    | tee "$out/gpu_bench.log" || status=1
exit $status
