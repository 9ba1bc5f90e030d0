#!/usr/bin/env bash
# The GPU measurements the README still lacks, in one run: each family's `base` training step
# against its PyTorch peer (step time, MFU against the matmul peak measured in the same run,
# the ratio; `bench/run.py`), most wanted first, each under its own time limit
# (TLGEN_GPU_LIMIT seconds, default 240) so that one that hangs does not take the others'
# time. Records go to OUT/gpu.json, each run's output to OUT/<job>.log.
#
#   bash bench/gpu.sh OUT [VARIANT] [STEPS]      # VARIANT: base (default) or tiny
#
# TLGEN_GPU_JOBS picks the jobs (default: stylegan_v long_video time_flies long_video_sr);
# the job `timescale` instead trains the timescale autoencoder's VARIANT for STEPS steps on
# the irregular city and scores its band fidelity (bench/timescale_baselines.py; e.g.
# `TLGEN_GPU_JOBS=timescale TLGEN_GPU_LIMIT=540 bash bench/gpu.sh OUT base 4000`).
# `bash bench/gpu.sh /tmp/rehearsal tiny 2` is the same on a CPU in about ten minutes.
# On a machine without package access, put the wheels tlgen needs beyond what is installed in
# a folder and set TLGEN_WHEELS to it (installed with --no-index into a private folder first):
#   pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 -d wheels \
#     grain==0.2.18 array-record==0.8.6 ml-collections==1.1.0 portpicker flax==0.12.8 \
#     orbax-checkpoint==0.12.8
# (6 MB; the rest of what tlgen's benchmarks import is in a usual JAX + PyTorch image).
set -uo pipefail
jobs=${TLGEN_GPU_JOBS:-stylegan_v long_video time_flies long_video_sr}
usage() { echo "bench/gpu.sh: $1; usage: bash bench/gpu.sh OUT [base|tiny] [STEPS]" >&2; exit 2; }
[ $# -ge 1 ] || usage "name a folder for the records (OUT)"
variant=${2:-base}
steps=${3:-10}
limit=${TLGEN_GPU_LIMIT:-240}                 # seconds per measurement
[[ $variant == base || $variant == tiny ]] || usage "VARIANT is $variant, not base or tiny"
[[ $steps =~ ^[1-9][0-9]*$ ]] || usage "STEPS is $steps, not a positive whole number"
for job in $jobs; do
  [[ " stylegan_v long_video time_flies long_video_sr timescale " == *" $job "* ]] ||
    usage "TLGEN_GPU_JOBS names $job; the jobs are stylegan_v long_video time_flies long_video_sr timescale"
done
mkdir -p "$1" && out=$(cd "$1" && pwd) || exit 1
cd "$(dirname "$0")/.."
if [ -n "${TLGEN_WHEELS:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --upgrade \
    --target /tmp/tlgen-wheels "$TLGEN_WHEELS"/*.whl || exit 1
  export PYTHONPATH=/tmp/tlgen-wheels
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 -c "import jax; print('devices:', jax.devices())" | tee "$out/devices.log"

# Time Flies needs VGG-19 weights; its speed does not depend on their values.
vgg="$out/vgg19-random.safetensors"
python3 -c "import sys; from tests.random_weights import write; from tlgen.models import vgg19
write(sys.argv[1], vgg19.abstract_params(), vgg19.torch_prefixes())" "$vgg"

failed=()
measure() {                                   # measure NAME bench/run.py ARGS...
  local name=$1; shift
  echo "== $name"
  timeout "$limit" python3 bench/run.py --steps "$steps" --out "$out/gpu.json" \
    --note "bench/gpu.sh $variant" "$@" >"$out/$name.log" 2>&1
  local rc=$?
  tail -n 5 "$out/$name.log"
  [ "$rc" -eq 0 ] || { echo "$name: exit $rc (see $out/$name.log)"; failed+=("$name"); }
}
for job in $jobs; do
  case $job in
    stylegan_v) measure stylegan_v --config "configs/stylegan_v_clouds.py:$variant" --config.data.dir= ;;
    long_video) measure long_video --config "configs/long_video_city.py:$variant" --config.data.dir= ;;
    time_flies) measure time_flies --config "configs/time_flies_city.py:$variant" \
                  --config.data.dir= "--config.model.vgg19=$vgg" ;;
    long_video_sr) measure long_video_sr --config "configs/long_video_sr_city.py:$variant" \
                     --config.data.dir= --no-peer ;;
    timescale)                                # band fidelity of the trained model, not speed
      echo "== timescale"
      timeout "$limit" python3 bench/timescale_baselines.py --config-variant "$variant" \
        --variants default --train-on city1 --seeds 0 --steps "$steps" --work /tmp/tlgen-timescale \
        --out "$out/timescale-baselines-$variant.json" >"$out/timescale.log" 2>&1 \
        || failed+=(timescale)
      grep -E "cutoff|trained on" "$out/timescale.log" | tail -n 14 ;;
  esac
done
if [ -f "$out/gpu.json" ]; then
  python3 bench/run.py --table "$out/gpu.json" | tee "$out/table.md"
fi
[ "${#failed[@]}" -eq 0 ] || { echo "failed: ${failed[*]}"; exit 1; }
