# Runs a short GRPO and a short R0 fine-tune from the checkout at ROOT into OUT (3 steps each, evaluation and
# checkpoints every 2), so that two checkouts can be compared bit for bit:
#   bash docs/experiments/compare_finetune_runs.sh OLD_CHECKOUT /tmp/before
#   bash docs/experiments/compare_finetune_runs.sh . /tmp/after
# then compare OUT/{grpo,r0}/final/uvit.safetensors and log.jsonl (less "seconds"). About a minute on 2 cores.
set -e
ROOT=$1; OUT=$2
cd $ROOT
PY=${PYTHON:-python}
export PYTHONPATH=$ROOT/src
$PY -m proxt2i finetune grpo --model synthfaces-prox --reward alignment-prob --steps 3 --prompts-per-step 2 --group 2 --kl 0.03 --inner-epochs 2 --eval-every 2 --eval-num 8 --checkpoint-every 2 --out $OUT/grpo --no-progress > $OUT/grpo.txt 2>&1
$PY -m proxt2i finetune r0 --model synthfaces-prox --reward clip --steps 3 --prompts-per-step 2 --group 2 --eta-min 0.5 --eval-every 2 --eval-num 8 --checkpoint-every 2 --out $OUT/r0 --no-progress > $OUT/r0.txt 2>&1
