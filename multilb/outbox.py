"""Delivery of one cluster's status outbox to Octavia.

A status update is written to the outbox in the same store commit that
finishes its work (see :meth:`multilb.state.State.complete`), then sent
through the driver agent: by the worker job right after that commit
(:meth:`Outbox.deliver`) and by every scan of the cluster worker
(:meth:`Outbox.deliver_all`). An entry leaves the outbox when Octavia took
it, and otherwise only past ``[multilb] status_delivery_deadline``.

Policy:

* **Refused** (:class:`~multilb.octavia.StatusRejected`): the driver agent
  answers a status write it could not perform (its database failing over
  or refusing writes) exactly like a bad record, so every refusal is
  retried, per entry, 0.5 s doubling up to :data:`MAX_BACKOFF`. An entry
  still refused ``status_delivery_deadline`` seconds after its first
  refusal is dropped with one ERROR (load balancer, cluster, how long,
  last error and the status it carried): its objects keep what Octavia
  shows.
* **Unreachable** (:class:`~multilb.octavia.OctaviaUnavailable`: no
  socket, or no answer within the driver library's 30 s): the whole
  cluster's delivery backs off, 0.5 s doubling up to
  :data:`MAX_UNAVAILABLE_BACKOFF`, so that statuses flow within seconds of
  the driver agent's return. Nothing is dropped for it. (While its
  database is stopped, Octavia 19 writes each update from a process that
  waits for the database: the call returns once it is back, or ends here
  after 30 s while that process may still write it later.)
* **Busy** (:class:`~multilb.octavia.OctaviaBusy`: the driver agent took
  the update and did not answer within the driver library's 30 s): as
  unreachable for the cluster, and that entry is not sent again for
  :data:`BUSY_HOLD` seconds: the driver agent's handler may still be
  writing it, and a copy sent meanwhile would only add to the load that
  made it late.
* **Order**: the entries of one load balancer are delivered oldest first;
  one that waits (failed, or being sent by another thread) holds back the
  newer entries of its load balancer only. Entries are per load balancer
  (``State.complete`` writes one status dict for one LB): the driver agent
  stops at the first record it fails, so a dict naming several LBs would
  let one LB's failure hold back the others'.
* **Visibility**: each failed attempt rewrites the entry with a
  ``delivery`` field (first failure, attempts, last error, next attempt;
  :meth:`multilb.state.State.record_delivery_failure`), one store write per
  attempt, which ``multilb-manage outbox list`` shows. The log has one
  WARNING at an entry's first failure, then at most one per
  :data:`WARN_EVERY` seconds per entry, with the load balancer and cluster.

Delivering twice is harmless: Octavia's status writes are idempotent.
"""

from __future__ import annotations

import logging
import re
import threading
import time

from multilb import octavia as octavia_mod

LOG = logging.getLogger(__name__)

FIRST_BACKOFF = 0.5
# Per refused entry: bounds how late a status arrives after Octavia's
# database is back, and the store writes of a long outage (one per attempt).
MAX_BACKOFF = 30.0
# Cluster-wide while the driver agent is unreachable: short, so users see
# statuses within seconds of its return.
MAX_UNAVAILABLE_BACKOFF = 5.0
# An entry the driver agent took but did not answer in time: its handler
# is likely still at work (octavia_lib's DRIVER_AGENT_TIMEOUT).
BUSY_HOLD = 30.0
WARN_EVERY = 60.0
DEFAULT_DEADLINE = 86400.0    # [multilb] status_delivery_deadline
ERROR_TEXT_MAX = 500

DONE, WAITING, UNAVAILABLE = 'done', 'waiting', 'unavailable'
# (refused, busy) -> how the log says it, how last_error starts
_REASON = {(True, False): 'refused by Octavia',
           (False, False): 'driver agent unreachable',
           (False, True): 'driver agent did not answer in time'}
_PREFIX = {(True, False): 'refused',
           (False, False): 'driver agent unreachable',
           (False, True): 'driver agent busy'}

# scheme://user:password@ in an error text that echoes a URL
_USERINFO = re.compile(r'([A-Za-z][A-Za-z0-9+.\-]*://)[^/\s@]*@')


def error_text(exc):
    """``exc`` as stored and shown: one line, no URL credentials, short."""
    text = _USERINFO.sub(r'\1***@', ' '.join(str(exc).split()))
    text = text or type(exc).__name__
    if len(text) > ERROR_TEXT_MAX:
        text = text[:ERROR_TEXT_MAX - 3] + '...'
    return text


def due(delivery, now):
    """True if an entry with this ``delivery`` record may be sent now (a
    next attempt further away than any backoff means the clock went back:
    due too)."""
    next_at = (delivery or {}).get('next_attempt_at') or 0.0
    return next_at <= now or next_at - now > MAX_BACKOFF


