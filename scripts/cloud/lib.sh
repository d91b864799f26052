# Shared helpers for scripts/cloud/up and scripts/cloud/down (sourced, not executed).
# shellcheck shell=bash disable=SC2034  # variables are used by the sourcing scripts

CLOUD_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$CLOUD_DIR/../.." && pwd)"

# Process bookkeeping (proc_running, pid_alive, since, record_started, started_pid), the API
# socket check (socket_ok), stop_started and stop_service come from the containers scripts; they read the
# variables below, which point them at this component's own state, socket and log.
# shellcheck source=../containers/lib.sh
source "$REPO/scripts/containers/lib.sh"

STATE_DIR="${HYBRID_CLOUD_STATE_DIR:-/run/hybrid-cloud}"            # pids of what `up` started, env file
DATA_DIR="${HYBRID_CLOUD_DATA_DIR:-/var/lib/hybrid-cloud}"          # the tools' venv, lock
CACHE_DIR="${HYBRID_CLOUD_CACHE_DIR:-/var/cache/snakemake-hybrid}"  # rootfs tarball of the job image
LOG_DIR=/var/log/hybrid-cloud
STOP_TIMEOUT="${HYBRID_CLOUD_STOP_TIMEOUT:-30}"

# podman's Docker-compatible API for moto, apart from the one of `containers/up --docker-socket`
SOCKET_PATH="$STATE_DIR/podman.sock"
SOCKET_URL="unix://$SOCKET_PATH"
SERVICE_LOG="$LOG_DIR/podman-service.log"

PORT="${HYBRID_CLOUD_PORT:-5055}"
ENDPOINT="http://127.0.0.1:$PORT"
TOOLS_VENV="$DATA_DIR/venv"   # moto_server, boto3 (scripts/cloud/requirements.txt)
MOTO_LOG="$LOG_DIR/moto.log"
ENV_FILE="$STATE_DIR/env"   # the export lines of `up --print-env`, written by every `up`

log() { printf '[cloud %s] %s\n' "${0##*/}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# moto answers on $ENDPOINT (its own API, not just any HTTP server).
moto_ok() { curl -sf --max-time 5 -o /dev/null "$ENDPOINT/moto-api/data.json"; }


# Containers that moto on $PORT started for Batch jobs (moto gives each one MOTO_PORT in
# its environment); moto removes them itself unless it was stopped while they ran.
batch_containers() {
  local id env
  command -v podman >/dev/null || return 0
  while read -r id env; do
    if [[ " $env " == *" MOTO_PORT=$PORT "* && " $env " == *" MOTO_HTTP_ENDPOINT="* ]]; then echo "$id"; fi
  done < <(podman ps -aq | xargs -r podman inspect --format '{{.Id}} {{range .Config.Env}}{{.}} {{end}}' 2>/dev/null)
}
