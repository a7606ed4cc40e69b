"""CLI: bring a local etcd + MariaDB + Octavia stack up or down.

    python -m tools.localstack up --workdir DIR [--extra-conf FILE]
        [--provider multilb[,noop_driver]] [--provider-agents multilb]
        [--api-count N] [--venv-bin DIR] [--debug]
        [--caddy-cluster NAME[:NODES]]... [--as3-device NAME]...
        [--members N]
        [--member-subnet 198.18.X.0/24] [--vip-pool 127.X.Y.0/24]
    python -m tools.localstack down --workdir DIR
    python -m tools.localstack status --workdir DIR

``up`` starts the services detached (they outlive this command), writes
``DIR/stack.json`` (ports, URLs, PIDs with their start times, conf path)
after every step and prints it.  ``down`` stops, in reverse order, exactly
the PIDs recorded there, and only if ``/proc/<pid>`` still shows the same
start time and a command line that mentions DIR (PIDs get reused).
Run it with the Python of the Octavia venv, or pass ``--venv-bin``.

Appliances and members, started before Octavia (their addresses go into
its configuration):

* ``--caddy-cluster NAME[:NODES]`` (repeatable; NODES defaults to 2) starts
  NODES real Caddy nodes (``caddy`` next to this Python or on PATH; see
  caddy.py) with admin APIs on unix sockets in their directories (no
  admin TCP port), and appends to octavia.conf a ``[cluster:NAME]``
  section with ``backend = caddy``, ``endpoints =`` their admin URLs
  (``unix:///...``) and ``vip_pools = loopback``.  Name the cluster in
  ``[multilb] enabled_clusters`` of ``--extra-conf``; more options for it
  may go into a ``[cluster:NAME]`` section there too (oslo.config merges
  repeated sections; the generated options come last and win, and
  ``vip_pools`` lists there are kept, with ``loopback`` added).
* ``--as3-device NAME`` (repeatable) starts an F5 AS3 device EMULATOR
  (as3_process.py: not a BIG-IP, nothing carries traffic; a user ``admin``
  with a generated password) and appends a ``[cluster:NAME]`` section with
  ``backend = f5``, its URL and credentials (and the VIP pool, when there
  is one).  stack.json records it under ``as3_devices`` (with the
  password: a lab's).
* With Caddy clusters, a loopback VIP pool (vip_pool.py): ``[multilb]
  vip_pools = loopback`` and ``[vip_pool:loopback]`` with ``cidr =
  127.A.X.0/24`` for the member lab's ``198.A.X.0/24`` (so unique among
  running stacks; ``--vip-pool CIDR`` names another range of 127.0.0.0/8,
  and is required without ``--members``) and ``subnet_id =``
  :data:`vip_pool.SUBNET_ID`, the subnet to create load balancers on.
  multilb hands each load balancer on that subnet an address of the pool
  as its VIP, and the nodes bind exactly that address (listeners below
  port 1024 need root).  ``up`` refuses a range that a listening socket
  or a route of this host already uses.  stack.json records it under
  ``vip_pool``.
* ``--members N`` creates a member lab (netns.py: a network namespace
  with a veth pair to this one and a free /24 of 198.18.0.0/15, or
  ``--member-subnet``; needs root) and starts in it N member HTTP servers
  ``m1`` ... ``mN``, each on an address of its own (see members.py: ``GET
  /`` answers ``member=<name>``, ``/health`` ``ok``).  Members are never
  on loopback: multilb refuses loopback members.  stack.json records the
  lab under ``member_lab``; ``down`` deletes it after the processes.

``status`` prints one line for the member lab (present or absent), one for
the VIP pool (its name, range and subnet), and one
per recorded process (with its URL if it has one) and exits 0 if all run,
3 if some do not, 1 if nothing is recorded.
"""

import argparse
import configparser
import json
import logging
import os
import re
import sys

from . import vip_pool
from .as3_process import AS3DeviceProcess
from .caddy import CaddyCluster
from .etcd import EtcdServer
from .mariadb import MariaDBServer
from .members import MemberProcess
from .netns import LabError, MemberLab
from .octavia import OctaviaStack
from .process import Service, pid_alive, proc_cmdline

LOG = logging.getLogger('tools.localstack')

