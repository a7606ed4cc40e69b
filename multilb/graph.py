"""Pure functions over a load balancer graph (octavia-lib's dict shape).

:func:`from_octavia` turns what ``DriverLibrary.get_loadbalancer`` returns
(a model whose nested children are plain dicts, Unset rendered as None) into
the plain dict described in :mod:`backends.base`; the other helpers walk,
prune and search that dict. Nothing here logs: graphs carry TLS keys.
"""

from __future__ import annotations

import copy

from octavia_lib.api.drivers import data_models

# object type -> its id field
ID_FIELDS = {
    'loadbalancer': 'loadbalancer_id', 'listener': 'listener_id',
    'pool': 'pool_id', 'member': 'member_id',
    'healthmonitor': 'healthmonitor_id', 'l7policy': 'l7policy_id',
    'l7rule': 'l7rule_id',
}

# object type -> key of the Octavia status dict
STATUS_KEYS = {
    'loadbalancer': 'loadbalancers', 'listener': 'listeners',
    'pool': 'pools', 'member': 'members', 'healthmonitor': 'healthmonitors',
    'l7policy': 'l7policies', 'l7rule': 'l7rules',
}


def to_plain(value):
    """Octavia models, lists and dicts → JSON-like data; Unset → None."""
    if isinstance(value, data_models.BaseDataModel):
        value = {k: v for k, v in vars(value).items()
                 if not k.startswith('_')}
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, data_models.UnsetType):
        return None
    return value


def from_octavia(loadbalancer):
    """Normalise a ``get_loadbalancer`` result into a graph dict."""
    graph = to_plain(loadbalancer)
    graph['listeners'] = [_listener(li) for li in graph.get('listeners') or []]
    pools = []
    for pool in graph.get('pools') or []:
        pool = dict(pool)
        pool['members'] = list(pool.get('members') or [])
        pool['healthmonitor'] = pool.get('healthmonitor') or None
        pools.append(pool)
    graph['pools'] = pools
    return graph


def _listener(listener):
    listener = dict(listener)
    listener.pop('default_pool', None)   # a partial copy; pools[] is complete
    policies = []
    for policy in listener.get('l7policies') or []:
        policy = dict(policy)
        policy.pop('redirect_pool', None)
        policy['rules'] = list(policy.get('rules') or [])
        policies.append(policy)
    listener['l7policies'] = policies
    return listener


def walk(graph):
    """Yield ``(type, id, obj, parent_id)`` for every object, LB first."""
    yield 'loadbalancer', graph['loadbalancer_id'], graph, None
    for listener in graph.get('listeners', []):
        yield 'listener', listener['listener_id'], listener, \
            graph['loadbalancer_id']
        for policy in listener.get('l7policies', []):
            yield 'l7policy', policy['l7policy_id'], policy, \
                listener['listener_id']
            for rule in policy.get('rules', []):
                yield 'l7rule', rule['l7rule_id'], rule, policy['l7policy_id']
    for pool in graph.get('pools', []):
        yield 'pool', pool['pool_id'], pool, graph['loadbalancer_id']
        for member in pool.get('members', []):
            yield 'member', member['member_id'], member, pool['pool_id']
        hm = pool.get('healthmonitor')
        if hm:
            yield 'healthmonitor', hm['healthmonitor_id'], hm, pool['pool_id']


def checked_objects(graph):
    """``((type, fields), ...)`` of every object but the load balancer,
    with the fields that are set: what
    :meth:`backends.base.ApplianceBackend.check_supported` is given."""
    return tuple((otype, {k: v for k, v in obj.items() if v is not None})
                 for otype, _oid, obj, _parent in walk(graph)
                 if otype != 'loadbalancer')


def object_ids(graph):
    """``{object_id: type}`` of every object in the graph."""
    return {oid: otype for otype, oid, _obj, _parent in walk(graph)}


def find(graph, object_id):
    """The object with this id, or None."""
    for _otype, oid, obj, _parent in walk(graph):
        if oid == object_id:
            return obj
    return None


