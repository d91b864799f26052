# Shared helpers for scripts/containers/up and scripts/containers/down (sourced, not executed).
# shellcheck shell=bash disable=SC2034  # variables are used by the sourcing scripts

STATE_DIR="${HYBRID_CONTAINERS_STATE_DIR:-/run/hybrid-containers}"        # pid of the service `up` started
DATA_DIR="${HYBRID_CONTAINERS_DATA_DIR:-/var/lib/hybrid-containers}"      # which config files `up` wrote
CACHE_DIR="${HYBRID_CONTAINERS_CACHE_DIR:-/var/cache/snakemake-hybrid}"   # rootfs tarballs of the test image
LOG_DIR=/var/log/hybrid-containers

CONFIG_MARKER="# Written by scripts/containers/up (snakemake-hybrid)"
CONFIG_FILES=(/etc/containers/containers.conf /etc/containers/storage.conf)
CONFIGS_RECORD="$DATA_DIR/configs-written"

SOCKET_PATH=/run/podman/podman.sock
SOCKET_URL="unix://$SOCKET_PATH"
SERVICE_LOG="$LOG_DIR/podman-service.log"

log() { printf '[containers %s] %s\n' "${0##*/}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

require_root() { [[ $(id -u) -eq 0 ]] || die "must run as root"; }

# Seconds elapsed since the $EPOCHREALTIME value $1, with one decimal.
since() { awk "BEGIN { printf \"%.1f\", $EPOCHREALTIME - $1 }"; }

# The podman API socket answers (docker-compatible ping).
socket_ok() { curl -sf --max-time 5 --unix-socket "$SOCKET_PATH" http://d/_ping >/dev/null 2>&1; }

# proc_running PID: the process exists and is not a zombie.
proc_running() {
  [[ -n $1 && -e /proc/$1 ]] || return 1
  [[ $(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) != Z ]]
}

# Start time of a process (clock ticks since boot); guards against reused pids.
proc_start() { [[ -r /proc/$1/stat ]] && sed 's/^.*) //' "/proc/$1/stat" | cut -d' ' -f20; }

# pid_alive PID NAME: process PID exists, is called NAME and is not a zombie.
pid_alive() { [[ -n $1 && $(cat "/proc/$1/comm" 2>/dev/null) == "$2" ]] && proc_running "$1"; }

# Remember that `up` started NAME (a process whose comm is COMM) with PID.
record_started() {
  local name=$1 comm=$2 pid=$3
  mkdir -p "$STATE_DIR/started"
  printf '%s %s %s\n' "$pid" "$(proc_start "$pid")" "$comm" >"$STATE_DIR/started/$name.pid"
}

# Print the pid of NAME if `up` started it and it still runs; drop stale records.
started_pid() {
  local file="$STATE_DIR/started/$1.pid" pid start comm
  [[ -f $file ]] || return 1
  read -r pid start comm <"$file" || true
  if pid_alive "$pid" "$comm" && [[ $(proc_start "$pid") == "$start" ]]; then
    echo "$pid"
  else
    rm -f "$file"
    return 1
  fi
}

STOP_TIMEOUT="${HYBRID_CONTAINERS_STOP_TIMEOUT:-30}"

# stop_started NAME COMM: stop the process `up` recorded as NAME: SIGTERM, wait up to
# STOP_TIMEOUT seconds, then SIGKILL. Prints its pid; returns 1 if `up` did not start it.
stop_started() {
  local name=$1 comm=$2 pid deadline
  pid="$(started_pid "$name")" || return 1
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + STOP_TIMEOUT))
  while pid_alive "$pid" "$comm"; do
    if ((SECONDS >= deadline)); then
      log "$name (pid $pid) ignored SIGTERM for ${STOP_TIMEOUT}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.1
  done
  rm -f "$STATE_DIR/started/$name.pid"
  echo "$pid"
}

# stop_service: stop the podman API service `up` started (see stop_started).
stop_service() {
  local pid
  pid="$(stop_started podman-service podman)" || return 1
  # podman leaves the socket file behind when killed; nothing answers on it any more.
  socket_ok || rm -f "$SOCKET_PATH"
  echo "$pid"
}
