#!/usr/bin/env bash
# The GPU measurement, for a lent H200-class device (about 15 minutes of device time, start-up included):
# one script, under 8 minutes, writing JSON that docs/scale.md's GPU table is made from.
#
#   bash docs/gpu/run.sh [OUT]          (OUT default: docs/gpu/results; from the repository root)
#   CHECK=1 bash docs/gpu/run.sh OUT    (the same parts shrunk, on the CPU: checks the script without a GPU;
#                                        tests/test_scale.py runs it)
#
# 1. the paper stack (scale-check paper-256 / paper-512) on the GPU in bfloat16 at a real batch: training
#    step time and memory, bit-exact resume, export, 4-step generation, a GRPO step (256 only);
# 2. generation throughput at 256 and 512 px: PDA-hybrid at 4 steps against the score samplers at 4, 16
#    and 28 steps, with and without torch.compile, and the shipped small models (scale/throughput.py).
# Each part has its own time limit, so a slow one cannot eat the others; every JSON is written as it ends.
# The GPU image has torch, transformers and accelerate but not diffusers: carry its wheel in .whl/
# (`pip download --no-deps --only-binary=:all: -d .whl diffusers==0.42.1`).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-${OUT:-docs/gpu/results}}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" TOKENIZERS_PARALLELISM=false
if ! python3 -c "import diffusers" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
# CHECK=1: the same parts, shrunk, on the CPU (to check the script itself where no GPU is lent)
if [ "${CHECK:-0}" = 1 ]; then
  DEV=cpu DT=float32 P256=shrunk P512="shrunk preset=laion-face-prox-512" TP="--shrunk --no-compile --batch 2 --sizes 256"
  echo "check mode: shrunk, on the CPU" > "$OUT/gpu.txt"
else
  DEV=cuda DT=bfloat16 P256=paper-256 P512=paper-512 TP="--batch 16"
  python3 -c "import torch, sys; print(torch.__version__, torch.cuda.get_device_name(0)); sys.exit(not torch.cuda.is_available())" \
    > "$OUT/gpu.txt" 2>&1 || { echo "no CUDA GPU here: $(cat "$OUT/gpu.txt")"; exit 2; }
fi
WORK=${WORK:-/tmp/proxt2i-gpu}  # models, runs and throughput folders (scratch: only OUT's files are kept)
MODELS=$WORK/models
T0=$(date +%s)
part() {  # part NAME LIMIT_SECONDS COMMAND...: run it with a limit, log to OUT/NAME.log, report its time
  local name=$1 limit=$2; shift 2
  local t=$(date +%s)
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  echo "$name: rc $? in $(( $(date +%s) - t )) s (total $(( $(date +%s) - T0 )) s)" | tee -a "$OUT/parts.txt"
}
part scale_check_256 200 python3 -m proxt2i scale-check $P256 device=$DEV dtype=$DT batch=64 images=64 train_steps=2 \
  threads=16 models=$MODELS out=$WORK/sc256 --no-progress
cp $WORK/sc256/scale_check.json "$OUT/scale_check_256.json" 2>/dev/null
rm -rf $WORK/sc256  # ~40 GB of checkpoints and exports: the 64 GB disk holds one check at a time (MODELS stays)
part scale_check_512 110 python3 -m proxt2i scale-check $P512 device=$DEV dtype=$DT batch=32 images=32 train_steps=2 \
  grpo=false threads=16 models=$MODELS out=$WORK/sc512 --no-progress
cp $WORK/sc512/scale_check.json "$OUT/scale_check_512.json" 2>/dev/null
rm -rf $WORK/sc512
part throughput 150 python3 -m proxt2i.scale.throughput --models $MODELS --out "$OUT/throughput.json" --device $DEV \
  --dtype $DT $TP --work $WORK/throughput-models
ls -la "$OUT"
