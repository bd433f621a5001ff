#!/usr/bin/env bash
# Every GPU measurement of the speed issue in one go, for a lent GPU machine with jax[cuda],
# torch and pytest but without pretty_midi/mido/importlib_resources: those come from PKGS (pure
# Python, copied from a local venv), the shared data from DATA. Logs and result JSON go to OUT.
# RUNS (optional) are trained runs, each timed by songs_bench (else it trains one); TRAIN=0
# leaves out train_bench (about 5 of the run's minutes) where the training code did not change.
#   PKGS=.devpkgs DATA=.devdata RUNS=".devrun/songs-bench ganmusic/pretrained/generator" \
#     OUT=/tmp/out bash benchmarks/gpu_run.sh
set -u
OUT=${OUT:-/tmp/gpu-out}; PKGS=${PKGS:-.devpkgs}; DATA=${DATA:-.devdata}
mkdir -p "$OUT"
export PYTHONPATH="$PWD:$PWD/$PKGS" PYTHONUNBUFFERED=1
export GANMUSIC_BENCH_DATA="$PWD/$DATA/jazz-vs-folk" GANMUSIC_TEST_DATA="$PWD/$DATA/jazz-vs-folk"
export GANMUSIC_CACHE=/tmp/ganmusic-cache
step() {  # step NAME SECONDS COMMAND...: one measurement, its own log, a hang costs only its limit
  local name=$1 limit=$2; shift 2
  local t0=$(date +%s)
  echo "=== $name (limit ${limit}s)"
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  echo "=== $name: rc $rc in $(( $(date +%s) - t0 )) s"; tail -n 25 "$OUT/$name.log"
}
nvidia-smi -L
python3 -c "import jax, torch; print('jax', jax.__version__, jax.devices(), 'torch', torch.__version__, torch.cuda.is_available())"
# One process (-n 0): workers would each take their share of the GPU's memory.
step equality 60 python3 -m pytest -n 0 -p no:cacheprovider tests/test_generator.py -k "cudnn or lstm_path or checkpoint_written"
# Many short turns: on an H100 both cuDNN sides' step times wandered by up to 30% within one run.
[ "${TRAIN:-1}" = 0 ] || step train_bench 300 python3 benchmarks/train_bench.py --cache-dir /tmp/ganmusic-cache --steps 40 --rounds 8
step sample_bench 90 python3 benchmarks/sample_bench.py
for run in ${RUNS:-""}; do
  step "songs_bench-$(basename "$run")" 150 python3 benchmarks/songs_bench.py --rounds 1 --run "$run"
  mv benchmarks/results/songs_bench.json "benchmarks/results/songs_bench-$(basename "$run").json"
done
[ -n "${RUNS:-}" ] || step songs_bench 150 python3 benchmarks/songs_bench.py --rounds 1
tar czf "$OUT/results.tgz" benchmarks/results
