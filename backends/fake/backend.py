"""``fake``: an in-memory appliance shipped as a real plugin. FAKE: no traffic.

For tests, benchmarks and no-op runs (tempest API suites). It accepts every
protocol and option Octavia knows, keeps each cluster's load balancers in
process memory and, optionally, mirrors them as JSON files (TLS keys
removed) so that tests and people can see what the "appliance" holds.

Faults are injected from outside without restarting the agent: the file named
by ``fake_fault_file`` is read on every call, for example::

    {"apply": "unavailable", "delete": "rejected", "latency": 2.0,
     "probe": "unavailable", "members_down": ["<member id>", ...],
     "counters": {"<listener id>": {"bytes_in": 10, "total_connections": 1,
                                    "active_connections": 1, ...}}}

``unavailable`` raises :class:`BackendUnavailable` (retried by the agent),
``rejected`` raises :class:`BackendRejected` (ERROR at once); a
``verify`` fault fails the check of a moved load balancer.
``"reject_addresses": ["192.0.2.9", ...]`` makes applies of a graph with a
member on one of those addresses fail with :class:`BackendRejected` naming
those members (as an appliance refusing an address it cannot route);
``"reject_unnamed": true`` leaves the names out (a refusal that does not
say which object is wrong).

With no data plane, a fake cluster observes nothing by default: multilb
then reports the operating statuses Octavia's amphora driver leaves with
no-op backends (what the tempest API suite expects). ``fake_observe_health
= true`` makes it pretend to carry traffic: load balancers, listeners and
pools go ONLINE when applied and members follow the health checks below.
``members_down`` fails the health checks of those members (every other
monitored member passes). ``counters`` are the appliance's own counters of
each listener, as a real appliance keeps them: lowering one simulates a
reboot that reset it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time

from oslo_config import cfg

from backends import base
from backends import exceptions
from backends import types
from multilb import exceptions as multilb_exc

LOG = logging.getLogger(__name__)

SECRET_KEYS = frozenset(('private_key', 'passphrase'))

_FAULTS = {'unavailable': exceptions.BackendUnavailable,
           'rejected': exceptions.BackendRejected}

# cluster name -> {lb_id: graph}; shared by every instance in the process.
_STATE = {}
_STATE_LOCK = threading.Lock()


def _redact(value):
    if isinstance(value, dict):
        return {k: ('***' if k in SECRET_KEYS and v else _redact(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value


class FakeBackend(base.ApplianceBackend):
    """In-memory appliance cluster (FAKE). Supports everything Octavia has."""

    SUPPORTED_LISTENER_PROTOCOLS = base.ALL_LISTENER_PROTOCOLS
    SUPPORTED_POOL_PROTOCOLS = base.ALL_POOL_PROTOCOLS
    SUPPORTED_ALGORITHMS = base.ALL_ALGORITHMS
    SUPPORTED_HEALTH_MONITOR_TYPES = base.ALL_HEALTH_MONITOR_TYPES
    SUPPORTED_SESSION_PERSISTENCE = base.ALL_SESSION_PERSISTENCE
    SUPPORTED_L7_ACTIONS = base.ALL_L7_ACTIONS
    SUPPORTED_L7_RULE_TYPES = base.ALL_L7_RULE_TYPES

    @classmethod
    def get_config_options(cls):
        return [
            cfg.FloatOpt('fake_latency', default=0.0, min=0.0,
                         help='Seconds every apply and delete takes.'),
            cfg.StrOpt('fake_fault_file', default='',
                       help='JSON file read on every call to inject faults '
                            '(see backends.fake.backend). Empty: no faults.'),
            cfg.BoolOpt('fake_observe_health', default=False,
                        help='Pretend to carry traffic: report load '
                             'balancers, listeners and pools ONLINE and '
                             'members by their health checks (see '
                             'members_down in the fault file). Default: no '
                             'data plane, operating statuses stay as the '
                             'Octavia API set them.'),
            cfg.StrOpt('fake_state_dir', default='',
                       help='If set, each load balancer the fake cluster '
                            'holds is mirrored as '
                            '<dir>/<cluster>/<lb id>.json (TLS keys '
                            'removed).'),
        ]

    @classmethod
    def check_config(cls, options):
        state_dir = options.get('fake_state_dir')
        if state_dir and not os.path.isabs(state_dir):
            raise multilb_exc.ConfigError(
                'fake_state_dir: %r must be an absolute path' % state_dir)

    def __init__(self, cluster):
        super().__init__(cluster)
        self._opts = cluster.options
        self._seen = {}
        with _STATE_LOCK:
            self._lbs = _STATE.setdefault(cluster.name, {})

    def _faults(self):
        path = self._opts.get('fake_fault_file')
        if not path or not os.path.exists(path):
            return {}
        try:
            with open(path) as f:
                return json.load(f) or {}
        except (OSError, ValueError):
            LOG.warning('Cluster %s: unreadable fault file %s',
                        self.cluster.name, path)
            return {}

    def _act(self, operation, lb_id):
        """The appliance round trip: through the breaker when there is one
        (so injected faults open it as a real cluster's would)."""
        if self.breaker is not None:
            return self.breaker.guard(self._round_trip, operation, lb_id)
        return self._round_trip(operation, lb_id)

    def _round_trip(self, operation, lb_id):
        faults = self._faults()
        delay = float(faults.get('latency', self._opts.get('fake_latency')
                                 or 0.0))
        if delay:
            time.sleep(delay)
        fault = faults.get(operation)
        if fault in _FAULTS:
            raise _FAULTS[fault]('fake cluster %s: injected %s fault on %s '
                                 'of load balancer %s' % (
                                     self.cluster.name, fault, operation,
                                     lb_id))

    def _mirror_path(self, lb_id):
        state_dir = self._opts.get('fake_state_dir')
        if not state_dir:
            return None
        return os.path.join(state_dir, self.cluster.name, lb_id + '.json')

    def apply_loadbalancer(self, graph):
        lb_id = graph['loadbalancer_id']
        self._act('apply', lb_id)
        self._refuse_addresses(graph)
        with _STATE_LOCK:
            self._lbs[lb_id] = graph
        path = self._mirror_path(lb_id)
        if path:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = path + '.tmp'
            with open(tmp, 'w') as f:
                json.dump(_redact(graph), f, indent=1, sort_keys=True)
            os.replace(tmp, path)

    def _refuse_addresses(self, graph):
        faults = self._faults()
        refused = set(faults.get('reject_addresses') or ())
        members = [m for p in graph.get('pools') or []
                   for m in p.get('members') or []
                   if m.get('address') in refused]
        if members:
            raise exceptions.BackendRejected(
                'fake cluster %s: injected refusal of member address %s' % (
                    self.cluster.name, ', '.join(
                        sorted({m['address'] for m in members}))),
                object_ids=() if faults.get('reject_unnamed') else [
                    m['member_id'] for m in members])

    def verify_loadbalancer(self, graph):
        lb_id = graph['loadbalancer_id']
        self._act('verify', lb_id)
        with _STATE_LOCK:
            held = self._lbs.get(lb_id)
        if held != graph:
            raise exceptions.BackendUnavailable(
                'fake cluster %s: %s load balancer %s as applied' % (
                    self.cluster.name, 'holds a different' if held
                    else 'does not hold', lb_id))

    def delete_loadbalancer(self, loadbalancer_id):
        self._act('delete', loadbalancer_id)
        with _STATE_LOCK:
            self._lbs.pop(loadbalancer_id, None)
        path = self._mirror_path(loadbalancer_id)
        if path and os.path.exists(path):
            os.unlink(path)

    def probe(self):
        if self._faults().get('probe') in _FAULTS:
            return types.ClusterHealth(reachable=False,
                                       detail='injected probe fault')
        if self.breaker is not None:
            try:
                self.breaker.guard(lambda: None)
            except exceptions.BackendUnavailable as exc:
                return types.ClusterHealth(reachable=False, detail=str(exc))
        return types.ClusterHealth(reachable=True, detail='fake cluster')

    def list_loadbalancer_ids(self):
        with _STATE_LOCK:
            return set(self._lbs)

    def observes_health(self):
        return bool(self._opts.get('fake_observe_health'))

    def member_health(self, graphs):
        down = set(self._faults().get('members_down') or ())
        found = {}
        for graph in graphs.values():
            for pool in graph.get('pools', []):
                monitor = pool.get('healthmonitor') or {}
                if not monitor or not monitor.get('admin_state_up', True):
                    continue
                for member in pool.get('members', []):
                    found[member['member_id']] = (
                        member['member_id'] not in down)
        return found

    def collect_statistics(self):
        """Increments of the fault file's ``counters`` since the last call
        (a counter that went down was reset: its value is the increment)."""
        with _STATE_LOCK:
            held = {listener['listener_id']
                    for graph in self._lbs.values()
                    for listener in graph.get('listeners', [])}
        found = {}
        counters = self._faults().get('counters') or {}
        for listener_id, values in counters.items():
            if listener_id not in held:
                continue
            last = self._seen.get(listener_id, {})
            step = {}
            for field in ('bytes_in', 'bytes_out', 'request_errors',
                          'total_connections'):
                now, before = int(values.get(field, 0)), last.get(field, 0)
                step[field] = now - before if now >= before else now
            self._seen[listener_id] = dict(values)
            found[listener_id] = types.ListenerStats(
                listener_id=listener_id,
                active_connections=int(values.get('active_connections', 0)),
                **step)
        return found
