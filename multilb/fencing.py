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
* verifies the key before every write to the cluster and at every scan,
  and stops at once when it changed (:class:`multilb.exceptions.Fenced`);
  a store it cannot reach means no write either.

A write already past that check when the agent stalled still lands when
it resumes. The new owner therefore re-applies every load balancer of the
cluster ``takeover_resync_delay`` seconds after taking it over from
another agent, which repairs what a stalled agent resuming within that
delay wrote. A write stalled longer than that is not covered (an appliance
with conditional writes could refuse it; none is used yet).
"""

from __future__ import annotations

import json
import logging
import time
import uuid

from multilb import exceptions

LOG = logging.getLogger(__name__)

PREFIX = 'owner/'


def owner_key(cluster):
    return PREFIX + cluster


def owners(kv):
    """``{cluster: {"agent", "token", "at"}}`` of every claimed cluster."""
    return {e.key[len(PREFIX):]: json.loads(e.value)
            for e in kv.get_prefix(PREFIX)}


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
