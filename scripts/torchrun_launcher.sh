#!/usr/bin/env bash
# Launch a Python script on torchrun with the same positional convention as scripts/msrun_launcher.sh:
#
#   bash scripts/torchrun_launcher.sh "CMD" [WORKER_NUM]                                          # single node
#   bash scripts/torchrun_launcher.sh "CMD" WORKER_NUM MASTER_PORT LOG_DIR JOIN CLUSTER_TIME_OUT  # single node
#   bash scripts/torchrun_launcher.sh "CMD" WORKER_NUM LOCAL_WORKER MASTER_ADDR MASTER_PORT NODE_RANK LOG_DIR JOIN CLUSTER_TIME_OUT
#
# nnodes = WORKER_NUM / LOCAL_WORKER, nproc_per_node = LOCAL_WORKER, static rendezvous at MASTER_ADDR:MASTER_PORT;
# worker output goes to LOG_DIR. CLUSTER_TIME_OUT bounds cluster formation, as in msrun: a node that has not joined
# the rendezvous within that many seconds fails the job; the job itself may run as long as it needs. JOIN is
# accepted for compatibility (torchrun always waits for its workers). Defaults as msrun_launcher.sh, port 29500. A CMD starting
# with "mindcode" runs mindcode's CLI. Exits non-zero when any worker fails (torchrun then stops the others).
set -euo pipefail

DEFAULT_PORT=29500 DEFAULT_LOG_DIR=output/torchrun_log
source "$(dirname "$0")/launcher_args.sh"
if [ $((WORKER_NUM % LOCAL_WORKER)) -ne 0 ]; then
  echo "torchrun_launcher.sh: WORKER_NUM $WORKER_NUM is not a multiple of LOCAL_WORKER $LOCAL_WORKER" >&2; exit 1
fi
NNODES=$((WORKER_NUM / LOCAL_WORKER))
mkdir -p "$LOG_DIR"
echo "torchrun_launcher.sh: node $NODE_RANK of $NNODES, $LOCAL_WORKER workers, master $MASTER_ADDR:$MASTER_PORT" >&2
# torchrun: $TORCHRUN, else on PATH, else beside $PYTHON's interpreter (a virtualenv's bin/).
TORCHRUN=${TORCHRUN:-$(command -v torchrun || "${PYTHON:-python3}" -c 'import os, sys; print(os.path.join(os.path.dirname(sys.executable), "torchrun"))')}
status=0
"$TORCHRUN" --nnodes="$NNODES" --nproc_per_node="$LOCAL_WORKER" \
  --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" --master_port="$MASTER_PORT" \
  --rdzv_conf="timeout=$CLUSTER_TIME_OUT" --log_dir="$LOG_DIR" --redirects=3 "${ARGS[@]}" \
  2> >(tee "$LOG_DIR/torchrun.stderr" >&2) || status=$?
if [ "$status" -ne 0 ]; then
  joined=$(grep -o '[0-9]*/[0-9]* clients joined' "$LOG_DIR/torchrun.stderr" | tail -1 || true)
  if [ -n "$joined" ]; then
    echo "torchrun_launcher.sh: error: only ${joined%% *} nodes joined $MASTER_ADDR:$MASTER_PORT within CLUSTER_TIME_OUT $CLUSTER_TIME_OUT s (start this launcher on every node, NODE_RANK 0..$((NNODES - 1)))" >&2
  else
    echo "torchrun_launcher.sh: error: exit status $status (worker logs in $LOG_DIR)" >&2
  fi
fi
exit "$status"
