"""One small handle per backend: the appliance a started backend drives,
and the few things the contract suite does to it or reads from it
without going through the backend.

Every handle has:

* ``name``: the backend's entry point name;
* ``backend_class`` and ``options()``: the backend options of a cluster
  of this appliance (over the backend's own defaults);
* ``resync_options``: options that make the backend look for an
  appliance that restarted empty at every probe (its check interval set
  small);
* ``holds()``: ``{lb id: frozenset(listener ids)}`` the appliance serves,
  read from the appliance itself (every node agreeing);
* ``snapshot(lb_id=None)``: the appliance's own content (of one load
  balancer), comparable and searchable as JSON text;
* ``down()`` / ``up()``: no node answers / back as before;
  ``down_calls``: the backend calls that then fail (of ``apply``,
  ``delete``, ``list``, ``health``, ``statistics``);
* ``hang()``: every node accepts connections and never answers, until
  ``up()`` (None where the appliance cannot hang);
* ``restart_empty``: a method, or None where the appliance cannot
  restart apart from the backend (``fake``: its state is the process);
* ``add_traffic(graph, listener_id)``: makes the appliance count traffic
  of that listener and returns the ListenerStats fields the next
  ``collect_statistics`` must report, or None where that cannot be made
  to happen here;
* ``fail_member(graph, member)``: makes the appliance's health checks
  fail that member (True), or False where they cannot be made to fail in
  time here;
* ``sessions()``: how many login sessions the appliance keeps open for
  the backend's user, or None where it has no such thing;
* ``reset(cluster)``: an empty, answering appliance for the cluster
  named ``cluster`` (before each test).
"""

import copy
import http.client
import importlib
import json
import os
import signal

from backends.caddy import backend as caddy_backend
from backends.fake import backend as fake_backend
from tools.localstack import caddy as ls_caddy

SEPARATOR = '--'          # Caddy server keys: <lb id>--<listener id>


class FakeDevice:
    """The fake backend's in-process appliance, seen through its JSON
    mirror (fake_state_dir) and driven by its fault file."""

    name = 'fake'
    backend_class = fake_backend.FakeBackend
    resync_options = {}
    down_calls = ('apply', 'delete')        # the fault file's operations
    hang = None
    restart_empty = None

    def __init__(self, workdir):
        self.dir = os.path.join(str(workdir), 'appliance')
        self.fault_file = os.path.join(str(workdir), 'faults.json')
        self.cluster = None
        self.counters = {}

    def start(self):
        return self

    def stop(self):
        pass

    def options(self):
        return {'fake_state_dir': self.dir,
                'fake_fault_file': self.fault_file,
                'fake_observe_health': True}

    def reset(self, cluster):
        self.cluster, self.counters = cluster, {}
        self._faults({})

    def _faults(self, faults):
        with open(self.fault_file, 'w') as f:
            json.dump(faults, f)

    def _fault(self, **values):
        with open(self.fault_file) as f:
            faults = json.load(f)
        faults.update(values)
        self._faults(faults)

    def _mirrors(self):
        where = os.path.join(self.dir, self.cluster)
        if not os.path.isdir(where):
            return {}
        found = {}
        for name in sorted(os.listdir(where)):
            if name.endswith('.json'):
                with open(os.path.join(where, name)) as f:
                    found[name[:-len('.json')]] = json.load(f)
        return found

    def holds(self):
        return {lb: frozenset(li['listener_id'] for li in graph['listeners'])
                for lb, graph in self._mirrors().items()}

    def snapshot(self, lb_id=None):
        held = self._mirrors()
        return held if lb_id is None else held.get(lb_id)

    def down(self):
        self._fault(probe='unavailable', apply='unavailable',
                    delete='unavailable')

    def up(self):
        self._fault(probe=None, apply=None, delete=None)

    def add_traffic(self, graph, listener_id):
        now = self.counters.setdefault(listener_id, dict.fromkeys(
            ('bytes_in', 'bytes_out', 'request_errors', 'total_connections'),
            0))
        step = {'bytes_in': 100, 'bytes_out': 250, 'request_errors': 1,
                'total_connections': 4}
        for key, value in step.items():
            now[key] += value
        now['active_connections'] = 2
        self._fault(counters=self.counters)
        return dict(step, active_connections=2)

    def fail_member(self, graph, member):
        self._fault(members_down=[member['member_id']])
        return True

    def sessions(self):
        return None


