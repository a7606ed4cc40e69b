"""One cluster's worker in the provider agent (a bulkhead per cluster).

Each owned cluster gets a :class:`ClusterWorker`: its own scan thread, its own
small thread pool and its own backend instance, so a slow or broken cluster
never delays another. A scan delivers the cluster's status outbox, then hands
every load balancer with pending intents to the pool (one job per load
balancer at a time). A job (:mod:`multilb.jobs`) waits until Octavia has
committed what the intents describe, applies the whole load balancer with the
backend, and records the outcome and the status update in one commit before
delivering it. Probing and resync are :mod:`multilb.probing`; ownership of
the cluster is fenced (:mod:`multilb.fencing`).
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time

from backends import transport
from multilb import addresses
from multilb import exceptions
from multilb import fencing
from multilb import jobs
from multilb import metrics
from multilb import monitor as monitor_mod
from multilb import moves
from multilb import moving
from multilb import outbox as outbox_mod
from multilb import probing
from multilb import reconcile
from multilb import status as statuses

LOG = logging.getLogger(__name__)

_MAX_BACKOFF = 30.0
_STORE_LOG_EVERY = 30.0


def _project(intents):
    """The project whose work ``intents`` are ('' if not recorded)."""
    return next((i['project'] for i in intents if i.get('project')), '')


class ClusterWorker(jobs.LoadBalancerJobs, moving.MoveJobs,
                    probing.ProbingMixin):
    """Applies pending work and delivers statuses for one cluster."""

    def __init__(self, cluster, state, octavia, settings, guard=None,
                 fence=None):
        """:param settings: the ``[multilb]`` option group (poll_interval,
        commit_wait_timeout, apply_retry_timeout, workers_per_cluster).
        :param guard: the :class:`multilb.addresses.AddressGuard` every
            graph passes before it reaches the backend (default: the fixed
            refusals only).
        :param fence: the agent's :class:`multilb.fencing.Ownership` of
            the cluster (None: unfenced, as in single-process tests)."""
        self.cluster = cluster
        self.guard = guard or addresses.AddressGuard()
        self.name = cluster.name
        self.fence = fence
        self.fenced = False
        self.state = (fencing.FencedState(state, fence) if fence is not None
                      else state)
        self.octavia = octavia
        self.settings = settings
        self.backend = None
        self.breaker = None
        self.monitor = None
        self.orphans = None
        self._stop = threading.Event()
        self._wake = threading.Event()   # a job ended: a slot is free
        self.watched = False   # the agent wakes us when work is written
        self.sweep = None      # the agent's multilb.sweep.AgentSweep
        self._idle = False     # the last scan found nothing to do
        self._scanned_at = 0.0
        self._served = {}                # project -> last dispatch (fairness)
        self._thread = None
        self._pool = None
        self._lock = threading.Lock()
        self._inflight = set()
        self._not_before = {}
        self._failures = {}
        self.outbox = outbox_mod.Outbox(cluster.name, state, octavia, settings)
        self._next_probe = 0.0
        self._next_resync = 0.0
        self._resyncing = False
        self._last_reachable = None
        self._errors = []
        self._store_logged = 0.0

    @property
    def workers(self):
        """Parallel applies: the cluster's ``workers`` (or its backend's
        figure), else ``[multilb] workers_per_cluster``."""
        return self.cluster.workers or self.settings.workers_per_cluster

    @property
    def apply_retry_timeout(self):
        """How long a change the cluster answers as unavailable is
        retried: the cluster's ``apply_retry_timeout``, else ``[multilb]
        apply_retry_timeout``."""
        own = self.cluster.apply_retry_timeout
        return self.settings.apply_retry_timeout if own is None else own

    def wake(self):
        """Scan now (new work was written for this cluster)."""
        self._wake.set()

    @property
    def idle(self):
        """Whether the last scan found nothing pending and nothing
        undelivered (a watched idle worker scans only when woken)."""
        return self._idle

    # -- lifecycle ---------------------------------------------------------

    def start(self):
        cluster = self.cluster
        self.breaker = transport.ClusterBreaker(
            self.name, fail_max=cluster.breaker_fail_max,
            reset_timeout=cluster.breaker_reset_timeout,
            success_threshold=cluster.breaker_success_threshold,
            store=self.state.breaker_record(self.name),
            on_change=self._breaker_changed)
        self.backend = cluster.backend_class(cluster)
        self.backend.breaker = self.breaker
        self.backend.start()
        self.orphans = reconcile.OrphanSweep(
            self.name, self.state, self.backend, self.octavia, self.settings)
        self._start_threads()
        self.monitor = monitor_mod.ClusterMonitor(
            self.name, self.backend, self.state, self.octavia, self.settings,
            fence=self.fence)
        self.monitor.start()
        LOG.info('Cluster %s: worker started (backend %s)', self.name,
                 self.cluster.backend)

    def _start_threads(self):
        """The job pool and the scan thread."""
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.workers,
            thread_name_prefix='multilb-%s' % self.name)
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name='multilb-scan-%s' % self.name)
        self._thread.start()

    def stop(self):
        """Stop scanning, let running jobs finish, release the backend."""
        self._stop.set()
        self._wake.set()
        if self.monitor is not None:
            self.monitor.stop()
        if self._thread is not None:
            self._thread.join()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if self.backend is not None:
            self.backend.stop()
        LOG.info('Cluster %s: worker stopped', self.name)

    def _loop(self):
        store_down_since = None
        woken = True
        while not self._stop.is_set():
            store_error = None
            steps = ((self.scan, self.probe) if self._scan_due(woken)
                     else (self.probe,))
            for step in steps:
                try:
                    step()
                except exceptions.Fenced as exc:
                    self.fence_lost(exc)
                    return
                except exceptions.StoreUnavailable as exc:
                    store_error = exc
                except Exception:
                    LOG.exception('Cluster %s: %s failed', self.name,
                                  step.__name__)
            now = time.monotonic()
            if store_error is not None:
                # once, then every _STORE_LOG_EVERY seconds, not every poll
                if store_down_since is None or (
                        now - self._store_logged >= _STORE_LOG_EVERY):
                    LOG.warning('Cluster %s: state store unavailable, '
                                'work waits: %s', self.name, store_error)
                    self._store_logged = now
                store_down_since = store_down_since or now
            elif store_down_since is not None:
                LOG.info('Cluster %s: state store reachable again after '
                         '%.0fs', self.name, now - store_down_since)
                store_down_since = None
            woken = self._wake.wait(self._pause())
            self._wake.clear()

    def _scan_due(self, woken):
        """Whether this round scans (or only probes): always, unless the
        cluster is watched, idle and not woken. Then never when the
        agent's sweep (:mod:`multilb.sweep`) looks for work a watch missed
        every ``idle_poll_interval`` and wakes us; without one, when the
        last scan is older than ``idle_poll_interval``."""
        if woken or not (self.watched and self._idle):
            return True
        if self.sweep is not None:
            return False
        return (time.monotonic() - self._scanned_at >=
                self.settings.idle_poll_interval)

    def _pause(self):
        """Seconds until the next round: ``poll_interval``; when the agent
        watches for new work (``watched``: it wakes this worker) and the
        last scan found nothing pending or undelivered, up to
        ``idle_poll_interval``, but never past the next probe (a round
        then only probes, see :meth:`_scan_due`)."""
        interval = self.settings.poll_interval
        if not (self.watched and self._idle):
            return interval     # (jobs in flight keep their work pending)
        until_probe = self._next_probe - time.time()
        return max(interval, min(self.settings.idle_poll_interval,
                                 until_probe))

    def _apply_graph(self, desired):
        """One apply of a graph (:mod:`multilb.jobs`), timed for
        :mod:`multilb.metrics`."""
        with metrics.timed_apply(self):
            super()._apply_graph(desired)

    def _verify(self):
        """Before a write to the cluster: :raises Fenced: another agent
        owns it now; :raises StoreUnavailable: cannot tell."""
        if self.fence is not None:
            self.fence.verify()

    def fence_lost(self, exc, lb_id=None):
        """Another agent owns the cluster: stop at once (the agent then
        drops this worker, see :meth:`multilb.agent.Agent.rebalance`).
        Called by this worker's jobs and scans, and by the agent's sweep
        (:mod:`multilb.sweep`) when the owner record changed; idempotent.
        ``lb_id``: the load balancer this agent may have just written to
        the cluster; the new owner is told to re-apply it."""
        with self._lock:
            first, self.fenced = not self.fenced, True
        if first:
            LOG.error('Cluster %s: %s; this agent stops driving it at once '
                      '(work in flight is not recorded)', self.name, exc)
        if lb_id is not None:
            fencing.report_late_write(self.state.kv, self.name, lb_id,
                                      self.fence.agent)
        self._stop.set()
        self._wake.set()

    def _note_error(self):
        with self._lock:
            self._errors.append(time.time())

    # -- scanning ----------------------------------------------------------

    def scan(self):
        """Deliver the outbox, then dispatch load balancers with work.

        At most one job per free worker slot is dispatched, chosen fairly
        (:meth:`_fair_order`): one project's churn waits its turn instead
        of filling the queue ahead of everybody else's work.
        """
        self._scanned_at = time.monotonic()
        self._verify()
        left = self.deliver_outbox()
        now = time.time()
        refusing = self.breaker is not None and self.breaker.refusing()
        ready = {}
        pending = self.state.pending(self.name)
        self._idle = not (left or pending)
        for lb_id, intents in pending.items():
            if refusing and now - min(i['at'] for i in intents) < min(
                    self.settings.commit_wait_timeout,
                    self.apply_retry_timeout):
                continue   # no Octavia read for work that cannot go on yet
            ready[lb_id] = intents
        with self._lock:
            ready = {lb_id: intents for lb_id, intents in ready.items()
                     if lb_id not in self._inflight
                     and self._not_before.get(lb_id, 0) <= now}
            free = self.workers - len(self._inflight)
            chosen = self._fair_order(ready)[:max(0, free)]
            for lb_id in chosen:
                self._inflight.add(lb_id)
                project = _project(ready[lb_id])
                self._served[project] = time.monotonic()
        for lb_id in chosen:
            self._pool.submit(self._job, lb_id)

    def _fair_order(self, ready):
        """Load balancer ids in dispatch order: round robin over projects,
        the project served least recently first, each project's oldest
        work first."""
        queues = {}
        for lb_id, intents in sorted(
                ready.items(), key=lambda kv: min(i['at'] for i in kv[1])):
            queues.setdefault(_project(intents), []).append(lb_id)
        projects = sorted(queues, key=lambda p: (
            self._served.get(p, 0.0),
            min(i['at'] for i in ready[queues[p][0]])))
        order = []
        while queues:
            for project in projects:
                if queues.get(project):
                    order.append(queues[project].pop(0))
                    if not queues[project]:
                        del queues[project]
        return order

    def _job(self, lb_id):
        """One job per load balancer at a time. Its intents are read again
        here, holding the in-flight slot: the scan's snapshot may predate
        the end of the previous job (whose intents are then done)."""
        intents = []
        try:
            intents = self.state.pending(self.name, lb_id).get(lb_id)
            if intents:
                self.process(lb_id, intents)
        except exceptions.Fenced as exc:
            self.fence_lost(exc, lb_id)
        except exceptions.Moved as exc:
            LOG.info('Load balancer %s on cluster %s: %s meanwhile; its '
                     'pending work goes there', lb_id, self.name, exc)
        except exceptions.StoreUnavailable as exc:
            LOG.warning('Load balancer %s on cluster %s: state store '
                        'unavailable, will retry: %s', lb_id, self.name, exc)
            self._backoff(lb_id)
        except Exception:
            LOG.exception('Load balancer %s on cluster %s: unexpected '
                          'failure', lb_id, self.name)
            if not intents or not self._give_up(lb_id, intents):
                self._backoff(lb_id)
        finally:
            with self._lock:
                self._inflight.discard(lb_id)
            self._wake.set()

    def _backoff(self, lb_id, at_least=0.0):
        """Next attempt after 0.5 s doubling up to 30 s, or later when the
        cluster asked for it (``Retry-After``; an open breaker's wait)."""
        with self._lock:
            failures = self._failures.get(lb_id, 0) + 1
            self._failures[lb_id] = failures
            self._not_before[lb_id] = time.time() + max(min(
                _MAX_BACKOFF, 0.5 * 2 ** (failures - 1)), min(
                    _MAX_BACKOFF, at_least or 0.0))

    def _give_up(self, lb_id, intents):
        """Last resort for a failure that keeps happening: report ERROR.

        Past both deadlines, a load balancer whose processing keeps failing
        for an unexpected reason gets its targets reported ERROR (parents
        ACTIVE) so that nothing stays PENDING_* for good.
        """
        deadline = (self.settings.commit_wait_timeout +
                    self.apply_retry_timeout)
        if any(i['op'] in (moves.MOVE, moves.EVICT) for i in intents):
            return False    # nothing to report: retried until done
        if time.time() - min(i['at'] for i in intents) < deadline:
            return False
        LOG.error('Load balancer %s on cluster %s: giving up on %s after '
                  '%.0fs; reporting ERROR', lb_id, self.name,
                  jobs.describe(intents), deadline)
        try:
            status = self._failure_status(lb_id, intents)
            key = self.state.complete(lb_id, self.name, intents,
                                      status=status)
        except exceptions.StoreUnavailable:
            return False
        self._forget(lb_id)
        self._deliver(key)
        return True

    def _failure_status(self, lb_id, intents):
        """ERROR for the targets, ACTIVE for what the API locked above them.

        Uses the committed graph when Octavia answers, else what the intents
        themselves say (the LB and each target's recorded parent).
        """
        record = self.state.get_lb(lb_id) or {'id': lb_id}
        try:
            graph = self.octavia.get_loadbalancer(lb_id)
            if graph is not None:
                return statuses.for_intents(intents, graph, record, ok=False)
        except Exception:  # noqa: B902 - this is the last resort path
            LOG.exception('Load balancer %s on cluster %s: cannot build the '
                          'failure status from the graph', lb_id, self.name)
        return statuses.failure_from_intents(lb_id, intents, record)

    def _forget(self, lb_id):
        with self._lock:
            self._failures.pop(lb_id, None)
            self._not_before.pop(lb_id, None)

    def deliver_outbox(self):
        """True if some status update is left for a later scan."""
        return self.outbox.deliver_all()

    def _deliver(self, key):
        return self.outbox.deliver(key)
