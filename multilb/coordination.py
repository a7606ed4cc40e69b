"""Agent membership and per-cluster locks over tooz (the only tooz user).

Agents join one group; each cluster belongs to one live member, and its
worker only runs while it holds the cluster's lock, so two agents never
drive the same cluster even while their views of the group differ.

Which member: the clusters that the same agents can drive are shared out
evenly among them (:func:`balanced_owners`: at most ceil(clusters /
agents) each, every cluster going to the first agent of its own
rendezvous order that still has room), computed from the group's view
alone, so that every agent with the same view agrees. A consistent hash
ring did that before; with few clusters per agent its split was often
lopsided (8 clusters over 2 agents: 6/2 or worse in 28 % of member ids,
8/0 in 0.5 %, which made one agent do a whole burst alone). The ring is
still used for the clusters no agent configures (departed ones, which
each agent learns from the store at its own time) and wherever an agent
of the group does not announce ``assignment: balanced`` (an older
multilb, which only knows the ring), so that agents of two versions
still agree.

Each agent joins with its *capabilities*: the clusters it can drive (the
valid sections of its ``enabled_clusters``), the whole ``enabled_clusters``
list and its version. A cluster's ring is made of the live agents that can
drive it (:func:`candidates`), so during a rolling change of
``enabled_clusters`` a cluster only some agents know yet goes to one of
them instead of to an agent that would ignore it; a cluster no agent
configures any more (a departed one, :mod:`multilb.departed`) is shared by
all. An agent that joined without capabilities (an older multilb) counts
as driving every cluster, as before. :func:`disagreements` is what an agent
logs when the lists differ.

The coordinator is created lazily in the process that uses it (tooz's
heartbeat thread does not survive a fork).

tooz pitfalls handled: member ids and lock names must be
bytes; an etcd membership that expired is not re-created by heartbeats, so
:meth:`Coordinator.view` re-joins; ``acquire(blocking=False)`` is the
only acquire used (a timed acquire raises on etcd instead of returning
False); locks are released explicitly because ``stop()`` does not.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import socket
import uuid

from tooz import coordination
from tooz import hashring

from multilb import exceptions
from multilb.store import etcd_client

LOG = logging.getLogger(__name__)

GROUP = b'multilb-agents'


def _lock_name(cluster):
    return ('multilb-cluster-%s' % cluster).encode('ascii')


def new_member_id():
    return ('%s-%d-%s' % (socket.gethostname(), os.getpid(),
                          uuid.uuid4().hex[:6])).encode('ascii')


def _tooz(url, member_id):
    """A tooz coordinator; on etcd, over every member the URL lists (tooz
    takes one host: its client is replaced, before start, by one that
    moves to the next member when one fails and keeps the same leases).

    :raises ConfigError: the etcd member list is malformed.
    """
    if not url.startswith('etcd3+'):
        return coordination.get_coordinator(url, member_id)
    tooz_url, client = etcd_client.for_tooz(url)
    coordinator = coordination.get_coordinator(tooz_url, member_id)
    coordinator.client = client
    return coordinator


BALANCED = 'balanced'


def capabilities(clusters, enabled, version):
    """What an agent joins the group with: ``clusters`` it can drive (valid
    sections), the ``enabled`` list as configured, its ``version``, and
    that it shares clusters out with :func:`balanced_owners`."""
    return {'clusters': sorted(clusters), 'enabled': list(enabled),
            'version': version, 'assignment': BALANCED}


def _digest(*parts):
    return hashlib.sha256(b'/'.join(parts)).digest()


def balanced_owners(names, nodes):
    """``{cluster name: member id}``: ``names`` shared out among ``nodes``
    (member ids), at most ceil(len(names) / len(nodes)) each.

    Deterministic (SHA-256, never Python's salted ``hash``): clusters are
    taken in the order of their digest, and each goes to the first member
    of its own rendezvous order (digest of name and member) with room
    left. A member that joins or leaves moves some clusters beyond its
    own share; each move is a takeover with fencing.
    """
    nodes = sorted(nodes)
    if not nodes:
        return {}
    room = math.ceil(len(names) / len(nodes))
    load = dict.fromkeys(nodes, 0)
    owners = {}
    for name in sorted(names, key=lambda n: _digest(n.encode('utf-8'))):
        key = name.encode('utf-8')
        for node in sorted(nodes, key=lambda m: _digest(key, m)):
            if load[node] < room:
                load[node] += 1
                owners[name] = node
                break
    return owners


def drivers(name, view):
    """The live agents (ids) of ``view`` (``{member_id: capabilities or
    None}``) that can drive cluster ``name``: those with a valid section
    for it, and those without capabilities (an older agent, counted as
    driving every cluster)."""
    return {m for m, caps in view.items()
            if not caps or name in caps.get('clusters', ())}


def candidates(name, view):
    """The live agents (ids) among which cluster ``name`` is hashed.

    :param view: ``{member_id: capabilities or None}`` of the live agents.
    :returns: its :func:`drivers`; if there are none but some agents have
        ``name`` in their ``enabled_clusters`` (a broken section there),
        nobody; if no agent configures it at all (a departed cluster, whose
        load balancers can only be deleted), every agent.
    """
    able = drivers(name, view)
    if able:
        return able
    if any(caps and name in caps.get('enabled', ()) for caps in
           view.values()):
        return set()
    return set(view)


def disagreements(view, member_id):
    """How the other live agents' ``enabled_clusters`` differ from ours.

    :returns: sorted ``[(agent, missing_there, only_there)]`` (agent ids as
        text, cluster names sorted), empty when every agent that announced
        its list has ours; agents without capabilities are left out.
    """
    mine = view.get(member_id)
    if not mine:
        return []
    ours = set(mine.get('enabled', ()))
    found = []
    for other, caps in sorted(view.items()):
        if other == member_id or not caps:
            continue
        theirs = set(caps.get('enabled', ()))
        if theirs != ours:
            found.append((other.decode(), sorted(ours - theirs),
                          sorted(theirs - ours)))
    return found


def _decoded(view):
    return {m.decode(): caps for m, caps in view.items()}


def live_agents(url, with_capabilities=False):
    """Member ids of the agents in the group now, read without joining it
    (for ``multilb-manage``, which must never be given clusters).

    :param with_capabilities: return ``{member_id: capabilities or None}``
        instead of a set.
    :raises StoreUnavailable: the coordination backend cannot be reached.
    """
    coordinator = None
    try:
        coordinator = _tooz(url, b'multilb-manage-' + new_member_id())
        coordinator.start(start_heart=False)
        if with_capabilities:
            return _decoded(coordinator.get_members_with_capabilities(
                GROUP).get())
        return {m.decode() for m in coordinator.get_members(GROUP).get()}
    except coordination.GroupNotCreated:
        return {} if with_capabilities else set()
    except exceptions.ConfigError:
        raise
    except Exception as exc:  # etcd3gw errors are not ToozErrors
        raise exceptions.StoreUnavailable(
            'coordination backend unavailable: %s' % exc) from None
    finally:
        if coordinator is not None:
            try:
                coordinator.stop()
            except Exception:
                LOG.debug('coordinator stop failed', exc_info=True)


class Coordinator:
    """Membership, ownership and locks of one provider agent process."""

    def __init__(self, url, member_id=None, capabilities=None):
        """:param capabilities: what this agent announces
            (:func:`capabilities`); None for none (counted as driving
            every cluster)."""
        self.url = url
        self.member_id = member_id or new_member_id()
        self.capabilities = capabilities
        self._coordinator = None
        self._locks = {}

    def start(self):
        try:
            self._coordinator = _tooz(self.url, self.member_id)
            self._coordinator.start(start_heart=True)
        except exceptions.ConfigError:
            raise
        except Exception as exc:  # etcd3gw errors are not ToozErrors
            self._coordinator = None
            raise exceptions.StoreUnavailable(
                'coordination backend unavailable: %s' % exc) from None
        self._join()

    def _join(self):
        try:
            self._coordinator.join_group_create(GROUP, self.capabilities)
        except coordination.MemberAlreadyExist:
            pass

    def stop(self):
        for cluster in list(self._locks):
            self.release(cluster)
        if self._coordinator is not None:
            try:
                self._coordinator.leave_group(GROUP).get()
            except Exception:
                LOG.debug('leave_group failed', exc_info=True)
            try:
                self._coordinator.stop()
            except Exception:
                LOG.debug('coordinator stop failed', exc_info=True)
            self._coordinator = None

    def view(self):
        """``{member_id: capabilities or None}`` of the live agents, ours
        included; re-joins if our membership expired."""
        try:
            found = dict(self._coordinator.get_members_with_capabilities(
                GROUP).get())
            if self.member_id not in found:
                LOG.warning('Agent %s dropped out of the agent group; '
                            'joining again', self.member_id.decode())
                self._join()
                found[self.member_id] = self.capabilities
            return found
        except coordination.ToozError as exc:
            raise exceptions.StoreUnavailable(
                'coordination backend unavailable: %s' % exc) from None

    def members(self):
        """Live member ids (see :meth:`view`)."""
        return set(self.view())

    def owned(self, clusters, view=None):
        """The clusters (names) this agent drives, out of ``clusters``:
        each is shared among its :func:`candidates` in ``view`` (read now
        when not given), see the module docstring."""
        view = self.view() if view is None else view
        configured = set().union(*(caps.get('clusters', ())
                                   for caps in view.values() if caps))
        rings, shares, mine = {}, {}, set()
        for name in clusters:
            nodes = frozenset(candidates(name, view))
            if self.member_id not in nodes:
                continue
            if name in configured and all(
                    (view.get(m) or {}).get('assignment') == BALANCED
                    for m in nodes):
                if nodes not in shares:
                    # the group's clusters as the view lists them, the
                    # same for every agent with this view
                    shares[nodes] = balanced_owners(
                        {c for c in configured
                         if frozenset(candidates(c, view)) == nodes},
                        nodes)
                if shares[nodes].get(name) == self.member_id:
                    mine.add(name)
                continue
            if nodes not in rings:
                rings[nodes] = hashring.HashRing(sorted(nodes),
                                                 partitions=64)
            if self.member_id in rings[nodes].get_nodes(
                    name.encode('utf-8')):
                mine.add(name)
        return mine

    def acquire(self, cluster):
        """Take the cluster's lock without waiting; True if we hold it."""
        if cluster in self._locks:
            return True
        lock = self._coordinator.get_lock(_lock_name(cluster))
        try:
            acquired = lock.acquire(blocking=False)
        except coordination.ToozError as exc:
            LOG.warning('Cluster %s: lock acquire failed: %s', cluster, exc)
            return False
        if acquired:
            self._locks[cluster] = lock
        return acquired

    def release(self, cluster):
        lock = self._locks.pop(cluster, None)
        if lock is None:
            return
        try:
            lock.release()
        except Exception:
            LOG.warning('Cluster %s: lock release failed; it expires by '
                        'itself', cluster, exc_info=True)

    def forget(self, cluster):
        """Drop the lock of a cluster another agent took over without
        releasing it (it is not ours any more)."""
        self._locks.pop(cluster, None)

    def held(self):
        return set(self._locks)
