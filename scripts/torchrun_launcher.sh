#!/usr/bin/env bash
# Launch a Python script on torchrun with the same positional convention as scripts/msrun_launcher.sh:
#
#   bash scripts/torchrun_launcher.sh "CMD" [WORKER_NUM]                                          # single node
#   bash scripts/torchrun_launcher.sh "CMD" WORKER_NUM MASTER_PORT LOG_DIR JOIN CLUSTER_TIME_OUT  # single node
#   bash scripts/torchrun_launcher.sh "CMD" WORKER_NUM LOCAL_WORKER MASTER_ADDR MASTER_PORT NODE_RANK LOG_DIR JOIN CLUSTER_TIME_OUT
#
# nnodes = WORKER_NUM / LOCAL_WORKER, nproc_per_node = LOCAL_WORKER, static rendezvous at MASTER_ADDR:MASTER_PORT;
# worker output goes to LOG_DIR; the job is ended after CLUSTER_TIME_OUT seconds. JOIN is accepted for
# compatibility (torchrun always waits for its workers). Defaults as msrun_launcher.sh, port 29500. A CMD starting
# with "mindcode" runs mindcode's CLI. Exits non-zero when any worker fails (torchrun then stops the others).
set -euo pipefail

usage() {
  sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 1
}

WORKER_NUM=8 LOCAL_WORKER=8 MASTER_ADDR=127.0.0.1 MASTER_PORT=29500 NODE_RANK=0
LOG_DIR=output/torchrun_log JOIN=False CLUSTER_TIME_OUT=7200
case $# in
  1) ;;
  2) WORKER_NUM=$2 LOCAL_WORKER=$2 ;;
  6) WORKER_NUM=$2 LOCAL_WORKER=$2 MASTER_PORT=$3 LOG_DIR=$4 JOIN=$5 CLUSTER_TIME_OUT=$6 ;;
  9) WORKER_NUM=$2 LOCAL_WORKER=$3 MASTER_ADDR=$4 MASTER_PORT=$5 NODE_RANK=$6 LOG_DIR=$7 JOIN=$8 CLUSTER_TIME_OUT=$9 ;;
  *) echo "torchrun_launcher.sh: expected 1, 2, 6 or 9 arguments, got $#" >&2; usage ;;
esac
if [ $((WORKER_NUM % LOCAL_WORKER)) -ne 0 ]; then
  echo "torchrun_launcher.sh: WORKER_NUM $WORKER_NUM is not a multiple of LOCAL_WORKER $LOCAL_WORKER" >&2; exit 1
fi
NNODES=$((WORKER_NUM / LOCAL_WORKER))

ROOT=$(cd "$(dirname "$0")/.." && pwd)
read -r -a ARGS <<< "$1"
if [ "${#ARGS[@]}" -eq 0 ]; then echo "torchrun_launcher.sh: empty CMD" >&2; usage; fi
if [ "${ARGS[0]}" = "mindcode" ]; then ARGS=("$ROOT/scripts/mindcode_entry.py" "${ARGS[@]:1}"); fi
mkdir -p "$LOG_DIR"
echo "torchrun_launcher.sh: node $NODE_RANK of $NNODES, $LOCAL_WORKER workers, master $MASTER_ADDR:$MASTER_PORT" >&2
# torchrun: $$TORCHRUN, else on PATH, else beside $PYTHON's interpreter (a virtualenv's bin/).
TORCHRUN=${TORCHRUN:-$(command -v torchrun || "${PYTHON:-python3}" -c 'import os, sys; print(os.path.join(os.path.dirname(sys.executable), "torchrun"))')}
exec timeout --kill-after=30 "$CLUSTER_TIME_OUT" "$TORCHRUN" --nnodes="$NNODES" --nproc_per_node="$LOCAL_WORKER" \
  --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" --master_port="$MASTER_PORT" \
  --log_dir="$LOG_DIR" --redirects=3 "${ARGS[@]}"
