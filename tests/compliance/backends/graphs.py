"""Graphs for the backend contract suite.

Each load balancer is the unit tests' sample one (:func:`tests.unit.
fixtures.lb_graph`: an HTTP listener with two L7 policies, a ROUND_ROBIN
pool of two members with an HTTP health monitor, a LEAST_CONNECTIONS pool
of one member), made fit for every backend and for several load balancers
on one appliance:

* every object id becomes a UUID of its own, derived from the load
  balancer's id (Octavia ids are UUIDs; two load balancers never share
  one);
* the TERMINATED_HTTPS listener becomes a second HTTP listener (its PEM
  text is fake, which a real node refuses), whose default pool is the
  LEAST_CONNECTIONS one;
* the listeners get free loopback ports (a Caddy node binds them) and
  the load balancer a VIP of its own.

Every load balancer is of one project and one VIP network (F5: one AS3
tenant), so that "apply does not touch another load balancer" is tested
where backends share the most.
"""

import copy
import itertools
import threading
import uuid

from tests.unit import fixtures as fx
from tools.localstack import ports as ls_ports

PROJECT = '0a1b2c3d4e5f60718293a4b5c6d7e8f9'
NETWORK = '7d3f6a2e-2b1c-4f5e-9a8b-1c2d3e4f5a6b'

# Roles of the sample load balancer's objects (tests.unit.fixtures).
HTTP, SECOND = fx.L_HTTP, fx.L_TLS        # listeners
WEB, API = fx.POOL_WEB, fx.POOL_API      # pools; WEB is monitored
M1, M2, M3 = fx.M1, fx.M2, fx.M3          # M1, M2 in WEB; M3 in API
REJECT = fx.POL_REJECT                    # rule: path /admin
M2_ADDRESS = '192.0.2.11'

_given = set()       # ports handed out by this process
_lock = threading.Lock()
_vips = itertools.count(1)


def _ports(count):
    with _lock:
        while True:
            found = ls_ports.free_ports(count)
            if not _given & set(found):
                _given.update(found)
                return found


def object_id(lb_id, role):
    """The id of the object playing ``role`` (a fixtures id) in
    ``lb_id``'s graph."""
    return str(uuid.uuid5(uuid.UUID(lb_id), role))


def _renamed(value, names):
    if isinstance(value, dict):
        return {k: _renamed(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v, names) for v in value]
    if isinstance(value, str):
        return names.get(value, value)
    return value


def new_lb():
    """A load balancer's graph with a new id (see the module doc)."""
    lb_id = str(uuid.uuid4())
    names = {role: object_id(lb_id, role) for role in fx.ALL_IDS}
    names.update({fx.LB: lb_id, fx.PROJECT: PROJECT})
    graph = _renamed(fx.lb_graph(vip_network_id=NETWORK, project_id=PROJECT,
                                 vip_address='203.0.113.%d' % (
                                     next(_vips) % 250 + 1)), names)
    first, second = graph['listeners']
    first['protocol_port'], second['protocol_port'] = _ports(2)
    second.update(protocol='HTTP', default_pool_id=names[API],
                  default_tls_container_ref=None,
                  default_tls_container_data=None,
                  sni_container_refs=None, sni_container_data=None)
    return graph


def lb_id(graph):
    return graph['loadbalancer_id']


def listener_ids(graph):
    return frozenset(li['listener_id'] for li in graph['listeners'])


def find(graph, role):
    """The object playing ``role`` (listener, pool or member)."""
    wanted = object_id(graph['loadbalancer_id'], role)
    for listener in graph['listeners']:
        if listener['listener_id'] == wanted:
            return listener
    for pool in graph['pools']:
        if pool['pool_id'] == wanted:
            return pool
        for member in pool['members']:
            if member['member_id'] == wanted:
                return member
    raise KeyError(role)


def trimmed(graph):
    """``graph`` without its second listener, member M2, the REJECT L7
    policy and the health monitor (what a later apply must prune)."""
    lb = graph['loadbalancer_id']
    gone = {object_id(lb, role) for role in (SECOND, M2, REJECT)}
    out = copy.deepcopy(graph)
    out['listeners'] = [li for li in out['listeners']
                        if li['listener_id'] not in gone]
    for listener in out['listeners']:
        listener['l7policies'] = [p for p in listener['l7policies']
                                  if p['l7policy_id'] not in gone]
    for pool in out['pools']:
        pool['members'] = [m for m in pool['members']
                           if m['member_id'] not in gone]
        pool['healthmonitor'] = None
    return out
