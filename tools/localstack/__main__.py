"""CLI: bring a local etcd + MariaDB + Octavia stack up or down.

    python -m tools.localstack up --workdir DIR [--extra-conf FILE]
        [--provider multilb[,noop_driver]] [--provider-agents multilb]
        [--api-count N] [--venv-bin DIR] [--debug]
    python -m tools.localstack down --workdir DIR
    python -m tools.localstack status --workdir DIR

``up`` starts the services detached (they outlive this command), writes
``DIR/stack.json`` (ports, URLs, PIDs with their start times, conf path)
after every step and prints it.  ``down`` stops, in reverse order, exactly
the PIDs recorded there, and only if ``/proc/<pid>`` still shows the same
start time and a command line that mentions DIR (PIDs get reused).
Run it with the Python of the Octavia venv, or pass ``--venv-bin``.
"""

import argparse
import json
import logging
import os
import sys

from .etcd import EtcdServer
from .mariadb import MariaDBServer
from .octavia import OctaviaStack
from .process import Service, pid_alive, proc_cmdline

LOG = logging.getLogger('tools.localstack')

STOP_TIMEOUTS = {'mariadbd': 60, 'octavia-driver-agent': 30}


def _state_path(workdir):
    return os.path.join(workdir, 'stack.json')


def _ours(entry, workdir):
    """True if the recorded process still runs and is the one we started."""
    return (pid_alive(entry['pid'], entry['starttime']) and
            workdir in proc_cmdline(entry['pid']))


def _load(workdir):
    try:
        with open(_state_path(workdir)) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def _save(workdir, state):
    tmp = _state_path(workdir) + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(state, f, indent=2)
        f.write('\n')
    os.replace(tmp, _state_path(workdir))


def up(args):
    workdir = args.workdir
    old = _load(workdir)
    if old and any(_ours(s, workdir) for s in old['services']):
        LOG.error('%s is already up; run down first', workdir)
        return 1
    os.makedirs(workdir, exist_ok=True)
    extra = ''
    if args.extra_conf:
        with open(args.extra_conf) as f:
            extra = f.read()
    state = {'workdir': workdir, 'services': []}
    started = []

    def record(name, component):
        if component not in started:
            started.append(component)
        state[name] = component.describe()
        state['services'] = [s.describe() for c in started
                             for s in _services(c)]
        _save(workdir, state)

    try:
        record('etcd', EtcdServer(workdir, detach=True).start())
        db = MariaDBServer(workdir, detach=True).start()
        record('mariadb', db)
        url = db.create_database(args.db_name, args.db_user, args.db_password)
        state['database_url'] = url
        stack = OctaviaStack(
            workdir, url, provider=args.provider,
            provider_description=args.provider_description,
            provider_agents=args.provider_agents, extra_conf=extra,
            api_count=args.api_count, venv_bin=args.venv_bin,
            debug=args.debug, detach=True)
        started.append(stack)  # so a failed start is cleaned up below
        record('octavia', stack.start())
    except BaseException:
        LOG.exception('up failed; stopping what was started')
        for component in reversed(started):
            component.stop()
        if os.path.exists(_state_path(workdir)):
            os.unlink(_state_path(workdir))
        return 1
    print(json.dumps(state, indent=2))
    return 0


def _services(component):
    if isinstance(component, OctaviaStack):
        services = [component.driver_agent] + component.api_services
    else:
        services = [component.service]
    return [s for s in services if s is not None]


def down(args):
    workdir = args.workdir
    state = _load(workdir)
    if state is None:
        LOG.info('no %s; nothing to stop', _state_path(workdir))
        return 0
    failed = False
    for entry in reversed(state['services']):
        if not _ours(entry, workdir):
            LOG.info('%s (pid %s) is not running (or not ours); skipping',
                     entry['name'], entry['pid'])
            continue
        svc = Service.attach(entry['name'], entry['pid'], entry['starttime'],
                             entry.get('log_path'))
        svc.stop(timeout=STOP_TIMEOUTS.get(entry['name'], 15))
        if svc.alive():
            LOG.error('%s (pid %s) is still running', svc.name, svc.pid)
            failed = True
    if not failed:
        os.unlink(_state_path(workdir))
    return 1 if failed else 0


def status(args):
    state = _load(args.workdir)
    if state is None:
        print('down')
        return 1
    for entry in state['services']:
        alive = _ours(entry, args.workdir)
        print(f"{entry['name']:24} {entry['pid']:>8} "
              f"{'running' if alive else 'stopped'}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m tools.localstack')
    sub = parser.add_subparsers(dest='command', required=True)
    for name in ('up', 'down', 'status'):
        p = sub.add_parser(name)
        p.add_argument('--workdir', required=True)
        if name == 'up':
            p.add_argument('--extra-conf', help='ini file appended to '
                           'octavia.conf')
            p.add_argument('--provider', default='multilb',
                           help='comma-separated; the first is the default')
            p.add_argument('--provider-description',
                           default='multilb appliance fleet')
            p.add_argument('--provider-agents', default='multilb',
                           help="comma-separated; '' for none")
            p.add_argument('--api-count', type=int, default=1)
            p.add_argument('--venv-bin', help='bin/ of the Octavia venv '
                           '(default: next to this Python)')
            p.add_argument('--db-name', default='octavia')
            p.add_argument('--db-user', default='octavia')
            p.add_argument('--db-password', default='octavia')
            p.add_argument('--debug', action='store_true')
    args = parser.parse_args(argv)
    args.workdir = os.path.abspath(args.workdir)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format='%(asctime)s %(levelname)s %(message)s')
    return {'up': up, 'down': down, 'status': status}[args.command](args)


if __name__ == '__main__':
    sys.exit(main())
