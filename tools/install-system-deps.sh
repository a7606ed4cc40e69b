#!/bin/bash
# Install the Debian packages the functional tests and the quick start need:
# etcd (etcd-server, etcd-client), MariaDB (mariadb-server) and iproute2
# (`ip`: tools/localstack/netns.py puts the member servers into a network
# namespace of their own).
#
# Idempotent: does nothing when the binaries are already there. Needs root
# (or sudo) only when something is missing. The packages' own services are
# never started: tools/localstack starts private etcd/MariaDB instances on
# free ports, so a policy-rc.d that refuses service starts is installed for
# the duration of apt-get when the machine has none (containers without
# systemd are fine either way).
set -euo pipefail

PACKAGES=(etcd-server etcd-client mariadb-server iproute2)
BINARIES=(/usr/bin/etcd /usr/sbin/mariadbd)

have_ip() {
    command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] ||
        [ -x /usr/bin/ip ] || [ -x /bin/ip ]
}

missing=()
for bin in "${BINARIES[@]}"; do
    [ -x "$bin" ] || missing+=("$bin")
done
command -v mariadb-install-db >/dev/null 2>&1 || missing+=(mariadb-install-db)
have_ip || missing+=("ip (iproute2)")

# python3 -m venv needs ensurepip; Debian's own python3 ships it separately.
extra=()
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    missing+=("python3 -m venv")
    extra+=(python3-venv)
fi

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-system-deps: etcd, MariaDB and iproute2 already installed"
    exit 0
fi

echo "install-system-deps: missing: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        SUDO=(sudo -n)
    else
        echo "install-system-deps: not root; please run as root:" >&2
        echo "  apt-get update && apt-get install -y ${PACKAGES[*]} ${extra[*]}" >&2
        exit 1
    fi
else
    SUDO=()
fi

POLICY=/usr/sbin/policy-rc.d
created_policy=0
cleanup() {
    if [ "$created_policy" = 1 ]; then
        "${SUDO[@]}" rm -f "$POLICY"
    fi
}
trap cleanup EXIT
if [ ! -e "$POLICY" ]; then
    # Refuse every service start (exit 101) while the packages are installed.
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY" >/dev/null
    "${SUDO[@]}" chmod 755 "$POLICY"
    created_policy=1
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends "${PACKAGES[@]}" "${extra[@]}" </dev/null

for bin in "${BINARIES[@]}"; do
    [ -x "$bin" ] || { echo "install-system-deps: $bin still missing" >&2;
                       exit 1; }
done
have_ip || { echo "install-system-deps: ip (iproute2) still missing" >&2;
             exit 1; }
echo "install-system-deps: done"
