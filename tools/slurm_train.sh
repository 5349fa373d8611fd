#!/usr/bin/env bash
# Training on a SLURM cluster, one process per GPU (OpenMMLab convention):
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS=...] bash tools/slurm_train.sh PARTITION JOB_NAME \
#       CONFIG [WORK_DIR] [train.py args...]
# GPUS is the total (GPUS=16 GPUS_PER_NODE=8: two nodes); batch sizes in configs are per process (see
# --auto-scale-lr). GRES= for CPU-only partitions (gloo then replaces NCCL), PORT for the rendezvous port,
# PYTHON for the interpreter. docs/training.md has examples.
set -euo pipefail
source "$(dirname "$0")/_slurm.sh"
USAGE="usage: [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS=...] bash tools/slurm_train.sh PARTITION \
JOB_NAME CONFIG [WORK_DIR] [train.py args...]"
(( $# >= 3 )) || slurm_fail "needs PARTITION JOB_NAME CONFIG, got $# argument(s); $USAGE"
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
shift 3
WORK_DIR=()
if (( $# >= 1 )) && [[ "$1" != -* ]]; then
    WORK_DIR=(--work-dir "$1")
    shift
fi
slurm_run train.py "$PARTITION" "$JOB_NAME" "$CONFIG" "${WORK_DIR[@]}" "$@"
