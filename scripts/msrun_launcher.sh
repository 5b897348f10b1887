#!/usr/bin/env bash
# Launch a Python script on MindSpore's msrun, with MindFormers' msrun_launcher.sh arguments (1, 2, 6 or 9 of them):
#
#   bash scripts/msrun_launcher.sh "CMD" [WORKER_NUM]                                          # single node
#   bash scripts/msrun_launcher.sh "CMD" WORKER_NUM MASTER_PORT LOG_DIR JOIN CLUSTER_TIME_OUT  # single node
#   bash scripts/msrun_launcher.sh "CMD" WORKER_NUM LOCAL_WORKER MASTER_ADDR MASTER_PORT NODE_RANK LOG_DIR JOIN CLUSTER_TIME_OUT
#
# CMD is a Python script and its arguments ("run.py --flag x"); a CMD starting with "mindcode" runs mindcode's CLI
# ("mindcode train --config configs/ascend/x.yaml"). Defaults: 8 workers, 8 local, 127.0.0.1:8118, node 0,
# output/msrun_log, JOIN False, timeout 7200 s. Multi-node when WORKER_NUM != LOCAL_WORKER: run it once per node with
# that node's NODE_RANK. Exits with msrun's status (non-zero when any worker fails).
set -euo pipefail

usage() {
  sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 1
}

WORKER_NUM=8 LOCAL_WORKER=8 MASTER_ADDR=127.0.0.1 MASTER_PORT=8118 NODE_RANK=0
LOG_DIR=output/msrun_log JOIN=False CLUSTER_TIME_OUT=7200
case $# in
  1) ;;
  2) WORKER_NUM=$2 LOCAL_WORKER=$2 ;;
  6) WORKER_NUM=$2 LOCAL_WORKER=$2 MASTER_PORT=$3 LOG_DIR=$4 JOIN=$5 CLUSTER_TIME_OUT=$6 ;;
  9) WORKER_NUM=$2 LOCAL_WORKER=$3 MASTER_ADDR=$4 MASTER_PORT=$5 NODE_RANK=$6 LOG_DIR=$7 JOIN=$8 CLUSTER_TIME_OUT=$9 ;;
  *) echo "msrun_launcher.sh: expected 1, 2, 6 or 9 arguments, got $#" >&2; usage ;;
esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
read -r -a ARGS <<< "$1"
if [ "${#ARGS[@]}" -eq 0 ]; then echo "msrun_launcher.sh: empty CMD" >&2; usage; fi
if [ "${ARGS[0]}" = "mindcode" ]; then ARGS=("$ROOT/scripts/mindcode_entry.py" "${ARGS[@]:1}"); fi
if [ "$WORKER_NUM" = "$LOCAL_WORKER" ]; then
  echo "msrun_launcher.sh: single node, $WORKER_NUM workers" >&2
else
  echo "msrun_launcher.sh: node $NODE_RANK, $LOCAL_WORKER of $WORKER_NUM workers, master $MASTER_ADDR:$MASTER_PORT" >&2
fi
# msrun: $$MSRUN, else on PATH, else beside $PYTHON's interpreter (a virtualenv's bin/).
MSRUN=${MSRUN:-$(command -v msrun || "${PYTHON:-python3}" -c 'import os, sys; print(os.path.join(os.path.dirname(sys.executable), "msrun"))')}
export PATH="$(dirname "$MSRUN"):$PATH"  # msrun starts workers with the `python` on PATH: use its own
exec "$MSRUN" --worker_num="$WORKER_NUM" --local_worker_num="$LOCAL_WORKER" --master_addr="$MASTER_ADDR" \
  --master_port="$MASTER_PORT" --node_rank="$NODE_RANK" --log_dir="$LOG_DIR" --join="$JOIN" \
  --cluster_time_out="$CLUSTER_TIME_OUT" "${ARGS[@]}"