def descendants(graph, object_id):
    """``{id: type}`` of everything under ``object_id`` (not itself)."""
    parents = {oid: parent for _t, oid, _o, parent in walk(graph)}
    types = object_ids(graph)
    found = {}
    for oid in types:
        cursor = parents.get(oid)
        while cursor is not None:
            if cursor == object_id:
                found[oid] = types[oid]
                break
            cursor = parents.get(cursor)
    return found


def pool_listener_ids(graph, pool_id):
    """Listeners Octavia locks for an operation on this pool.

    As Octavia's ``Pool.listeners``: listeners whose default pool it is, and
    listeners of enabled L7 policies with rules that redirect to it.
    """
    found = []
    for listener in graph.get('listeners', []):
        uses = listener.get('default_pool_id') == pool_id or any(
            p.get('redirect_pool_id') == pool_id and p.get('rules')
            and p.get('admin_state_up', True)
            for p in listener.get('l7policies', []))
        if uses:
            found.append(listener['listener_id'])
    return found


def parent_of(graph, object_id):
    for _otype, oid, _obj, parent in walk(graph):
        if oid == object_id:
            return parent
    return None


def prune(graph, object_ids_to_drop):
    """A deep copy of ``graph`` without the given objects (and below them)."""
    drop = set(object_ids_to_drop)
    pruned = copy.deepcopy(graph)
    pruned['listeners'] = [li for li in pruned['listeners']
                           if li['listener_id'] not in drop]
    for listener in pruned['listeners']:
        listener['l7policies'] = [p for p in listener['l7policies']
                                  if p['l7policy_id'] not in drop]
        for policy in listener['l7policies']:
            policy['rules'] = [r for r in policy['rules']
                               if r['l7rule_id'] not in drop]
        if listener.get('default_pool_id') in drop:
            listener['default_pool_id'] = None
    pruned['pools'] = [p for p in pruned['pools'] if p['pool_id'] not in drop]
    for pool in pruned['pools']:
        pool['members'] = [m for m in pool['members']
                           if m['member_id'] not in drop]
        hm = pool.get('healthmonitor')
        if hm and hm['healthmonitor_id'] in drop:
            pool['healthmonitor'] = None
    return pruned


def pool_members(graph):
    """``{pool_id: [member ids]}``: multilb's record of each pool's members."""
    return {p['pool_id']: sorted(m['member_id'] for m in p['members'])
            for p in graph.get('pools', [])}


def shows_intent(graph, intent):
    """True once Octavia's committed ``graph`` shows what ``intent`` says
    (a created object exists; updated fields carry the new values)."""
    op, oid = intent['op'], intent['id']
    if op == 'create':
        return find(graph, oid) is not None
    if op == 'batch':
        return shows_members(graph, intent) and all(
            _carries(find(graph, mid), expect)
            for mid, expect in intent.get('expect', {}).items())
    if op == 'update':
        return _carries(find(graph, oid), _normalised(graph, intent))
    return True


def _normalised(graph, intent):
    """An update's expected fields as Octavia stores them: an L7 policy's
    positions are renumbered 1..n, so position p is stored as min(p, n)."""
    expect = dict(intent.get('expect', {}))
    if intent['type'] == 'l7policy' and isinstance(
            expect.get('position'), int):
        listener = find(graph, parent_of(graph, intent['id'])) or {}
        count = len(listener.get('l7policies', []))
        expect['position'] = max(1, min(expect['position'], count))
    return expect


def shows_members(graph, intent):
    """True if every member a batch update lists exists in ``graph``
    (the batch was committed, whatever Octavia made of its fields)."""
    ids = object_ids(graph)
    return all(m in ids for m in intent.get('members', []))


def _carries(obj, expect):
    """True if ``obj`` carries every expected field value (a cleared list
    and an empty one are the same)."""
    if obj is None:
        return False
    for key, wanted in expect.items():
        actual = obj.get(key)
        if wanted is None and actual in ([], {}):
            continue
        if isinstance(wanted, list):
            if sorted(map(str, actual or [])) != sorted(map(str, wanted)):
                return False
        elif isinstance(wanted, dict) and isinstance(actual, dict):
            if any(actual.get(k) != v for k, v in wanted.items()):
                return False
        elif actual != wanted:
            return False
    return True
