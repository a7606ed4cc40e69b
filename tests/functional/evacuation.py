"""An evacuation of a real Caddy cluster under real traffic, with a control
phase of plain config changes under the same traffic: shared by
tests/functional/test_evacuation.py and benchmarks/evacuation.py.

Two Caddy clusters, ``src`` and ``dst``, answer on 127.0.0.1 (SO_REUSEPORT:
during a move both bind each listener, as a VIP handover lets both serve
it); every response names the cluster that served it (``served_by_header``).
Load balancers are created on ``src`` through the real Octavia API; client
threads send requests to all of them (half on a new connection per request,
half on kept-alive connections). Then:

* **control**: one member weight change on every load balancer (each one a
  config load of every ``src`` node), under the traffic;
* **evacuation**: ``multilb-manage cluster evacuate src`` (each move loads
  every node of both clusters about once).

Caddy loads a config by binding new sockets and closing the old ones; the
figures compare the requests each phase failed per node config load.
"""

import collections
import http.client
import json
import os
import subprocess
import sys
import threading
import time

from tests.functional import caddy_lab
from tests.functional import fleet as fleet_mod
from tests.functional.helpers import manage_json, wait_lb
from tools.localstack import ports

CLUSTERS = {'src': 2, 'dst': 2}
HEADER = 'X-Served-By'
OPTIONS = {name: {'served_by_header': HEADER} for name in CLUSTERS}
MIGRATE = '/proc/sys/net/ipv4/tcp_migrate_req'
RELOADED = 'autosaved config'


class Client(threading.Thread):
    """Requests to every port in turn; records who served each one."""

    def __init__(self, ports_, keep_alive):
        super().__init__(daemon=True)
        self.ports = ports_
        self.keep_alive = keep_alive
        self.stop = threading.Event()
        self.served = []      # (monotonic time, port, cluster)
        self.failures = []    # (monotonic time, port, keep_alive, error)
        self.retried = 0      # kept-alive connections a server closed
        self._conns = {}

    def _request(self, port):
        conn = self._conns.get(port) if self.keep_alive else None
        reused = conn is not None
        if conn is None:
            conn = http.client.HTTPConnection('127.0.0.1', port, timeout=5)
        try:
            conn.request('GET', '/', headers={} if self.keep_alive
                         else {'Connection': 'close'})
            response = conn.getresponse()
            response.read()
        except (http.client.RemoteDisconnected, ConnectionResetError,
                BrokenPipeError):
            conn.close()
            self._conns.pop(port, None)
            if not reused:
                raise
            # RFC 9112 9.3.1: a GET on a kept-alive connection the server
            # closed meanwhile is retried on a new connection
            self.retried += 1
            return self._request(port)
        if self.keep_alive and not response.will_close:
            self._conns[port] = conn
        else:
            conn.close()
            self._conns.pop(port, None)
        if response.status != 200:
            raise RuntimeError('HTTP %d' % response.status)
        return response.getheader(HEADER)

    def run(self):
        while not self.stop.is_set():
            for port in self.ports:
                try:
                    cluster = self._request(port)
                    self.served.append((time.monotonic(), port, cluster))
                except Exception as exc:  # noqa: B902 - counted
                    self.failures.append((time.monotonic(), port,
                                          self.keep_alive, repr(exc)))


def migrate_requests(value):
    """Set ``net.ipv4.tcp_migrate_req``; return the previous value (None
    when the kernel has no such setting)."""
    if not os.path.exists(MIGRATE):
        return None
    with open(MIGRATE) as f:
        before = f.read().strip()
    with open(MIGRATE, 'w') as f:
        f.write(str(value))
    return before


def loads(nodes):
    """Config loads each node has logged so far, summed."""
    total = 0
    for node in nodes:
        with open(node.log_path, errors='replace') as f:
            total += sum(RELOADED in line for line in f)
    return total


def octavia_view(conn, lb_ids):
    """``{(type, id): (updated_at, provisioning, operating)}``."""
    lbc, found = conn.load_balancer, {}
    for lb_id in lb_ids:
        lb = lbc.get_load_balancer(lb_id)
        found[('lb', lb_id)] = (lb.updated_at, lb.provisioning_status,
                                lb.operating_status)
        for ref in lb.listeners:
            li = lbc.get_listener(ref['id'])
            found[('listener', li.id)] = (
                li.updated_at, li.provisioning_status, li.operating_status)
        for ref in lb.pools:
            pool = lbc.get_pool(ref['id'])
            found[('pool', pool.id)] = (
                pool.updated_at, pool.provisioning_status,
                pool.operating_status)
            for member in lbc.members(pool.id):
                found[('member', member.id)] = (
                    member.updated_at, member.provisioning_status,
                    member.operating_status)
    return found


def _manage(fleet, *argv, timeout=600):
    script = os.path.join(os.path.dirname(sys.executable), 'multilb-manage')
    command = [script] if os.path.exists(script) else [
        sys.executable, '-m', 'multilb.cmd.manage']
    return subprocess.run(
        command + ['--config-file', fleet.octavia.conf_path] + list(argv),
        capture_output=True, text=True, timeout=timeout)


