"""Agent membership and per-cluster locks over tooz (the only tooz user).

Agents join one group; each cluster belongs to the live member a hash ring
picks, and its worker only runs while it holds the cluster's lock, so two
agents never drive the same cluster even while their views of the group
differ. The coordinator is created lazily in the process that uses it
(tooz's heartbeat thread does not survive a fork).

tooz pitfalls handled: member ids and lock names must be
bytes; an etcd membership that expired is not re-created by heartbeats, so
:meth:`Coordinator.members` re-joins; ``acquire(blocking=False)`` is the
only acquire used (a timed acquire raises on etcd instead of returning
False); locks are released explicitly because ``stop()`` does not.
"""

from __future__ import annotations

import logging
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


def live_agents(url):
    """Member ids of the agents in the group now, read without joining it
    (for ``multilb-manage``, which must never be given clusters).

    :raises StoreUnavailable: the coordination backend cannot be reached.
    """
    coordinator = None
    try:
        coordinator = _tooz(url, b'multilb-manage-' + new_member_id())
        coordinator.start(start_heart=False)
        return {m.decode() for m in coordinator.get_members(GROUP).get()}
    except coordination.GroupNotCreated:
        return set()
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

    def __init__(self, url, member_id=None):
        self.url = url
        self.member_id = member_id or new_member_id()
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
            self._coordinator.join_group_create(GROUP)
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

    def members(self):
        """Live member ids; re-joins if our membership expired."""
        try:
            found = set(self._coordinator.get_members(GROUP).get())
            if self.member_id not in found:
                LOG.warning('Agent %s dropped out of the agent group; '
                            'joining again', self.member_id.decode())
                self._join()
                found.add(self.member_id)
            return found
        except coordination.ToozError as exc:
            raise exceptions.StoreUnavailable(
                'coordination backend unavailable: %s' % exc) from None

    def owned(self, clusters):
        """The clusters (names) the hash ring gives to this agent."""
        ring = hashring.HashRing(sorted(self.members()), partitions=64)
        return {name for name in clusters
                if self.member_id in ring.get_nodes(name.encode('utf-8'))}

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
