"""Builds the Octavia status updates that finish a set of intents.

Pure functions. The rule (provider contract §5): every object the API moved
to PENDING_* is reported; the target of an operation ends ACTIVE, ERROR or
DELETED; its parents go back to ACTIVE even when the operation failed; a
deleted object takes its descendants with it (Octavia only frees their quota
when they are reported DELETED).
"""

from __future__ import annotations

from octavia_lib.common import constants as consts

from multilb import graph as graphs

ACTIVE, ERROR, DELETED = consts.ACTIVE, consts.ERROR, consts.DELETED


class StatusBuilder:
    """Collects records; DELETED is final and wins over anything later."""

    def __init__(self):
        self._records = {}

    def set(self, otype, oid, provisioning=None, operating=None):
        record = self._records.setdefault((otype, oid), {'id': oid})
        if record.get('provisioning_status') == DELETED:
            return
        if provisioning:
            record['provisioning_status'] = provisioning
        if operating and provisioning != DELETED:
            record['operating_status'] = operating
        if provisioning == DELETED:
            record.pop('operating_status', None)

    def build(self):
        status = {}
        for (otype, _oid), record in sorted(self._records.items()):
            status.setdefault(graphs.STATUS_KEYS[otype], []).append(record)
        return status


def operating_for(otype, obj, graph):
    """Operating status of an object the agent just configured.

    No health data yet: an enabled object is ONLINE, a disabled one OFFLINE;
    members of a pool without a health monitor are NO_MONITOR and members of
    a monitored pool keep what Octavia set until health is polled.
    """
    if obj is None:
        return None
    if not obj.get('admin_state_up', True):
        return consts.OFFLINE
    if otype == 'member':
        pool = graphs.find(graph, graphs.parent_of(graph, obj['member_id']))
        if pool is not None and pool.get('healthmonitor'):
            return None
        return consts.NO_MONITOR
    return consts.ONLINE


def _parents(graph, otype, oid, intent):
    """``[(type, id)]`` the API locked above the target, nearest last."""
    lb_id = graph['loadbalancer_id']
    found = [('loadbalancer', lb_id)]
    parent = graphs.parent_of(graph, oid) or intent.get('parent')
    if otype == 'pool':
        found += [('listener', li) for li in
                  graphs.pool_listener_ids(graph, oid)]
        if intent.get('parent'):
            found.append(('listener', intent['parent']))
    elif otype in ('member', 'healthmonitor'):
        found += [('listener', li) for li in
                  graphs.pool_listener_ids(graph, parent)]
        found.append(('pool', parent))
    elif otype == 'l7policy':
        found.append(('listener', parent))
    elif otype == 'l7rule':
        listener = graphs.parent_of(graph, parent) or intent.get('listener')
        found += [('listener', listener), ('l7policy', parent)]
    return [(t, i) for t, i in found if i]


def batch_deletions(intent, graph, record):
    """Members a batch update removes: known members not in the request."""
    pool_id = intent['id']
    pool = graphs.find(graph, pool_id) or {}
    known = set(record.get('pools', {}).get(pool_id, []))
    known |= {m['member_id'] for m in pool.get('members', [])}
    known |= set(intent.get('deleted', []))
    return sorted(known - set(intent.get('members', [])))


def deleting(intents, graph, record):
    """Every object id the intents remove (targets and descendants)."""
    gone = set()
    for intent in intents:
        if intent['op'] == 'delete':
            gone.add(intent['id'])
            gone |= set(graphs.descendants(graph, intent['id']))
        elif intent['op'] == 'batch':
            gone |= set(batch_deletions(intent, graph, record))
    return gone


def for_intents(intents, graph, record, ok):
    """The status dict that finishes ``intents`` (applied, or failed)."""
    builder = StatusBuilder()
    for intent in intents:
        _one(builder, intent, graph, record, ok)
    return builder.build()


def _one(builder, intent, graph, record, ok):
    otype, oid, op = intent['type'], intent['id'], intent['op']
    if otype == 'loadbalancer':
        _loadbalancer(builder, intent, graph, ok)
        return
    for ptype, pid in _parents(graph, otype, oid, intent):
        builder.set(ptype, pid, ACTIVE)
    if op == 'batch':
        for mid in intent.get('members', []):
            obj = graphs.find(graph, mid)
            builder.set('member', mid, ACTIVE if ok else ERROR,
                        operating_for('member', obj, graph) if ok else None)
        for mid in batch_deletions(intent, graph, record):
            builder.set('member', mid, DELETED if ok else ERROR)
        builder.set('pool', oid, ACTIVE)
    elif op == 'delete':
        if not ok:
            builder.set(otype, oid, ERROR)
            return
        for child_id, child_type in graphs.descendants(graph, oid).items():
            builder.set(child_type, child_id, DELETED)
        builder.set(otype, oid, DELETED)
    else:
        obj = graphs.find(graph, oid)
        builder.set(otype, oid, ACTIVE if ok else ERROR,
                    operating_for(otype, obj, graph) if ok else None)


def _loadbalancer(builder, intent, graph, ok):
    lb_id, op = intent['id'], intent['op']
    if op == 'sync':
        return  # the agent's own re-apply: Octavia locked nothing
    if op == 'delete':
        if not ok:
            builder.set('loadbalancer', lb_id, ERROR)
            return
        tree = dict(intent.get('tree', {}))
        tree.update(graphs.object_ids(graph) if graph else {})
        for oid, otype in tree.items():
            builder.set(otype, oid, DELETED)
        builder.set('loadbalancer', lb_id, DELETED)
        return
    if op == 'create' or (op == 'failover' and ok):
        # Create: Octavia put the whole graph in PENDING_CREATE. Failover:
        # the whole graph was re-applied, which also heals children left in
        # ERROR by an earlier failure.
        for otype, oid, obj, _parent in graphs.walk(graph):
            if ok:
                builder.set(otype, oid, ACTIVE,
                            operating_for(otype, obj, graph))
            else:
                builder.set(otype, oid, ERROR,
                            consts.ERROR if otype == 'loadbalancer' else None)
        return
    builder.set('loadbalancer', lb_id, ACTIVE if ok else ERROR,
                operating_for('loadbalancer', graph, graph) if ok else None)


_PARENT_TYPES = {'listener': 'listener', 'l7policy': 'listener',
                 'l7rule': 'l7policy', 'member': 'pool',
                 'healthmonitor': 'pool', 'pool': 'listener'}


def failure_from_intents(lb_id, intents):
    """ERROR for the targets, ACTIVE above them, without Octavia's graph.

    The last resort when Octavia cannot be asked: what the intents say
    (the LB and each target's recorded parent) is all there is.
    """
    builder = StatusBuilder()
    for intent in intents:
        otype = intent['type']
        if otype == 'loadbalancer':
            builder.set(otype, intent['id'], ERROR)
            continue
        builder.set('loadbalancer', lb_id, ACTIVE)
        if intent.get('parent') and otype in _PARENT_TYPES:
            builder.set(_PARENT_TYPES[otype], intent['parent'], ACTIVE)
        if intent['op'] == 'batch':
            builder.set('pool', intent['id'], ACTIVE)
            for mid in intent.get('members', []) + intent.get('deleted', []):
                builder.set('member', mid, ERROR)
        else:
            builder.set(otype, intent['id'], ERROR)
    return builder.build()