STOP_TIMEOUTS = {'mariadbd': 60, 'octavia-driver-agent': 30}
EXIT_PARTLY = 3  # status: some recorded process does not run
CLUSTER_RE = re.compile(r'^([A-Za-z0-9][A-Za-z0-9_.-]{0,62})(?::(\d+))?$')


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


def caddy_cluster_spec(value):
    """``NAME[:NODES]`` -> ``(NAME, NODES)``; an argparse type."""
    match = CLUSTER_RE.match(value)
    if not match or int(match.group(2) or 2) < 1:
        raise argparse.ArgumentTypeError(
            f'{value!r}: expected NAME or NAME:NODES (NODES >= 1)')
    return match.group(1), int(match.group(2) or 2)


def _cluster_name(value):
    """A multilb cluster name; an argparse type."""
    match = CLUSTER_RE.match(value)
    if not match or match.group(2):
        raise argparse.ArgumentTypeError(f'{value!r}: expected a cluster '
                                         f'name')
    return value


def cluster_conf(clusters, pool, extra='', devices=()):
    """The ``[cluster:NAME]`` sections telling multilb where the Caddy
    clusters we started are, and their loopback VIP pool.  ``vip_pools``
    lists of ``extra`` (the ``--extra-conf`` text) are kept: these sections
    come after it and would replace them."""
    def pools(section):
        return ', '.join(dict.fromkeys(
            (_conf_list(extra, section, 'vip_pools') or []) + [pool.name]))

    lines = ['# written by tools.localstack: the Caddy clusters it started',
             '# and their VIP pool: each load balancer gets a loopback '
             'address',
             '# of its own as its VIP, and the nodes bind exactly it',
             '', '[multilb]', 'vip_pools = ' + pools('multilb'),
             '', f'[vip_pool:{pool.name}]',
             f'network_id = {pool.network_id}',
             f'subnet_id = {pool.subnet_id}', f'cidr = {pool.cidr}']
    for cluster in clusters:
        lines += ['', f'[cluster:{cluster.name}]', 'backend = caddy',
                  'endpoints = ' + ', '.join(cluster.endpoints),
                  'vip_pools = ' + pools(f'cluster:{cluster.name}')]
    for device in devices:
        lines += ['', f'[cluster:{device.name}]',
                  '# an F5 AS3 device EMULATOR (tools/localstack/'
                  'as3_device.py),', '# not a BIG-IP: nothing carries '
                  'traffic', 'backend = f5', f'endpoints = {device.url}',
                  f'username = {device.describe()["user"]}',
                  f'password = {device.password}',
                  'divergence_check_interval = 10']
        if pool is not None:
            lines.append('vip_pools = ' + pools(f'cluster:{device.name}'))
    return '\n'.join(lines) + '\n'


def _conf_list(text, section, option):
    """A list option of an ini text ([] if absent, None: unreadable)."""
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error:
        return None
    value = parser.get(section, option, fallback='')
    return [name.strip() for name in value.split(',') if name.strip()]


def _enabled_clusters(extra):
    """``[multilb] enabled_clusters`` of the extra conf (None: unreadable)."""
    return _conf_list(extra, 'multilb', 'enabled_clusters')


def _read_extra_conf(args):
    """The ``--extra-conf`` text; warns about Caddy clusters it does not
    enable."""
    extra = ''
    if args.extra_conf:
        with open(args.extra_conf) as f:
            extra = f.read()
    enabled = _enabled_clusters(extra)
    for name, _nodes in args.caddy_cluster:
        if enabled is not None and name not in enabled:
            LOG.warning('Caddy cluster %s is not in [multilb] '
                        'enabled_clusters of --extra-conf; multilb will not '
                        'use it', name)
    return extra