def create_on(fleet, conn, members, count, cluster='src', prefix='ev'):
    """``{lb id: port}`` of ``count`` ACTIVE load balancers on ``cluster``
    (the other cluster is drained meanwhile)."""
    others = [name for name in CLUSTERS if name != cluster]
    for name in [cluster] + others:
        manage_json(fleet, 'cluster',
                    'drain' if name in others else 'undrain', name)
    lb_ports = {}
    for i in range(count):
        port = ports.free_port()
        while port in lb_ports.values():   # free until its LB binds it
            port = ports.free_port()
        lb = conn.load_balancer.create_load_balancer(
            name='%s%d' % (prefix, i), project_id='proj-evacuate',
            vip_subnet_id=fleet_mod.VIP_SUBNET,
            listeners=[caddy_lab.http_listener(port, members.members)])
        lb_ports[lb.id] = port
    for lb_id in lb_ports:
        wait_lb(conn, lb_id, wait=300)
    for name in others:
        manage_json(fleet, 'cluster', 'undrain', name)
    return lb_ports


def _window(clients, start, end):
    served = [s for c in clients for s in c.served if start <= s[0] < end]
    failed = [f for c in clients for f in c.failures if start <= f[0] < end]
    return served, failed


def _control(conn, lb_ids):
    """One member weight change per load balancer, all waited ACTIVE."""
    lbc = conn.load_balancer
    for lb_id in lb_ids:
        pool_id = lbc.get_load_balancer(lb_id).pools[0]['id']
        member = next(iter(lbc.members(pool_id)))
        lbc.update_member(member, pool_id, weight=2)
    for lb_id in lb_ids:
        wait_lb(conn, lb_id, wait=300)


def run(fleet, conn, nodes, lb_ports, clients=8, concurrency=4,
        quiet=2.0):
    """Traffic, control phase, evacuation; returns the figures (a dict)."""
    src, dst = nodes['src'], nodes['dst']
    all_ports = sorted(lb_ports.values())
    threads = [Client(all_ports[i % 2::2], keep_alive=bool(i % 2))
               for i in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(quiet)
    control_loads = loads(src) + loads(dst)
    control_start = time.monotonic()
    _control(conn, lb_ports)
    time.sleep(quiet)
    control_end = time.monotonic()
    control_loads = loads(src) + loads(dst) - control_loads
    # ONLINE and ACTIVE again; the view that must not change
    before = octavia_view(conn, lb_ports)
    evac_loads = loads(src) + loads(dst)
    evac_start = time.monotonic()
    done = _manage(fleet, 'cluster', 'evacuate', 'src', '--concurrency',
                   str(concurrency), '--format', 'json', '--timeout', '300')
    evac_end = time.monotonic()
    time.sleep(quiet)
    evac_loads = loads(src) + loads(dst) - evac_loads
    for thread in threads:
        thread.stop.set()
    for thread in threads:
        thread.join(30)
    ended = time.monotonic()
    summary = json.loads(done.stdout) if done.returncode == 0 else {}
    served = sorted(s for t in threads for s in t.served)
    failures = sorted(f for t in threads for f in t.failures)
    c_served, c_failed = _window(threads, control_start, control_end)
    e_served, e_failed = _window(threads, evac_start, evac_end + quiet)
    return {
        'evacuate': done, 'summary': summary, 'before': before,
        'after': octavia_view(conn, lb_ports),
        'served': served, 'failures': failures,
        'seconds': ended - started, 'rate': len(served) / (ended - started),
        'retried': sum(t.retried for t in threads),
        'evacuated_at': evac_end,
        'control': {'requests': len(c_served), 'failed': len(c_failed),
                    'loads': control_loads,
                    'seconds': control_end - control_start},
        'evacuation': {'requests': len(e_served), 'failed': len(e_failed),
                       'loads': evac_loads,
                       'seconds': evac_end - evac_start,
                       'served_by': collections.Counter(
                           s[2] for s in e_served)},
    }


def report(figures, lbs, migrate):
    """The figures, as lines of text."""
    summary = figures['summary']
    lines = ['%d load balancers, %d requests in %.1fs (%.0f/s), %d failed, '
             '%d kept-alive connections closed by a server and retried; '
             'tcp_migrate_req=%s' % (
                 lbs, len(figures['served']), figures['seconds'],
                 figures['rate'], len(figures['failures']),
                 figures['retried'], migrate)]
    for phase in ('control', 'evacuation'):
        f = figures[phase]
        lines.append('  %-10s %6.1fs %7d requests %3d failed %4d node config '
                     'loads: %.2f failed per 100 loads' % (
                         phase, f['seconds'], f['requests'], f['failed'],
                         f['loads'], 100.0 * f['failed'] / max(1, f['loads'])))
    if summary:
        moves = [r['seconds'] for r in summary['loadbalancers']]
        lines.append('  moves: %d moved, %d failed; move time p50 %.2fs '
                     'p99 %.2fs max %.2fs' % (
                         summary['moved'], summary['failed'],
                         summary['move_seconds_p50'],
                         summary['move_seconds_p99'], max(moves)))
    return '\n'.join(lines)
