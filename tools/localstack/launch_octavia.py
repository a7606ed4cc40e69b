"""Run an Octavia console script with a private no-op network database.

Usage (with the Python of the venv that has Octavia installed)::

    python launch_octavia.py api|driver-agent|db-manage -- <octavia args>
    python -m tools.localstack.launch_octavia api -- --config-file X

Why: Octavia 19's no-op network driver
(``octavia/network/drivers/noop_driver/driver.py``) always opens
``sqlite:////tmp/octavia-network-noop.db``, one file shared by every run on
the machine.  Before calling the real console-script ``main()``, this
launcher wraps that module's ``create_engine`` so any SQLite URL it asks
for points at ``$LOCALSTACK_NOOP_NET_DB`` instead.  ``sys.argv`` is set to
what the real console script would see (``<venv>/bin/octavia-api ARGS``).

This file is self-contained (stdlib + Octavia) so it can be run by path
from a child process that does not have the repository on ``sys.path``.
"""

import os
import sys

# When run by path, Python puts this file's directory first on sys.path,
# and its sibling modules (octavia.py, etcd.py, process.py ...) would then
# shadow the real packages.  Drop it before importing anything else.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or '.') != _HERE]

import importlib  # noqa: E402

ENV_VAR = 'LOCALSTACK_NOOP_NET_DB'
NOOP_MODULE = 'octavia.network.drivers.noop_driver.driver'

# kind -> (console script name, module, function); see octavia's
# entry_points.txt [console_scripts].
COMMANDS = {
    'api': ('octavia-api', 'octavia.cmd.api', 'main'),
    'driver-agent': ('octavia-driver-agent', 'octavia.cmd.driver_agent',
                     'main'),
    'db-manage': ('octavia-db-manage', 'octavia.db.migration.cli', 'main'),
}


def patch_noop_network_db(path):
    """Make the no-op network driver use the SQLite file ``path``."""
    driver = importlib.import_module(NOOP_MODULE)
    real = getattr(driver, 'create_engine', None)
    if real is None:  # Octavia changed: refuse rather than touch /tmp
        raise SystemExit(f'{NOOP_MODULE} has no create_engine to patch')
    url = 'sqlite:///' + os.path.abspath(path)

    def create_engine(*args, **kwargs):
        if args and str(args[0]).startswith('sqlite:'):
            args = (url,) + args[1:]
        return real(*args, **kwargs)

    driver.create_engine = create_engine


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        raise SystemExit(f'usage: {os.path.basename(__file__)} '
                         f'{"|".join(COMMANDS)} -- <args>')
    kind, args = argv[0], argv[1:]
    if args[:1] == ['--']:
        args = args[1:]
    script, module, func = COMMANDS[kind]
    entry = getattr(importlib.import_module(module), func)
    if kind != 'db-manage':
        db = os.environ.get(ENV_VAR)
        if not db:
            raise SystemExit(f'{ENV_VAR} is not set; refusing to let the '
                             f'no-op network driver use /tmp')
        patch_noop_network_db(db)
    sys.argv = [os.path.join(os.path.dirname(sys.executable), script)] + args
    return entry()


if __name__ == '__main__':
    sys.exit(main())
