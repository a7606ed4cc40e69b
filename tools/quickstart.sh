#!/bin/bash
# THE quick start of multilb:
#
#     tools/quickstart.sh [up]     start a local Octavia with multilb, create
#                                  load balancers through the real clients
#     tools/quickstart.sh down     stop everything `up` started
#     tools/quickstart.sh status   show what runs
#
# `up` runs the main job on embedded defaults: etcd + MariaDB from Debian
# (tools/install-system-deps.sh, needs root once), a venv in
# .quickstart/venv with multilb, Octavia, openstacksdk and the openstack CLI,
# then the real octavia-api + octavia-driver-agent (python -m tools.localstack)
# with multilb enabled over two FAKE appliance clusters, dc1-fake-a and
# dc1-fake-b. multilb keeps its state in SQLite and its locks in files (the
# single-host embedded defaults, under .quickstart/stack/multilb instead of
# /var/lib/multilb). tools/quickstart_demo.py then creates a full-graph load
# balancer and a plain one with openstacksdk, waits for ACTIVE, shows them
# with `openstack loadbalancer list` / `status show` and prints which
# cluster each landed on. The stack keeps running until `down`.
#
# Environment: PYTHON (default python3) builds the venv.
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)
QS=$REPO/.quickstart
VENV=$QS/venv
STACK=$QS/stack
CONF=$QS/multilb-quickstart.conf
PYTHON=${PYTHON:-python3}
CLUSTERS=(dc1-fake-a dc1-fake-b)

step() { printf '\n==> %s\n' "$*"; }

stack_running() {
    [ -x "$VENV/bin/python" ] && [ -f "$STACK/stack.json" ] &&
        "$VENV/bin/python" -m tools.localstack status --workdir "$STACK" \
            2>/dev/null | grep -q ' running$'
}

install_venv() {
    # Reinstall only when the requirements or setup.cfg changed.
    local stamp=$VENV/.quickstart-installed want
    want=$(cat requirements.txt test-requirements.txt setup.cfg | sha256sum |
           cut -d' ' -f1)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] &&
            [ -x "$VENV/bin/openstack" ] && [ -x "$VENV/bin/octavia-api" ]; then
        echo "reusing $VENV"
        return
    fi
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    local start=$SECONDS log=$QS/pip-install.log
    echo "pip install -e . -r test-requirements.txt python-octaviaclient" \
         "python-openstackclient (log: $log)"
    if ! "$VENV/bin/python" -m pip install -e . -r test-requirements.txt \
            python-octaviaclient python-openstackclient > "$log" 2>&1; then
        tail -n 30 "$log" >&2
        echo "quickstart: pip install failed; see $log" >&2
        exit 1
    fi
    echo "$want" > "$stamp"
    echo "venv ready in $((SECONDS - start)) s"
}

write_conf() {
    local lines=(
        "[multilb]"
        "enabled_clusters = $(IFS=,; echo "${CLUSTERS[*]}" | sed 's/,/, /g')"
        "# the embedded single-host defaults, moved from /var/lib/multilb"
        "store_url = sqlite:///$STACK/multilb/state.db"
        "coordination_url = file://$STACK/multilb/locks"
        ""
        "[cluster_defaults]"
        "# the fake appliances mirror each LB they hold as"
        "# <fake_state_dir>/<cluster>/<lb id>.json"
        "fake_state_dir = $STACK/appliance"
    )
    local cluster
    for cluster in "${CLUSTERS[@]}"; do
        lines+=("" "[cluster:$cluster]" "backend = fake"
                "max_loadbalancers = 100")
    done
    printf '%s\n' "${lines[@]}" > "$CONF"
}

up() {
    local t0=$SECONDS
    step "system packages (etcd, MariaDB)"
    bash tools/install-system-deps.sh

    step "python venv ($VENV)"
    mkdir -p "$QS"
    install_venv

    if stack_running; then
        step "the stack in $STACK is already running; reusing it"
    else
        step "starting etcd, MariaDB, octavia-driver-agent and octavia-api"
        rm -rf "$STACK"    # a new Octavia DB needs new multilb state too
        mkdir -p "$STACK/multilb/locks" "$STACK/appliance"
        write_conf
        echo "multilb configuration ($CONF):"
        sed 's/^/    /' "$CONF"
        "$VENV/bin/python" -m tools.localstack up --workdir "$STACK" \
            --provider multilb --provider-agents multilb \
            --extra-conf "$CONF" > "$QS/stack-up.json"
    fi

    step "load balancers through the real clients"
    if ! "$VENV/bin/python" tools/quickstart_demo.py \
            --stack-json "$STACK/stack.json" --state-dir "$STACK/appliance" \
            --clusters "$(IFS=,; echo "${CLUSTERS[*]}")"; then
        echo "quickstart: the demo failed; the stack still runs (logs in" \
             "$STACK/octavia/logs); stop it with: tools/quickstart.sh down" >&2
        exit 1
    fi

    local api
    api=$("$VENV/bin/python" -c 'import json, sys
print(json.load(open(sys.argv[1]))["octavia"]["api_urls"][0])' \
        "$STACK/stack.json")
    cat <<EOM

==> done in $((SECONDS - t0)) s. The stack keeps running:
    Octavia API    $api   (noauth: send X-Project-Id, or use the CLI below)
    octavia.conf   $STACK/octavia/octavia.conf
    logs           $STACK/octavia/logs/
    try            $VENV/bin/openstack --os-auth-type none \\
                       --os-endpoint $api loadbalancer list
    stop it with   tools/quickstart.sh down
EOM
}

down() {
    if [ ! -f "$STACK/stack.json" ]; then
        echo "nothing to stop ($STACK/stack.json does not exist)"
        return 0
    fi
    local py=$PYTHON
    [ -x "$VENV/bin/python" ] && py=$VENV/bin/python
    "$py" -m tools.localstack down --workdir "$STACK"
    echo "stopped; logs and data stay in $STACK (rm -rf $QS to remove all)"
}

status() {
    if [ ! -f "$STACK/stack.json" ]; then
        echo "down"
        return 1
    fi
    "$VENV/bin/python" -m tools.localstack status --workdir "$STACK"
}

case ${1:-up} in
    up) up ;;
    down) down ;;
    status) status ;;
    -h|--help|help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' ;;
    *) echo "usage: $0 [up|down|status]" >&2; exit 2 ;;
esac
