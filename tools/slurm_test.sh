#!/usr/bin/env bash
# Testing on a SLURM cluster, one process per GPU (OpenMMLab convention):
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS=...] bash tools/slurm_test.sh PARTITION JOB_NAME \
#       CONFIG CHECKPOINT [test.py args...]
# The test set is split over the processes and gathered in the official order. GRES= for CPU-only partitions,
# PORT for the rendezvous port, PYTHON for the interpreter. docs/training.md has examples.
set -euo pipefail
source "$(dirname "$0")/_slurm.sh"
USAGE="usage: [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS=...] bash tools/slurm_test.sh PARTITION \
JOB_NAME CONFIG CHECKPOINT [test.py args...]"
(( $# >= 4 )) || slurm_fail "needs PARTITION JOB_NAME CONFIG CHECKPOINT, got $# argument(s); $USAGE"
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
CHECKPOINT=$4
shift 4
slurm_run test.py "$PARTITION" "$JOB_NAME" "$CONFIG" "$CHECKPOINT" "$@"
