"""The agent's store work done once for all its clusters.

An agent drives up to a hundred clusters; anything each worker did on its
own every few seconds cost a store request per cluster (about 1 ms of the
agent's CPU each with etcd). :class:`AgentSweep` does it for all of them:

* **Health records**: every probe hands its record to :meth:`publish`; one
  commit every :data:`FLUSH_PERIOD` (at most; half ``health_interval`` when
  that is shorter) writes the records of every cluster probed since, so the
  scheduler's view is at most that much older than the probe (it treats a
  record older than 3 x ``health_interval`` as unknown).
* **Every ``idle_poll_interval``, three prefix reads** (four with a watch):

  - ``owner/``: a worker whose cluster another agent claimed stops at once
    (:mod:`multilb.fencing`), even while it has nothing to write (its scans
    and monitor verify the key again before any write);
  - ``late/``: late writes of agents that lost a cluster, handed to the
    owning worker, which re-applies them at its next probe
    (:meth:`take_late`);
  - with a watch on new work (etcd): ``work/`` and ``outbox/``: an idle
    worker with work or undelivered statuses is woken. A watched worker
    whose last scan found nothing scans only when woken (by the watch, by
    a job that ended, or by this sweep), so a watch that missed a write
    (etcd restarting) delays that work by at most ``idle_poll_interval``.

The sweep thread never writes to a cluster and never records an outcome.
A store error postpones the round (logged once a minute).
"""

from __future__ import annotations

import json
import logging
import threading
import time

from multilb import exceptions
from multilb import fencing

LOG = logging.getLogger(__name__)

FLUSH_PERIOD = 1.0        # seconds between two health commits, at most
IN_FLIGHT = 2.0           # seconds a new work key may take to wake a worker
_LOG_EVERY = 60.0


class AgentSweep:
    """Shared periodic store work of one agent (see the module docstring).

    :param state: the agent's :class:`multilb.state.StateStore`.
    :param settings: the ``[multilb]`` option group.
    :param workers: a callable answering ``{cluster: worker}`` of the
        workers running now.
    :param watched: whether the agent watches ``work/`` (then idle watched
        workers rely on this sweep as their backstop).
    """

    def __init__(self, state, settings, workers, watched):
        self.state = state
        self.settings = settings
        self.watched = watched
        self._workers = workers
        self._lock = threading.Lock()
        self._health = {}            # cluster -> record not yet written
        self._late = {}              # cluster -> [(key, lb id, agent)]
        self._stop = threading.Event()
        self._thread = None
        self._next_sweep = 0.0
        self._logged = 0.0

    # -- what the workers call -----------------------------------------------

    def publish(self, cluster, record):
        """Record ``cluster``'s latest probe; written at the next flush
        (a newer record of the same cluster replaces it)."""
        with self._lock:
            self._health[cluster] = record

    def take_late(self, cluster):
        """``[(key, lb_id, agent), ...]`` late writes found on ``cluster``
        by the last sweep, handed over once (the worker deletes each key
        when it has re-applied the load balancer)."""
        with self._lock:
            return self._late.pop(cluster, [])

    # -- lifecycle ------------------------------------------------------------

    def start(self):
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name='multilb-agent-sweep')
        self._thread.start()

    def stop(self):
        """Stop the thread and write the health records still held."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._guarded(self.flush)

    @property
    def flush_period(self):
        return min(FLUSH_PERIOD, self.settings.health_interval / 2)

    def _loop(self):
        while not self._stop.is_set():
            self._guarded(self.flush)
            if time.monotonic() >= self._next_sweep:
                self._next_sweep = (time.monotonic() +
                                    self.settings.idle_poll_interval)
                self._guarded(self.sweep)
            self._stop.wait(self.flush_period)

    def _guarded(self, step):
        try:
            step()
        except exceptions.StoreUnavailable as exc:
            now = time.monotonic()
            if now - self._logged >= _LOG_EVERY:
                LOG.warning('Agent sweep (%s) postponed: state store '
                            'unavailable: %s', step.__name__, exc)
                self._logged = now
        except Exception:
            LOG.exception('Agent sweep (%s) failed', step.__name__)

    # -- the work -------------------------------------------------------------

    def flush(self):
        """Write the health records published since the last flush (one
        commit per 100 clusters); kept for the next flush on a store
        error, unless a newer record replaced them meanwhile."""
        with self._lock:
            records, self._health = self._health, {}
        if not records:
            return
        try:
            self.state.set_healths(records)
        except Exception:
            with self._lock:
                for cluster, record in records.items():
                    self._health.setdefault(cluster, record)
            raise

    def sweep(self):
        """One round: fencing, late writes and, when watched, work and
        status updates an idle worker has not seen."""
        workers = self._workers()
        if not workers:
            return
        self._fence(workers)
        self._collect_late(workers)
        if self.watched:
            self._wake_idle(workers)

    def _fence(self, workers):
        owners = {e.key[len(fencing.PREFIX):]: e
                  for e in self.state.kv.get_prefix(fencing.PREFIX)}
        for name, worker in sorted(workers.items()):
            fence = worker.fence
            if fence is None or worker.fenced:
                continue
            entry = owners.get(name)
            if entry is None or entry.version != fence.version:
                holder = (json.loads(entry.value).get('agent')
                          if entry is not None else None)
                worker.fence_lost(exceptions.Fenced(
                    'cluster %s is now driven by agent %s' % (
                        name, holder or '(none)')))

    def _collect_late(self, workers):
        found = {}
        for entry in self.state.kv.get_prefix(fencing.LATE):
            cluster, _sep, lb_id = entry.key[len(fencing.LATE):].partition(
                '/')
            if cluster in workers and lb_id:
                found.setdefault(cluster, []).append(
                    (entry.key, lb_id, json.loads(entry.value).get('agent')))
        with self._lock:
            self._late = found

    def _wake_idle(self, workers):
        """Wake idle workers with work or status updates older than
        :data:`IN_FLIGHT` (younger ones are most likely on their way
        through the watch; a missed one is found at the next round)."""
        waiting = set()
        now = time.time_ns()
        for prefix in ('work/', 'outbox/'):
            for entry in self.state.kv.get_prefix(prefix):
                if now - _written_ns(entry.key) >= IN_FLIGHT * 1e9:
                    waiting.add(entry.key.split('/', 2)[1])
        for name in sorted(waiting & set(workers)):
            worker = workers[name]
            if worker.idle:
                LOG.info('Cluster %s: work or status updates found by the '
                         'agent sweep (a watch missed them); scanning now',
                         name)
                worker.wake()


def _written_ns(key):
    """When a ``work/`` or ``outbox/`` key was made (its last part starts
    with :func:`multilb.state.new_seq`'s nanoseconds); 0 if it does not
    say."""
    try:
        return int(key.rsplit('/', 1)[-1].split('-', 1)[0])
    except ValueError:
        return 0
