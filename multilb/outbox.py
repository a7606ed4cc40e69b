"""Delivery of one cluster's status outbox to Octavia.

A status update is written to the outbox in the same store commit that
finishes its work (see :meth:`multilb.state.State.complete`), then sent
through the driver agent. Entries leave the outbox only when Octavia took
them, or after Octavia refused one repeatedly; while the driver agent is
unreachable they wait, and delivery resumes within seconds of its return.
"""

from __future__ import annotations

import logging
import threading
import time

from multilb import octavia as octavia_mod

LOG = logging.getLogger(__name__)

# Short: once Octavia is back, users should see statuses within seconds.
MAX_BACKOFF = 5.0
REJECTED_DELIVERY_ATTEMPTS = 5


class Outbox:
    """Sends a cluster's outbox entries in order; thread-safe."""

    def __init__(self, cluster, state, octavia):
        self.cluster = cluster
        self.state = state
        self.octavia = octavia
        self._lock = threading.Lock()
        self._delivering = set()
        self._rejections = {}
        self._not_before = 0.0
        self._backoff = 0.0

    def deliver_all(self):
        """Deliver every pending entry, oldest first, until one fails."""
        if time.time() < self._not_before:
            return
        for key, _entry in self.state.outbox(self.cluster):
            if not self.deliver(key):
                return

    def deliver(self, key):
        """Send one entry to Octavia; True if it is done with."""
        if key is None:
            return True
        with self._lock:
            if key in self._delivering:
                return True
            self._delivering.add(key)
        try:
            # Read it again now that we own it: another thread may have
            # delivered and acknowledged it since it was listed.
            entry = self.state.outbox_entry(key)
            if entry is None:
                return True
            return self._send(key, entry)
        finally:
            with self._lock:
                self._delivering.discard(key)

    def _send(self, key, entry):
        try:
            self.octavia.update_status(entry['status'])
        except octavia_mod.OctaviaUnavailable as exc:
            self._backoff = min(MAX_BACKOFF, max(0.5, self._backoff * 2))
            self._not_before = time.time() + self._backoff
            LOG.warning('Cluster %s: status update for load balancer %s '
                        'not delivered, will retry in %.1fs: %s',
                        self.cluster, entry['lb'], self._backoff, exc)
            return False
        except octavia_mod.StatusRejected as exc:
            tries = self._rejections.get(key, 0) + 1
            self._rejections[key] = tries
            if tries < REJECTED_DELIVERY_ATTEMPTS:
                LOG.warning('Cluster %s: Octavia refused a status update for '
                            'load balancer %s (attempt %d): %s',
                            self.cluster, entry['lb'], tries, exc)
                return False
            LOG.error('Cluster %s: Octavia refused a status update for load '
                      'balancer %s %d times; dropping it: %s %s',
                      self.cluster, entry['lb'], tries, exc, entry['status'])
        self._backoff = 0.0
        self._rejections.pop(key, None)
        self.state.ack(key)
        return True
