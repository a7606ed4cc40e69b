"""Fencing: only the agent that owns a cluster writes to it.

The agents' tooz locks keep two agents from driving one cluster while
both are healthy, but an agent that stalled past its lock timeout (a
SIGSTOP, a long GC pause, an etcd partition) does not learn that it lost
the lock: tooz's heartbeat refreshes an expired lease and ``acquired``
stays True. So ownership is also multilb's own state-store key,
``owner/<cluster>`` (the agent's id, a fresh token, the time), written by
every agent that starts a cluster's worker; its version changes at every
takeover.

The worker of a cluster holds an :class:`Ownership` and

* checks the key's version in the same commit as every completion
  (:class:`FencedState`): an agent that lost the cluster cannot record an
  outcome, nor a status for Octavia;
* verifies the key before every write to the cluster, at every scan and
  before its monitor stores or sends anything, and stops at once when it
  changed (:class:`multilb.exceptions.Fenced`); a store it cannot reach
  means no write either;
* is stopped by the agent's sweep (:mod:`multilb.sweep`, every
  ``idle_poll_interval``, one read for all the agent's clusters) when the
  key changed while the worker had nothing to do.

A write already past that check when the agent stalled still lands when
it resumes, after the new owner's. The completion that follows it is
refused, and the stalled agent then records the load balancer under
``late/<cluster>/<lb id>`` (:func:`report_late_write`) before it stops; the
owner re-applies each such load balancer at its next probe
(:func:`late_writes`; the agent's sweep reads them for all its clusters),
so the newest configuration wins. Only an agent
killed between its late write and that record leaves the late write in
place (until the load balancer's next change or ``multilb-manage lb
sync``).
"""

from __future__ import annotations

import json
import logging
import time
import uuid

from multilb import exceptions

LOG = logging.getLogger(__name__)

PREFIX = 'owner/'
LATE = 'late/'


def owner_key(cluster):
    return PREFIX + cluster


def owners(kv):
    """``{cluster: {"agent", "token", "at"}}`` of every claimed cluster."""
    return {e.key[len(PREFIX):]: json.loads(e.value)
            for e in kv.get_prefix(PREFIX)}


def report_late_write(kv, cluster, lb_id, agent):
    """Record that ``agent`` may have written ``lb_id`` to ``cluster`` after
    another agent took the cluster over (never fenced: it is a message to
    the new owner). Best effort: a store error is logged."""
    value = json.dumps({'agent': agent, 'at': time.time()}, sort_keys=True)
    try:
        kv.commit(puts={'%s%s/%s' % (LATE, cluster, lb_id): value})
    except exceptions.StoreUnavailable as exc:
        LOG.error('Load balancer %s on cluster %s: cannot record the late '
                  'write of agent %s (%s); run "multilb-manage lb sync %s"',
                  lb_id, cluster, agent, exc, lb_id)


def late_writes(kv, cluster):
    """``[(key, lb_id, agent), ...]`` recorded for ``cluster``."""
    prefix = '%s%s/' % (LATE, cluster)
    return [(e.key, e.key[len(prefix):], json.loads(e.value).get('agent'))
            for e in kv.get_prefix(prefix)]


class Ownership:
    """One agent's claim on one cluster (see the module docstring)."""

    def __init__(self, kv, cluster, agent):
        self.kv = kv
        self.cluster = cluster
        self.agent = agent
        self.key = owner_key(cluster)
        self.version = None

    def claim(self):
        """Write the key for this agent (it holds the cluster's lock).

        :returns: the previous owner's record, or None.
        :raises StoreUnavailable: as the store does.
        """
        before = self.kv.get(self.key)
        token = uuid.uuid4().hex
        value = json.dumps({'agent': self.agent, 'token': token,
                            'at': time.time()}, sort_keys=True)
        if not self.kv.commit(puts={self.key: value}):
            raise exceptions.StoreUnavailable('claim of cluster %s refused'
                                              % self.cluster)
        entry = self.kv.get(self.key)
        if entry is None or json.loads(entry.value).get('token') != token:
            raise exceptions.Fenced('cluster %s was claimed by another agent '
                                    'at the same time' % self.cluster)
        self.version = entry.version
        return json.loads(before.value) if before else None

    def checks(self):
        """``{key: version}`` to add to a commit's checks."""
        return {self.key: self.version}

    def verify(self):
        """:raises Fenced: another agent claimed the cluster since.
        :raises StoreUnavailable: cannot tell (so: do not write)."""
        entry = self.kv.get(self.key)
        if entry is None or entry.version != self.version:
            holder = json.loads(entry.value).get('agent') if entry else None
            raise exceptions.Fenced(
                'cluster %s is now driven by agent %s' % (
                    self.cluster, holder or '(none)'))


class FencedState:
    """The state store as one cluster's worker sees it: every completion
    commit also checks that the worker's agent still owns the cluster."""

    def __init__(self, state, ownership):
        self._state = state
        self.ownership = ownership

    def complete(self, *args, **kwargs):
        kwargs['fence'] = self.ownership
        return self._state.complete(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._state, name)