class _Recorder:
    """What ``up`` started, in order, saved to stack.json after each step
    (so ``down`` can stop a half-started stack too)."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.state = {'workdir': workdir, 'services': []}
        self.started = []

    def starting(self, component):
        """Remember ``component`` before it starts: a failed start is
        cleaned up with the rest."""
        if component not in self.started:
            self.started.append(component)
        return component

    def record(self, name, component, key=None):
        self.starting(component)
        if key is None:
            self.state[name] = component.describe()
        else:
            self.state.setdefault(name, {})[key] = component.describe()
        self.state['services'] = [_entry(s, url) for c in self.started
                                  for s, url in _services(c)]
        _save(self.workdir, self.state)

    def stop_all(self):
        for component in reversed(self.started):
            component.stop()


def _choose_pool(args, lab):
    """The loopback VIP pool of the Caddy clusters (``PoolError`` if its
    range is in use)."""
    names = [name for name, _nodes in args.caddy_cluster] + list(
        args.as3_device)
    if args.vip_pool:
        return vip_pool.LoopbackPool(vip_pool.check(args.vip_pool), names)
    cidr = vip_pool.for_lab(lab.subnet)
    try:
        vip_pool.check(cidr)
    except vip_pool.PoolError as exc:
        raise vip_pool.PoolError(
            '%s (the range follows member lab %s; --vip-pool names '
            'another)' % (exc, lab.subnet)) from None
    return vip_pool.LoopbackPool(cidr, names, derived_from=lab.subnet)


def _start_appliances(args, rec, extra):
    """Start the member lab, the Caddy clusters and the members in the
    lab; returns the multilb configuration that points at the clusters
    and their VIP pool ('' if none)."""
    lab = None
    if args.members:    # first: cheap, and it fails early without root
        lab = rec.starting(MemberLab(subnet=args.member_subnet, detach=True))
        rec.record('member_lab', lab.start())
    pool = None
    if args.caddy_cluster:
        pool = _choose_pool(args, lab)
        rec.state['vip_pool'] = pool.describe()
    clusters = []
    for name, nodes in args.caddy_cluster:
        cluster = rec.starting(CaddyCluster(args.workdir, name, nodes=nodes,
                                            detach=True))
        clusters.append(cluster.start())
        rec.record('caddy_clusters', cluster, key=name)
    devices = []
    for name in args.as3_device:
        device = rec.starting(AS3DeviceProcess(args.workdir, name,
                                               detach=True))
        devices.append(device.start())
        rec.record('as3_devices', device, key=name)
    for i in range(1, args.members + 1):
        member = rec.starting(MemberProcess(args.workdir, f'm{i}',
                                            detach=True, lab=lab))
        rec.record('members', member.start(), key=member.name)
    if not (clusters or devices):
        return ''
    return cluster_conf(clusters, pool, extra, devices)


def up(args):
    workdir = args.workdir
    old = _load(workdir)
    if old and (any(_ours(s, workdir) for s in old['services']) or
                _recorded_lab(old)):
        LOG.error('%s is already up; run down first', workdir)
        return 1
    names = [name for name, _nodes in args.caddy_cluster]
    if len(set(names + args.as3_device)) != len(names + args.as3_device):
        LOG.error('--caddy-cluster and --as3-device names must differ: %s',
                  names + args.as3_device)
        return 2
    if args.vip_pool and not names:
        LOG.error('--vip-pool is the VIP pool of the Caddy clusters: it '
                  'needs --caddy-cluster')
        return 2
    if names and not (args.members or args.vip_pool):
        LOG.error('the Caddy clusters get their VIPs from a loopback pool '
                  'whose /24 follows the member lab\'s: add --members N, '
                  'or name the range with --vip-pool 127.X.Y.0/24')
        return 2
    if args.vip_pool:   # cheap: refuse a range in use before starting
        try:
            vip_pool.check(args.vip_pool)
        except vip_pool.PoolError as exc:
            LOG.error('up failed: %s', exc)
            return 1
    os.makedirs(workdir, exist_ok=True)
    extra = _read_extra_conf(args)
    rec = _Recorder(workdir)
    try:
        clusters = _start_appliances(args, rec, extra)
        if clusters:
            extra = '\n\n'.join(t.rstrip('\n') for t in (extra, clusters)
                                if t) + '\n'
        rec.record('etcd', EtcdServer(workdir, detach=True).start())
        db = MariaDBServer(workdir, detach=True).start()
        rec.record('mariadb', db)
        url = db.create_database(args.db_name, args.db_user, args.db_password)
        rec.state['database_url'] = url
        stack = rec.starting(OctaviaStack(
            workdir, url, provider=args.provider,
            provider_description=args.provider_description,
            provider_agents=args.provider_agents, extra_conf=extra,
            api_count=args.api_count, venv_bin=args.venv_bin,
            debug=args.debug, detach=True))
        rec.record('octavia', stack.start())
    except BaseException as exc:
        if isinstance(exc, LabError):
            LOG.error('up failed: no member lab: %s; stopping what was '
                      'started', exc)
        elif isinstance(exc, vip_pool.PoolError):
            LOG.error('up failed: no VIP pool: %s; stopping what was '
                      'started', exc)
        else:
            LOG.exception('up failed; stopping what was started')
        rec.stop_all()
        if os.path.exists(_state_path(workdir)):
            os.unlink(_state_path(workdir))
        return 1
    print(json.dumps(rec.state, indent=2))
    return 0


def _services(component):
    """``[(Service, url or None)]`` of a started component."""
    if isinstance(component, MemberLab):
        return []   # no process: a namespace, recorded as member_lab
    if isinstance(component, OctaviaStack):
        pairs = [(component.driver_agent, None)] + list(
            zip(component.api_services, component.api_urls))
    elif isinstance(component, CaddyCluster):
        pairs = [(node.service, node.admin_url) for node in component]
    elif isinstance(component, AS3DeviceProcess):
        pairs = [(component.service, component.url)]
    elif isinstance(component, (MemberProcess, EtcdServer)):
        url = getattr(component, 'url', None) or getattr(
            component, 'client_url', None)
        pairs = [(component.service, url)]
    else:
        pairs = [(component.service, None)]
    return [(s, url) for s, url in pairs if s is not None]


def _entry(service, url):
    entry = service.describe()
    if url:
        entry['url'] = url
    return entry


def _recorded_lab(state):
    """The recorded member lab if it still exists (else None)."""
    record = state.get('member_lab')
    return MemberLab.attach(record) if record else None


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
    if state.get('member_lab'):
        lab = _recorded_lab(state)
        if lab is None:
            LOG.info('member lab %s is gone already',
                     state['member_lab']['namespace'])
        else:
            lab.stop()
    if not failed:
        os.unlink(_state_path(workdir))
    return 1 if failed else 0


def status(args):
    state = _load(args.workdir)
    if state is None:
        print('down')
        return 1
    stopped = 0
    if state.get('member_lab'):
        record = state['member_lab']
        present = _recorded_lab(state) is not None
        stopped += not present
        print(f"{'member-lab':24} {record['namespace']:>8} "
              f"{'present' if present else 'absent':8} {record['subnet']}")
    if state.get('vip_pool'):
        pool = state['vip_pool']
        print(f"{'vip-pool':24} {pool['name']:>8} {pool['cidr']} "
              f"(subnet {pool['subnet_id']}; clusters "
              f"{', '.join(pool['clusters'])})")
    for entry in state['services']:
        alive = _ours(entry, args.workdir)
        stopped += not alive
        print(f"{entry['name']:24} {entry['pid']:>8} "
              f"{'running' if alive else 'stopped':8} "
              f"{entry.get('url', '')}".rstrip())
    return EXIT_PARTLY if stopped else 0


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
            p.add_argument('--caddy-cluster', action='append', default=[],
                           type=caddy_cluster_spec, metavar='NAME[:NODES]',
                           help='start a cluster of NODES (default 2) Caddy '
                           'nodes and configure it as multilb cluster NAME '
                           '(repeatable)')
            p.add_argument('--as3-device', action='append', default=[],
                           type=_cluster_name, metavar='NAME',
                           help='start an F5 AS3 device EMULATOR (not a '
                           'BIG-IP) and configure it as multilb cluster '
                           'NAME, backend f5 (repeatable)')
            p.add_argument('--members', type=int, default=0, metavar='N',
                           help='start N member HTTP servers m1..mN in a '
                           'member lab (a network namespace; needs root)')
            p.add_argument('--member-subnet', metavar='CIDR',
                           help='the /24 of 198.18.0.0/15 for the member '
                           'lab (default: the first free one)')
            p.add_argument('--vip-pool', metavar='CIDR',
                           help='the range of 127.0.0.0/8 the Caddy '
                           "clusters' VIPs come from (default: 127.A.X.0/24 "
                           "for the member lab's 198.A.X.0/24)")
    args = parser.parse_args(argv)
    args.workdir = os.path.abspath(args.workdir)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format='%(asctime)s %(levelname)s %(message)s')
    return {'up': up, 'down': down, 'status': status}[args.command](args)


if __name__ == '__main__':
    sys.exit(main())