class Outbox:
    """Sends one cluster's outbox entries; thread-safe.

    Built by :class:`multilb.worker.ClusterWorker`, which calls
    :meth:`deliver_all` at every scan and :meth:`deliver` after each
    completed job.
    """

    def __init__(self, cluster, state, octavia, settings=None):
        """:param settings: the ``[multilb]`` option group
            (``status_delivery_deadline``); without it, the default."""
        self.cluster = cluster
        self.state = state
        self.octavia = octavia
        self.deadline = getattr(settings, 'status_delivery_deadline',
                                DEFAULT_DEADLINE)
        self._lock = threading.Lock()
        self._delivering = set()
        self._warned = {}          # key -> when its last WARNING was logged
        self._not_before = 0.0
        self._backoff = 0.0

    def deliver_all(self):
        """Send every entry that is due, oldest first; True if some
        entry is left for later.

        An entry that is not delivered holds back the newer entries of its
        load balancer, never those of others; an unreachable driver agent
        ends the pass.
        """
        if time.time() < self._not_before:
            return True
        held = set()
        entries = self.state.outbox(self.cluster)
        keys = {key for key, _entry in entries}
        with self._lock:     # forget entries that left the outbox
            self._warned = {k: at for k, at in self._warned.items()
                            if k in keys}
        for key, listed in entries:
            lb_id = listed.get('lb')
            if lb_id in held:
                continue
            if not due(listed.get('delivery'), time.time()):
                held.add(lb_id)
                continue
            outcome = self._attempt(key)
            if outcome == UNAVAILABLE:
                return True
            if outcome != DONE:
                held.add(lb_id)
        return bool(held)

    def deliver(self, key):
        """Send one entry now unless an older entry of its load balancer
        is still waiting; True if it is done with (None: nothing to do)."""
        if key is None:
            return True
        if time.time() < self._not_before:
            return False
        listed = dict(self.state.outbox(self.cluster))
        if key not in listed:
            return True      # already delivered
        lb_id = listed[key].get('lb')
        if any(k < key and e.get('lb') == lb_id for k, e in listed.items()):
            return False     # the scan delivers them in order
        return self._attempt(key) == DONE

    def _attempt(self, key):
        with self._lock:
            if key in self._delivering:
                return WAITING
            self._delivering.add(key)
        try:
            # Read it again now that we own it: another thread may have
            # delivered and acknowledged it since it was listed.
            entry = self.state.outbox_entry(key)
            if entry is None:
                return DONE
            if not due(entry.get('delivery'), time.time()):
                return WAITING
            return self._send(key, entry)
        finally:
            with self._lock:
                self._delivering.discard(key)

    def _send(self, key, entry):
        try:
            self.octavia.update_status(entry['status'])
        except octavia_mod.OctaviaUnavailable as exc:
            self._backoff = min(MAX_UNAVAILABLE_BACKOFF,
                                max(FIRST_BACKOFF, self._backoff * 2))
            self._not_before = time.time() + self._backoff
            self._failed(key, entry, exc, refused=False,
                         busy=isinstance(exc, octavia_mod.OctaviaBusy))
            return UNAVAILABLE
        except octavia_mod.StatusRejected as exc:
            self._backoff = 0.0          # the driver agent answered
            return self._failed(key, entry, exc, refused=True)
        self._backoff = 0.0
        self.state.ack(key)
        with self._lock:
            self._warned.pop(key, None)
        delivery = entry.get('delivery')
        if delivery:
            LOG.info('Cluster %s: status update for load balancer %s '
                     'delivered after %d failed attempt(s) over %.0fs',
                     self.cluster, entry['lb'], delivery.get('attempts', 0),
                     time.time() - delivery.get('first_failure_at',
                                                time.time()))
        return DONE

    def _failed(self, key, entry, exc, refused, busy=False):
        """Record a failed attempt in the entry (or drop it past the
        deadline); log it as the policy says."""
        now = time.time()
        delivery = dict(entry.get('delivery') or {})
        attempts = int(delivery.get('attempts') or 0) + 1
        first = delivery.get('first_failure_at') or now
        refused_since = delivery.get('refused_since')
        if refused:
            # 0.5 s, then as long again as it has been refused: doubling
            refused_since = refused_since or now
            delay = min(MAX_BACKOFF, max(FIRST_BACKOFF, now - refused_since))
        elif busy:
            delay = max(self._backoff, BUSY_HOLD)
        else:
            delay = self._backoff
        text = error_text(exc)
        if refused and now - refused_since >= self.deadline:
            LOG.error('Cluster %s: Octavia refused the status update for '
                      'load balancer %s for %.0fs (%d attempts; [multilb] '
                      'status_delivery_deadline is %.0fs); dropping it. '
                      'Last error: %s. Status not delivered: %s',
                      self.cluster, entry['lb'], now - refused_since,
                      attempts, self.deadline, text, entry['status'])
            self.state.ack(key)
            with self._lock:
                self._warned.pop(key, None)
            return DONE
        delivery.update(first_failure_at=first, refused_since=refused_since,
                        attempts=attempts, last_attempt_at=now,
                        last_error=_PREFIX[refused, busy] + ': ' + text,
                        next_attempt_at=now + delay)
        if not self.state.record_delivery_failure(key, delivery):
            return DONE                  # acknowledged meanwhile
        with self._lock:
            last = self._warned.get(key)
            warn = last is None or now - last >= WARN_EVERY
            if warn:
                self._warned[key] = now
        LOG.log(logging.WARNING if warn else logging.DEBUG,
                'Cluster %s: status update for load balancer %s not '
                'delivered (%s, attempt %d, failing for %.0fs), will retry '
                'in %.1fs: %s', self.cluster, entry['lb'],
                _REASON[refused, busy], attempts, now - first, delay, text)
        return WAITING
