#!/usr/bin/env bash
# Shared by slurm_train.sh and slurm_test.sh (sourced, not run): check the launch variables and start one
# process per GPU with srun, in the OpenMMLab convention. Each process runs TOOL with --launcher slurm; mmengine's
# init_dist('slurm') then reads SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID and SLURM_NODELIST (the first host,
# from `scontrol show hostnames`, is the rendezvous address unless MASTER_ADDR is set; port MASTER_PORT or
# PORT, default 29500).

slurm_fail() {  # one line on stderr, exit status 2 (as the Python tools)
    echo "error: $(basename "$0"): $*" >&2
    exit 2
}

slurm_check_int() {  # NAME VALUE MIN
    [[ "$2" =~ ^[0-9]+$ ]] && (( $2 >= $3 )) || slurm_fail "$1 must be an integer >= $3, got '$2'"
}

# slurm_run TOOL PARTITION JOB_NAME TOOL_ARGS...: srun TOOL on GPUS tasks, GPUS_PER_NODE per node.
slurm_run() {
    local tool=$1 partition=$2 job_name=$3
    shift 3
    command -v srun > /dev/null || slurm_fail "srun not found on PATH: run this on a node of a SLURM cluster \
(on one machine without SLURM use tools/dist_train.sh / dist_test.sh)"
    local gpus=${GPUS:-8}
    slurm_check_int GPUS "$gpus" 1
    local gpus_per_node=${GPUS_PER_NODE:-$(( gpus < 8 ? gpus : 8 ))}
    slurm_check_int GPUS_PER_NODE "$gpus_per_node" 1
    local cpus_per_task=${CPUS_PER_TASK:-5}
    slurm_check_int CPUS_PER_TASK "$cpus_per_task" 1
    # GRES= (empty) for CPU-only partitions
    local gres=${GRES-gpu:$gpus_per_node}
    local root
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    if [[ -n "${PORT:-}" ]]; then export MASTER_PORT=$PORT; fi
    local srun_args=(--partition="$partition" --job-name="$job_name" --ntasks="$gpus"
                     --ntasks-per-node="$gpus_per_node" --cpus-per-task="$cpus_per_task" --kill-on-bad-exit=1)
    if [[ -n "$gres" ]]; then srun_args+=(--gres="$gres"); fi
    # SRUN_ARGS is a list of options, split on spaces on purpose (e.g. SRUN_ARGS="--quotatype=auto -t 60")
    # shellcheck disable=SC2086
    PYTHONPATH="$root:${PYTHONPATH:-}" exec srun "${srun_args[@]}" ${SRUN_ARGS:-} \
        "${PYTHON:-python}" -u "$root/tools/$tool" "$@" --launcher slurm
}