class CaddyDevice:
    """Two real Caddy nodes (tools/localstack/caddy.py) on loopback, their
    admin APIs on unix sockets; listeners bound to 127.0.0.1."""

    name = 'caddy'
    backend_class = caddy_backend.CaddyBackend
    resync_options = {'divergence_check_interval': 0.5}
    down_calls = ('apply', 'delete', 'list', 'health', 'statistics')
    REQUESTS = 3

    def __init__(self, workdir):
        self.nodes = ls_caddy.CaddyCluster(str(workdir), 'cmp', nodes=2)

    def start(self):
        self.nodes.start()
        return self

    def stop(self):
        self.nodes.stop()

    def options(self):
        return {'endpoints': self.nodes.endpoints,
                'listen_address': '127.0.0.1', 'probe_timeout': 0.5,
                'connect_timeout': 1.0, 'read_timeout': 5.0}

    def reset(self, cluster):
        for node in self.nodes:
            if node.alive():
                node.kill(signal.SIGCONT)     # a test that froze it failed
            else:
                node.start()
            status, answer = ls_caddy.admin_request(
                node.admin_url, 'POST', '/load', node.initial_config())
            assert status == 200, answer

    def _servers(self, node):
        servers = ls_caddy.admin_get(
            node.admin_url, '/config/apps/http/servers') or {}
        return {key: value for key, value in servers.items()
                if SEPARATOR in key}

    def snapshot(self, lb_id=None):
        """Each node's servers (of ``lb_id``)."""
        return [{key: value for key, value in self._servers(node).items()
                 if lb_id in (None, key.split(SEPARATOR, 1)[0])}
                for node in self.nodes]

    def holds(self):
        views = []
        for servers in self.snapshot():
            held = {}
            for key in servers:
                lb, _sep, listener = key.partition(SEPARATOR)
                held.setdefault(lb, set()).add(listener)
            views.append({lb: frozenset(ids) for lb, ids in held.items()})
        assert all(view == views[0] for view in views), views
        return views[0]

    def down(self):
        self.nodes.stop()

    def hang(self):
        for node in self.nodes:
            node.kill(signal.SIGSTOP)

    def up(self):
        for node in self.nodes:
            if node.alive():
                node.kill(signal.SIGCONT)
            else:
                node.start(empty=False)

    def restart_empty(self):
        """One node loses its configuration (the other keeps serving)."""
        self.nodes[0].restart(empty=True)

    def add_traffic(self, graph, listener_id):
        """GETs of the REJECT policy's path (answered by the nodes
        themselves: the members do not exist)."""
        listener = next(li for li in graph['listeners']
                        if li['listener_id'] == listener_id)
        for _ in range(self.REQUESTS):
            conn = http.client.HTTPConnection(
                '127.0.0.1', listener['protocol_port'], timeout=5)
            try:
                conn.request('GET', '/admin')
                response = conn.getresponse()
                response.read()
                assert response.status == 403, response.status
            finally:
                conn.close()
        return {'total_connections': self.REQUESTS}

    def fail_member(self, graph, member):
        return False     # Caddy refreshes its health figures every 10 s

    def sessions(self):
        return None      # the admin API has no logins


class F5Device:
    """The AS3 device emulator (tools/localstack/as3_device.py)."""

    name = 'f5'
    resync_options = {'divergence_check_interval': 0.5}
    down_calls = ('apply', 'delete', 'list', 'health', 'statistics')

    def __init__(self, workdir):
        from backends.f5 import names
        from tools.localstack import as3_device
        self.backend_class = backend_class('f5')
        self.names = names
        self.device = as3_device.AS3Device()
        self.totals = {}

    def start(self):
        self.device.start()
        return self

    def stop(self):
        self.device.stop()

    def options(self):
        return {'endpoints': [self.device.url], 'username': 'admin',
                'password': 'admin', 'route_domains': {},
                'probe_timeout': 0.5}

    def reset(self, cluster):
        self.device.up()
        self.device.restart_empty()
        with self.device.lock:
            self.device.stats.clear()
            self.device.tokens.clear()    # those of the stopped instances
        self.totals = {}

    def _apps(self):
        with self.device.lock:
            tenants = copy.deepcopy(self.device.tenants)
        return {name: app for tenant in tenants.values()
                for name, app in tenant.items()
                if isinstance(app, dict) and app.get('class') == 'Application'}

    def snapshot(self, lb_id=None):
        apps = self._apps()
        if lb_id is None:
            return apps
        return apps.get(self.names.application(lb_id))

    def holds(self):
        return {name[len('lb_'):]: frozenset(
            key[len('vs_'):] for key, obj in app.items()
            if isinstance(obj, dict)
            and obj.get('class', '').startswith('Service_'))
            for name, app in self._apps().items() if name.startswith('lb_')}

    def down(self):
        self.device.down()

    def hang(self):
        self.device.down(hang=True)

    def up(self):
        self.device.up()

    def restart_empty(self):
        self.device.restart_empty()

    def _path(self, graph, name):
        return '/%s/%s/%s' % (self.names.tenant_of(graph),
                              self.names.application(
                                  graph['loadbalancer_id']), name)

    def add_traffic(self, graph, listener_id):
        path = self._path(graph, 'vs_' + listener_id)
        total = self.totals.setdefault(path, dict.fromkeys(
            ('bits_in', 'bits_out', 'tot_conns'), 0))
        total['bits_in'] += 8 * 100
        total['bits_out'] += 8 * 250
        total['tot_conns'] += 4
        self.device.set_stats(path, cur_conns=2, **total)
        return {'bytes_in': 100, 'bytes_out': 250, 'total_connections': 4,
                'active_connections': 2}

    def fail_member(self, graph, member):
        self.device.set_stats(
            self._path(graph, 'pool_' + member['pool_id']),
            member='%s:%s' % (member['address'], member['protocol_port']),
            monitor='down', availability='offline')
        return True

    def sessions(self):
        """Live tokens of the user (a BIG-IP user may hold 100)."""
        with self.device.lock:
            now = self.device.now()
            return sum(1 for item in self.device.tokens.values()
                       if item['user'] == 'admin'
                       and item['start'] + item['timeout'] > now)


DEVICES = {'fake': FakeDevice, 'caddy': CaddyDevice, 'f5': F5Device}
"""Backend entry point name -> handle class."""

CLASSES = {'fake': ('backends.fake.backend', 'FakeBackend'),
           'caddy': ('backends.caddy.backend', 'CaddyBackend'),
           'f5': ('backends.f5.backend', 'F5Backend')}
"""Backend entry point name -> (module, class): the entry points of
setup.cfg, read here so that a backend being written is tested before
the editable install registers it."""


def backend_class(name):
    module, cls = CLASSES[name]
    return getattr(importlib.import_module(module), cls)
