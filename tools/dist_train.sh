#!/usr/bin/env bash
# Distributed training with torchrun: [NNODES=1] [NODE_RANK=0] [MASTER_ADDR=127.0.0.1] [PORT=29500]
#   bash tools/dist_train.sh CONFIG NUM_PROCS [train.py args...]
# NUM_PROCS is per node (one per GPU). Several nodes: run the same command on each, with NNODES, its own NODE_RANK
# (0 on the node at MASTER_ADDR) and the same MASTER_ADDR/PORT (docs/training.md). Without a GPU, gloo replaces
# NCCL (lrfr/compat.py, applied by the tool), so this also runs on a CPU machine. PYTHON picks the interpreter.
set -euo pipefail
fail() { echo "error: $(basename "$0"): $*" >&2; exit 2; }
(( $# >= 2 )) || fail "needs CONFIG NUM_PROCS, got $# argument(s); usage: [NNODES=1] [NODE_RANK=0] \
[MASTER_ADDR=127.0.0.1] [PORT=29500] bash tools/dist_train.sh CONFIG NUM_PROCS [train.py args...]"
CONFIG=$1
NPROC=$2
shift 2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
[[ "$NPROC" =~ ^[1-9][0-9]*$ ]] || fail "NUM_PROCS must be a positive integer, got '$NPROC'"
[[ "$NNODES" =~ ^[1-9][0-9]*$ ]] || fail "NNODES must be a positive integer, got '$NNODES'"
[[ "$NODE_RANK" =~ ^[0-9]+$ ]] && (( NODE_RANK < NNODES )) || fail "NODE_RANK must be in 0..NNODES-1 \
(NNODES=$NNODES), got '$NODE_RANK'"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHONPATH="$ROOT:${PYTHONPATH:-}" exec "${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" --master_port="$PORT" \
    --nproc_per_node="$NPROC" "$ROOT/tools/train.py" "$CONFIG" --launcher pytorch "$@"
