# Shared helpers for scripts/slurm/up and scripts/slurm/down (sourced, not executed).
# shellcheck shell=bash disable=SC2034  # variables are used by the sourcing scripts

CLUSTER="${HYBRID_SLURM_CLUSTER:-hybrid}"
ACCOUNT="${HYBRID_SLURM_ACCOUNT:-hybrid}"
USERS="${HYBRID_SLURM_USERS:-root}"              # users added to $ACCOUNT (as their default)
TIMEOUT="${HYBRID_SLURM_TIMEOUT:-60}"            # seconds to wait for each daemon

STATE_DIR="${HYBRID_SLURM_STATE_DIR:-/run/hybrid-slurm}"   # pids of daemons started by `up`
DATA_DIR="${HYBRID_SLURM_DATA_DIR:-/var/lib/hybrid-slurm}" # MariaDB datadir, DB password
LOG_DIR=/var/log/slurm
DB_DATADIR="$DATA_DIR/mariadb"
DB_PASS_FILE="$DATA_DIR/slurmdbd.pass"
DB_SOCKET=/run/mysqld/mysqld.sock                # default socket: slurmdbd connects to "localhost"
DB_PIDFILE=/run/mysqld/hybrid-mariadbd.pid

# Daemons in start order; `down` stops them in reverse.
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)

log() { printf '[slurm %s] %s\n' "${0##*/}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

require_root() { [[ $(id -u) -eq 0 ]] || die "must run as root"; }

# Print the last lines of a log file (to explain a failure).
show_log() {
  local file=$1
  if [[ -s $file ]]; then
    log "last lines of $file:"
    tail -n 40 "$file" | sed 's/^/    /' >&2
  else
    log "(no log at $file)"
  fi
}

# wait_until SECONDS DESCRIPTION LOGFILE COMMAND...: poll COMMAND until it succeeds.
# If WAIT_PID is set, give up as soon as that process has exited.
wait_until() {
  local timeout=$1 what=$2 logfile=$3; shift 3
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if [[ -n ${WAIT_PID:-} ]] && ! proc_running "$WAIT_PID"; then
      log "process $WAIT_PID exited while waiting for $what"
      show_log "$logfile"
      exit 1
    fi
    if ((SECONDS >= deadline)); then
      log "timed out after ${timeout}s waiting for $what"
      show_log "$logfile"
      exit 1
    fi
    sleep 0.2
  done
}

# proc_running PID: the process exists and is not a zombie.
proc_running() {
  [[ -n $1 && -e /proc/$1 ]] || return 1
  [[ $(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) != Z ]]
}

# Start time of a process (clock ticks since boot); guards against reused pids.
proc_start() { [[ -r /proc/$1/stat ]] && sed 's/^.*) //' "/proc/$1/stat" | cut -d' ' -f20; }

# pid_alive PID NAME: process PID exists, is called NAME and is not a zombie
# (PID 1 here may take seconds to reap daemons that exited).
pid_alive() { [[ -n $1 && $(cat "/proc/$1/comm" 2>/dev/null) == "$2" ]] && proc_running "$1"; }

pid_from_file() { [[ -s $1 ]] && tr -dc '0-9' <"$1"; }

# Remember that `up` started daemon NAME with PID.
record_started() {
  local name=$1 pid=$2
  mkdir -p "$STATE_DIR/started"
  printf '%s %s\n' "$pid" "$(proc_start "$pid")" >"$STATE_DIR/started/$name.pid"
}

# Print the pid of daemon NAME if `up` started it and it still runs; drop stale records.
started_pid() {
  local name=$1 file="$STATE_DIR/started/$1.pid" pid start
  [[ -f $file ]] || return 1
  read -r pid start <"$file" || true
  if pid_alive "$pid" "$name" && [[ $(proc_start "$pid") == "$start" ]]; then
    echo "$pid"
  else
    rm -f "$file"
    return 1
  fi
}
