# Sourced by msrun_launcher.sh and torchrun_launcher.sh: MindFormers' positional convention, parsed once.
#   "CMD" [WORKER_NUM]                                                                     single node
#   "CMD" WORKER_NUM MASTER_PORT LOG_DIR JOIN CLUSTER_TIME_OUT                             single node
#   "CMD" WORKER_NUM LOCAL_WORKER MASTER_ADDR MASTER_PORT NODE_RANK LOG_DIR JOIN CLUSTER_TIME_OUT
# Callers set DEFAULT_PORT and DEFAULT_LOG_DIR first; this sets the variables above and ARGS (the script and its
# arguments; a CMD starting with "mindcode" runs mindcode's CLI through scripts/mindcode_entry.py).

launcher_usage() {
  sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 1
}

WORKER_NUM=8 LOCAL_WORKER=8 MASTER_ADDR=127.0.0.1 MASTER_PORT=$DEFAULT_PORT NODE_RANK=0
LOG_DIR=$DEFAULT_LOG_DIR JOIN=False CLUSTER_TIME_OUT=7200
case $# in
  1) ;;
  2) WORKER_NUM=$2 LOCAL_WORKER=$2 ;;
  6) WORKER_NUM=$2 LOCAL_WORKER=$2 MASTER_PORT=$3 LOG_DIR=$4 JOIN=$5 CLUSTER_TIME_OUT=$6 ;;
  9) WORKER_NUM=$2 LOCAL_WORKER=$3 MASTER_ADDR=$4 MASTER_PORT=$5 NODE_RANK=$6 LOG_DIR=$7 JOIN=$8 CLUSTER_TIME_OUT=$9 ;;
  *) echo "$(basename "$0"): expected 1, 2, 6 or 9 arguments, got $#" >&2; launcher_usage ;;
esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
read -r -a ARGS <<< "$1"
if [ "${#ARGS[@]}" -eq 0 ]; then echo "$(basename "$0"): empty CMD" >&2; launcher_usage; fi
if [ "${ARGS[0]}" = "mindcode" ]; then ARGS=("$ROOT/scripts/mindcode_entry.py" "${ARGS[@]:1}"); fi
