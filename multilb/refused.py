"""Objects an appliance refused, held out of their load balancer's applies.

A backend applies a whole load balancer at a time. Without this, one object
the appliance refuses (a member address it cannot route, an L7 regex it
cannot compile) would be sent again with every later change of its load
balancer, and every one of those changes would fail with it.

So when an apply is refused, the worker applies the load balancer again
without the refused objects (those the backend names in
:attr:`backends.exceptions.BackendRejected.object_ids`, else the objects
the operation created or changed), reports them ERROR and records them in
the placement record (``refused``). Later applies leave them out (an object
held out is absent from the appliance, with what hangs below it; a change
below it is refused with it) until the user changes or deletes one, or
fails the load balancer over: then it is tried again (with the refused
objects below it), once per such operation, and reported ACTIVE when the
cluster takes it. :func:`apply` runs that loop with
the worker's apply; the rest are pure functions.
"""

from __future__ import annotations

import logging

from backends import exceptions as backend_exc
from multilb import graph as graphs

LOG = logging.getLogger(__name__)

# applies of one operation that leave out refused objects before giving up
REFUSALS = 5


def apply(apply_graph, graph, intents, gone, record, where):
    """Apply ``graph`` without ``gone`` and the objects held out; while the
    cluster refuses objects (named one at a time by some backends), again
    without them, at most :data:`REFUSALS` times.

    :param apply_graph: the worker's apply of one graph (raises what the
        backend raises).
    :param where: ``(lb_id, cluster name)`` for the log.
    :returns: (graph applied, ids held out, ids refused now).
    :raises: what the last apply raised.
    """
    held = held_out(record, intents, graph) - gone
    refused = set()
    for attempt in range(REFUSALS + 1):
        desired = graphs.prune(graph, gone | held | refused)
        try:
            apply_graph(desired)
            refused |= shadowed(intents, graph, held | refused) - gone
            return desired, held, refused
        except backend_exc.BackendRejected as exc:
            more = culprits(exc, intents, desired, record)
            if not more or attempt == REFUSALS:
                raise
            LOG.warning('Load balancer %s on cluster %s: the cluster '
                        'refused %s (%s); applying the rest without them',
                        where[0], where[1], ', '.join(sorted(more)), exc)
            refused |= more


def retried(intents, refused, graph):
    """The refused ids these intents give another try: the targets of a
    create or update, the members a batch lists, every one on a failover
    (the agent's own ``sync`` re-apply tries none), with the refused
    objects below those (left out with them)."""
    refused = set(refused)
    if any(intent['op'] == 'failover' for intent in intents):
        return refused
    ids = targets(intents, loadbalancer=True) & refused
    for oid in list(ids):
        ids |= set(graphs.descendants(graph, oid)) & refused
    return ids


def held_out(record, intents, graph):
    """The ids to leave out of this apply: what the record says the
    appliance refused, still in Octavia's graph, not retried now."""
    refused = set(record.get('refused') or ()) & set(graphs.object_ids(graph))
    return refused - retried(intents, refused, graph)


def shadowed(intents, graph, absent):
    """The targets of this operation below an object left out (``absent``):
    not on the cluster either, so they are refused with it."""
    below = set()
    for oid in absent:
        below |= set(graphs.descendants(graph, oid))
    return targets(intents) & below


def healed(record, graph, absent):
    """Ids the record said were refused that this apply sent (they are in
    ``graph``, not ``absent``): the cluster took them."""
    return (set(record.get('refused') or ()) & set(graphs.object_ids(graph))
            ) - set(absent)


def targets(intents, loadbalancer=False):
    """Objects the operation creates or changes (the load balancer itself
    only if ``loadbalancer``)."""
    ids = set()
    for intent in intents:
        if intent['type'] == 'loadbalancer' and not loadbalancer:
            continue
        if intent['op'] in ('create', 'update'):
            ids.add(intent['id'])
        elif intent['op'] == 'batch':
            ids |= set(intent.get('members', []))
    return ids


def culprits(exc, intents, graph, record):
    """The ids to hold out after the appliance refused ``graph``.

    The objects the backend named, else the operation's targets and the
    refused objects it retried. Empty when there is nothing to hold out:
    the refusal concerns the load balancer itself (a new LB refused as a
    whole, a name the backend cannot place), or nothing it names or the
    operation touches is in the graph.
    """
    present = graphs.object_ids(graph)
    lb_id = graph['loadbalancer_id']
    named = set(getattr(exc, 'object_ids', ()) or ())
    if lb_id in named:
        return set()
    found = named & set(present)
    if not found:
        refused = set(record.get('refused') or ())
        found = (targets(intents) | retried(intents, refused, graph)
                 ) & set(present)
    return found - {lb_id}
