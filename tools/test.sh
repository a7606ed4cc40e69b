#!/bin/bash
# THE test command of multilb:
#
#     tools/test.sh [pytest arguments...]      e.g. tools/test.sh -x -k store
#
# 1. installs etcd + MariaDB from Debian (tools/install-system-deps.sh; root);
# 2. installs tox 4 into .tox-bootstrap/ (a venv of its own, reused);
# 3. runs  tox -e pep8       flake8, fails on any violation
#          tox -e genconfig  the oslo-config-generator sample must build
#                            (written under .tox/, the tracked sample is
#                            left alone; regenerate it with tox -e genconfig)
#          tox -e docs       Sphinx builds doc/build/html, warnings as
#                            errors; the option and multilb-manage
#                            references must list everything the code has
#          tox -e py3        pytest tests/unit, compliance, functional; the
#                            functional tests start their own etcd, MariaDB
#                            and Octavia API + driver agent on free ports.
#    Arguments go to pytest. Every step runs even if an earlier one failed;
#    the exit code is non-zero if any failed (pytest's exit 5, "no tests
#    collected", is a failure too).
#
# Environment: PYTHON (default python3) builds the venvs;
# MULTILB_TOX_ENVS (default pep8,genconfig,docs,py3) picks the steps;
# MULTILB_TEST_TIMEOUT (seconds, default 4500) bounds the py3 step.
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)
PYTHON=${PYTHON:-python3}
ENVS=${MULTILB_TOX_ENVS:-pep8,genconfig,docs,py3}
TIMEOUT=${MULTILB_TEST_TIMEOUT:-4500}
BOOT=$REPO/.tox-bootstrap

step() { printf '\n==> %s\n' "$*"; }
elapsed() { echo $(( $(date +%s) - $1 ))s; }
t0=$(date +%s)

step "system packages (etcd, MariaDB, iproute2)"
bash tools/install-system-deps.sh

step "tox (in .tox-bootstrap/)"
if ! "$BOOT/bin/tox" --version >/dev/null 2>&1; then
    rm -rf "$BOOT"
    "$PYTHON" -m venv "$BOOT"
    "$BOOT/bin/python" -m pip install -q 'tox>=4.0,<5'
fi
"$BOOT/bin/tox" --version

declare -A results=()
order=()
run_env() {
    local env=$1; shift
    local start rc=0
    start=$(date +%s)
    step "tox -e $env"
    "$@" || rc=$?
    results[$env]="rc=$rc in $(elapsed "$start")"
    if [ "$rc" -eq 5 ] && [[ $env == py3* ]]; then
        results[$env]+=" (pytest collected no test)"
    elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        results[$env]+=" (stopped by MULTILB_TEST_TIMEOUT=$TIMEOUT)"
    fi
    order+=("$env")
    [ "$rc" -eq 0 ] || failed=$rc
}

# Without --foreground, timeout runs tox in a process group of its own,
# which the terminal's Ctrl-C would not reach.
TIMEOUT_ARGS=(-k 60)
if [ -t 0 ]; then TIMEOUT_ARGS+=(--foreground); fi

failed=0
IFS=',' read -r -a envs <<<"$ENVS"
for env in "${envs[@]}"; do
    case $env in
        py3*)
            run_env "$env" timeout "${TIMEOUT_ARGS[@]}" "$TIMEOUT" \
                "$BOOT/bin/tox" -e "$env" -- "$@" ;;
        genconfig)
            mkdir -p .tox
            run_env "$env" env MULTILB_SAMPLE="$REPO/.tox/multilb.conf.sample" \
                "$BOOT/bin/tox" -e genconfig ;;
        *)
            run_env "$env" "$BOOT/bin/tox" -e "$env" ;;
    esac
done

step "summary (total $(elapsed "$t0"))"
for env in "${order[@]}"; do
    echo "  $env: ${results[$env]}"
done
if [ "$failed" -ne 0 ]; then
    echo "tools/test.sh: FAILED" >&2
    exit "$failed"
fi
echo "tools/test.sh: all steps passed"
