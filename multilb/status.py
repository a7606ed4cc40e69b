"""Builds the Octavia status updates that finish a set of intents.

Pure functions. The rule (what Octavia expects of a provider's status
updates): every object the API moved
to PENDING_* is reported; the target of an operation ends ACTIVE, ERROR or
DELETED; its parents go back to ACTIVE even when the operation failed; a
deleted object takes its descendants with it (Octavia only frees their quota
when they are reported DELETED). Nothing else is reported: Octavia bumps
``updated_at`` on every status write, even an unchanged one, so an object
the operation did not lock is only written when its status really changes
(a failover heals the children multilb last reported in ERROR).

Operating statuses follow :func:`operating_for`: with a backend that does
not observe its data plane (``observes=False``) only health monitors and L7
policies and rules get one, as with Octavia's amphora driver on no-op
backends.

What multilb reported is kept per load balancer (``sent``, see
:func:`merge_sent`): ``{object id: [provisioning, operating]}``, either
value None when never reported.
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


# Objects whose operating status is their admin state, whatever the data
# plane does (the amphora driver's MarkXActiveInDB tasks).
_ADMIN_STATE_ONLY = ('healthmonitor', 'l7policy', 'l7rule')


def operating_for(otype, obj, graph, observes=True):
    """Operating status of an object the agent just configured, or None to
    leave what Octavia shows.

    Health monitors, L7 policies and rules: ONLINE if enabled, else OFFLINE.
    Without a data plane to observe (``observes`` False) nothing else: the
    load balancer, listeners and pools keep OFFLINE and members keep what
    the API gave them (NO_MONITOR or OFFLINE). With one, before any health
    data: a disabled object is OFFLINE; a pool no listener sends traffic to
    is OFFLINE; members of a pool without a health monitor are NO_MONITOR
    and members of a monitored pool keep what Octavia set until health is
    polled; anything else is ONLINE.
    """
    if obj is None:
        return None
    enabled = obj.get('admin_state_up', True) is not False
    if otype in _ADMIN_STATE_ONLY:
        return consts.ONLINE if enabled else consts.OFFLINE
    if not observes:
        return None
    if not enabled:
        return consts.OFFLINE
    if otype == 'member':
        pool = graphs.find(graph, graphs.parent_of(graph, obj['member_id']))
        if pool is not None and pool.get('healthmonitor'):
            return None
        return consts.NO_MONITOR
    if otype == 'pool' and not graphs.pool_listener_ids(graph, obj['pool_id']):
        return consts.OFFLINE
    return consts.ONLINE


def merge_sent(sent, status):
    """``sent`` updated with a status dict multilb reported (a new dict).

    DELETED objects are dropped; a record without an operating status
    keeps the one reported before.
    """
    merged = {oid: list(values) for oid, values in (sent or {}).items()}
    for records in status.values():
        for record in records:
            oid = record['id']
            provisioning = record.get('provisioning_status')
            if provisioning == DELETED:
                merged.pop(oid, None)
                continue
            old = merged.get(oid, [None, None])
            merged[oid] = [provisioning or old[0],
                           record.get('operating_status') or old[1]]
    return merged


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


class _Context:
    """What every record of one status dict depends on."""

    def __init__(self, graph, record, ok, observes, sent):
        self.graph, self.record, self.ok = graph, record, ok
        self.observes, self.sent = observes, sent or {}

    def operating(self, otype, obj):
        if not self.ok:
            return None
        return operating_for(otype, obj, self.graph, self.observes)


def for_intents(intents, graph, record, ok, observes=True, sent=None):
    """The status dict that finishes ``intents`` (applied, or failed).

    :param observes: the cluster observes its data plane
        (:meth:`backends.base.ApplianceBackend.observes_health`).
    :param sent: what multilb last reported for this load balancer
        (:func:`merge_sent`); a successful failover heals the objects it
        shows in ERROR.
    """
    builder = StatusBuilder()
    ctx = _Context(graph, record, ok, observes, sent)
    for intent in intents:
        _one(builder, intent, ctx)
    return builder.build()


def _one(builder, intent, ctx):
    graph, record, ok = ctx.graph, ctx.record, ctx.ok
    otype, oid, op = intent['type'], intent['id'], intent['op']
    if otype == 'loadbalancer':
        _loadbalancer(builder, intent, ctx)
        return
    for ptype, pid in _parents(graph, otype, oid, intent):
        builder.set(ptype, pid, ACTIVE)
    if op == 'batch':
        for mid in intent.get('members', []):
            builder.set('member', mid, ACTIVE if ok else ERROR,
                        ctx.operating('member', graphs.find(graph, mid)))
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
        if op == 'create':
            # objects created inline with it (a pool's members and
            # monitor, a policy's rules) were PENDING_CREATE too
            for child_id, child_type in sorted(
                    graphs.descendants(graph, oid).items()):
                builder.set(child_type, child_id, ACTIVE if ok else ERROR,
                            ctx.operating(child_type,
                                          graphs.find(graph, child_id)))
        builder.set(otype, oid, ACTIVE if ok else ERROR,
                    ctx.operating(otype, graphs.find(graph, oid)))


def _loadbalancer(builder, intent, ctx):
    graph, ok = ctx.graph, ctx.ok
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
    if op == 'create':
        # Octavia put the whole graph in PENDING_CREATE.
        for otype, oid, obj, _parent in graphs.walk(graph):
            if ok:
                builder.set(otype, oid, ACTIVE, ctx.operating(otype, obj))
            else:
                builder.set(otype, oid, ERROR,
                            consts.ERROR if otype == 'loadbalancer' else None)
        return
    if op == 'failover' and ok:
        # Octavia locked the load balancer only. The whole graph was
        # applied again, so the children multilb last reported in ERROR
        # are healed: a real change of their status.
        for otype, oid, obj, _parent in graphs.walk(graph):
            if otype != 'loadbalancer' and \
                    (ctx.sent.get(oid) or [None])[0] == ERROR:
                builder.set(otype, oid, ACTIVE, ctx.operating(otype, obj))
    builder.set('loadbalancer', lb_id, ACTIVE if ok else ERROR,
                ctx.operating('loadbalancer', graph))


def refuse(status, refused, graph, healed=(), held=()):
    """``status`` (a new dict) with the objects the appliance refused in
    ERROR and the ones it took after refusing them before (``healed``)
    ACTIVE: those the operation locked change, the others are added (a
    real change of their status). Objects still held out (``held``) stay
    ERROR if the operation locked them. The operating status of a refused
    object is left as Octavia has it."""
    found = {k: [dict(r) for r in records] for k, records in status.items()}
    done = set()
    errors = set(refused) | set(held)
    for records in found.values():
        for record in records:
            if record['id'] in errors and \
                    record.get('provisioning_status') != DELETED:
                record['provisioning_status'] = ERROR
                record.pop('operating_status', None)
            done.add(record['id'])
    types = graphs.object_ids(graph)
    for oid, value in sorted([(i, ERROR) for i in refused] +
                             [(i, ACTIVE) for i in healed]):
        if oid in types and oid not in done:
            found.setdefault(graphs.STATUS_KEYS[types[oid]], []).append(
                {'id': oid, 'provisioning_status': value})
            done.add(oid)
    return found


_PARENT_TYPES = {'listener': 'listener', 'l7policy': 'listener',
                 'l7rule': 'l7policy', 'member': 'pool',
                 'healthmonitor': 'pool', 'pool': 'listener'}


def locks(graph):
    """``{pool or L7 policy id: [listener ids]}``: the listeners Octavia
    locks with an operation on that object or below it (kept in the LB
    record for :func:`failure_from_intents`)."""
    found = {pool['pool_id']: graphs.pool_listener_ids(graph, pool['pool_id'])
             for pool in graph.get('pools', [])}
    for listener in graph.get('listeners', []):
        for policy in listener.get('l7policies', []):
            found[policy['l7policy_id']] = [listener['listener_id']]
    return {oid: ids for oid, ids in found.items() if ids}


def failure_from_intents(lb_id, intents, record=None):
    """ERROR for the targets, ACTIVE above them, without Octavia's graph.

    The last resort when Octavia cannot be asked: what the intents say
    (the LB and each target's recorded parent) and what the last apply
    recorded (``record['locks']``: the listeners a pool's or an L7
    policy's operations lock) is all there is.
    """
    builder = StatusBuilder()
    locked = (record or {}).get('locks') or {}
    for intent in intents:
        otype = intent['type']
        if otype == 'loadbalancer':
            builder.set(otype, intent['id'], ERROR)
            continue
        builder.set('loadbalancer', lb_id, ACTIVE)
        parent = intent.get('parent')
        if parent and otype in _PARENT_TYPES:
            builder.set(_PARENT_TYPES[otype], parent, ACTIVE)
        above = intent['id'] if otype in ('pool', 'l7policy') else parent
        for listener_id in locked.get(above or '', []):
            builder.set('listener', listener_id, ACTIVE)
        if intent['op'] == 'batch':
            builder.set('pool', intent['id'], ACTIVE)
            for mid in intent.get('members', []) + intent.get('deleted', []):
                builder.set('member', mid, ERROR)
        else:
            builder.set(otype, intent['id'], ERROR)
    return builder.build()
