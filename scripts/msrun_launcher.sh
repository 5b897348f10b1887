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
# that node's NODE_RANK.
#
# Exit status: with JOIN True msrun waits for its workers and exits non-zero when any of them fails; with JOIN False
# (MindFormers' default) it returns once the workers are started, so its status only says whether they started:
# follow LOG_DIR/worker_N.log (and OUTPUT_DIR/summary.json, written when training ends). Like MindFormers' own
# launcher it lifts the per-user process limit first (MindSpore's dataset and compile threads count against it).
#
# Checkpoints and the merged export: every rank writes under the config's training.output_dir, and rank 0 renames
# and merges them there, so on several nodes that folder must be on a filesystem all nodes share; `mindcode train`
# checks this when it starts (each node writes a marker that rank 0 must see) and stops with one line if not.
set -euo pipefail
ulimit -u unlimited 2>/dev/null || true

DEFAULT_PORT=8118 DEFAULT_LOG_DIR=output/msrun_log
source "$(dirname "$0")/launcher_args.sh"
if [ "$WORKER_NUM" = "$LOCAL_WORKER" ]; then
  echo "msrun_launcher.sh: single node, $WORKER_NUM workers" >&2
else
  echo "msrun_launcher.sh: node $NODE_RANK, $LOCAL_WORKER of $WORKER_NUM workers, master $MASTER_ADDR:$MASTER_PORT" >&2
fi
# msrun: $MSRUN, else on PATH, else beside $PYTHON's interpreter (a virtualenv's bin/).
MSRUN=${MSRUN:-$(command -v msrun || "${PYTHON:-python3}" -c 'import os, sys; print(os.path.join(os.path.dirname(sys.executable), "msrun"))')}
export PATH="$(dirname "$MSRUN"):$PATH"  # msrun starts workers with the `python` on PATH: use its own
exec "$MSRUN" --worker_num="$WORKER_NUM" --local_worker_num="$LOCAL_WORKER" --master_addr="$MASTER_ADDR" \
  --master_port="$MASTER_PORT" --node_rank="$NODE_RANK" --log_dir="$LOG_DIR" --join="$JOIN" \
  --cluster_time_out="$CLUSTER_TIME_OUT" "${ARGS[@]}"
