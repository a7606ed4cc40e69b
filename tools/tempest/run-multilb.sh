#!/usr/bin/env bash
# Octavia's own conformance suite (octavia-tempest-plugin API v2, 632 tests)
# against multilb over two fake (no data plane) clusters, on this machine.
#
#   tools/tempest/run-multilb.sh [TEST_REGEX]        # multilb, ~45 min
#   tools/tempest/run-multilb.sh --reference [RE]    # the control provider
#
# It copies the harness (tools/tempest/harness, see its README.md) into a
# work directory (MULTILB_TEMPEST_DIR, default /tmp/multilb-tempest), which
# then holds its venv (built once), the live run directory and every run's
# results/<stamp>-<provider>/ (summary.txt, timing.txt, subunit stream,
# logs). Keystone, MariaDB, Octavia API and driver agent, multilb and
# tempest are started on 127.0.0.1 ports 28306/28500/28876 (change with
# HARNESS_*_PORT) and stopped at the end. --reference runs the harness'
# control provider, which reports statuses as Octavia's amphora driver
# does with no-op backends: run both on the same machine to compare
# per-test times (tools/tempest/compare.py).
#
# Long (not in CI). Needs root on Debian (MariaDB, Keystone) and PyPI.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=${MULTILB_TEMPEST_DIR:-/tmp/multilb-tempest}
provider=multilb
if [ "${1:-}" = "--reference" ]; then
    provider=harness_ref_driver
    shift
fi
regex=${1:-^octavia_tempest_plugin.tests.api.v2}

mkdir -p "$work/harness"
# refresh the harness files, keep its venv/, run/ and results/
cp -r "$here/harness/." "$work/harness/"

if [ "$provider" = multilb ]; then
    store="$work/multilb-state"
    rm -rf "$store" && mkdir -p "$store"
    sed -e "s|@STORE@|$store|g" "$here/multilb.octavia.conf" \
        > "$work/multilb.octavia.conf"
    cd "$work/harness"
    PROVIDER_PIP="$repo" \
    TEMPEST_EXTRA_CONF="$here/multilb.tempest.conf" \
        exec ./run.sh multilb "$work/multilb.octavia.conf" "$regex"
fi
cd "$work/harness"
exec ./run.sh harness_ref_driver - "$regex"
