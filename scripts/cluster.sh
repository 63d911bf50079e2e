#!/usr/bin/env bash
# make cluster-up / cluster-down / cluster-test (README, "Cluster tests").
#   up    builds what is missing, starts the control plane (e2e-tests/cluster), installs
#         the bundle chart and waits until both policies are active; leaves it running
#         and prints `export KUBECONFIG=...` as its last line
#   down  stops exactly what up started and removes its state directory
#   test  up, the cluster tests, down (also after a failure)
# Without Go or ../shared/bin/policy-server, `test` says what it skipped and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
state="${CLUSTER_STATE:-$PWD/target/cluster}"
cluster=e2e-tests/cluster

missing() {
  command -v go >/dev/null || { echo "Go is not installed"; return; }
  [ -x ../shared/bin/policy-server ] || { echo "../shared/bin/policy-server is missing"; return; }
  command -v docker-registry >/dev/null || { echo "docker-registry is not installed (make test-deps)"; return; }
  true
}

up() {
  local started=$SECONDS reason
  reason=$(missing)
  [ -z "$reason" ] || { echo "cluster-up: $reason" >&2; exit 1; }
  mkdir -p "$(dirname "$state")"
  python3 "$cluster/controlplane.py" up "$state" >"$state.kubeconfig-line" || {
    rm -f "$state.kubeconfig-line"; exit 1; }
  echo "control plane up in $((SECONDS - started))s (logs: $state/logs)" >&2
  python3 "$cluster/install.py" "$state"
  echo "cluster up in $((SECONDS - started))s" >&2
  cat "$state.kubeconfig-line"
  rm -f "$state.kubeconfig-line"
}

down() {
  python3 "$cluster/controlplane.py" down "$state"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  test)
    reason=$(missing)
    if [ -n "$reason" ]; then
      echo "SKIPPED: the cluster tests ($reason)"
      exit 0
    fi
    [ ! -e "$state" ] || down
    trap down EXIT
    up
    CLUSTER_STATE="$state" python3 -m pytest "$cluster" -q -p no:cacheprovider
    ;;
  *) echo "usage: scripts/cluster.sh up|down|test" >&2; exit 2 ;;
esac
