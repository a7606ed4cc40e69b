"""Prometheus metrics of the provider agent (the only prometheus_client user).

Off unless ``[multilb] metrics_port`` is set: then :func:`start`, called by
:func:`multilb.agent.run` in the provider agent process (never in
octavia-api), serves ``GET /metrics`` on ``metrics_host:metrics_port``
from a private :class:`prometheus_client.CollectorRegistry` and
:func:`stop` closes it again when the agent stops.

What one agent exports (``doc/source/admin/monitoring.rst`` lists every
metric):

* gauges of the clusters it **owns now**, computed at scrape time by
  :class:`_Collector` from its workers' memory and the state store: a
  cluster that moves to another agent disappears from this agent's output
  at the next scrape and appears in the new owner's, so gauges summed over
  all agents never count a cluster twice;
* counters and histograms labelled by cluster (apply and probe durations,
  re-applies, orphans removed), incremented by the owner's worker through
  the hooks below (:func:`timed_apply`, :func:`probed`, :func:`reapplied`,
  :func:`orphans_removed`); they are no-ops while metrics are off. An
  agent keeps exporting the counters of a cluster it lost (frozen at their
  last value), as Prometheus expects of counters;
* agent gauges: its member id, the clusters it owns, whether the state
  store answered the scrape.

Labels: ``cluster`` and ``backend`` on every cluster metric.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import weakref

import prometheus_client
from prometheus_client import core as prom_core

from multilb import exceptions

LOG = logging.getLogger(__name__)

LABELS = ('cluster', 'backend')
APPLY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                 30.0, 60.0, 120.0)
PROBE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                 10.0)
BREAKER_STATES = ('closed', 'open', 'half-open')   # pybreaker's names
OK, ERROR = 'ok', 'error'
MISSING, LATE_WRITE = 'missing', 'late_write'

_current = None        # the Metrics this process exports, or None (off)
_current_lock = threading.Lock()


def _labels(worker):
    return worker.name, str(worker.cluster.backend)


class Metrics:
    """The registry of one agent: its collector, counters and histograms.

    :param agent: the :class:`multilb.agent.Agent` (reads ``workers``,
        ``coordinator.member_id`` and ``rt.state`` at scrape time).
    """

    def __init__(self, agent):
        self.agent = agent
        self.registry = prometheus_client.CollectorRegistry()
        self.server = None
        self.thread = None
        self.apply_seconds = prometheus_client.Histogram(
            'multilb_apply_duration_seconds',
            'Seconds one apply of a load balancer graph to the cluster took '
            '(backend apply_loadbalancer, every attempt); outcome ok or '
            'error.', LABELS + ('outcome',), buckets=APPLY_BUCKETS,
            registry=self.registry)
        self.probe_seconds = prometheus_client.Histogram(
            'multilb_probe_duration_seconds',
            'Seconds one health probe of the cluster took.', LABELS,
            buckets=PROBE_BUCKETS, registry=self.registry)
        self.reapplies = prometheus_client.Counter(
            'multilb_reapplies',
            'Load balancers queued for a re-apply by the agent itself: '
            'reason missing (the cluster lost them or a node missed a '
            'change) or late_write (an agent wrote to the cluster after '
            'losing it).', LABELS + ('reason',), registry=self.registry)
        self.orphans = prometheus_client.Counter(
            'multilb_orphans_removed',
            'Orphan load balancers removed from the cluster by the orphan '
            'sweep.', LABELS, registry=self.registry)
        # worker -> (seconds, epoch, reachable) of its last probe; weak:
        # a stopped worker's entry goes with it
        self._probes = weakref.WeakKeyDictionary()
        self.registry.register(_Collector(self))

    # -- what the hooks record ---------------------------------------------

    @contextlib.contextmanager
    def timed_apply(self, worker):
        started = time.monotonic()
        outcome = ERROR
        try:
            yield
            outcome = OK
        finally:
            _record_on(self, 'observe_apply', worker, outcome,
                       time.monotonic() - started)

    def observe_apply(self, worker, outcome, seconds):
        self.apply_seconds.labels(*_labels(worker), outcome).observe(seconds)

    def probed(self, worker, seconds, reachable):
        self.probe_seconds.labels(*_labels(worker)).observe(seconds)
        self._probes[worker] = (seconds, time.time(), bool(reachable))

    def reapplied(self, worker, reason, count):
        self.reapplies.labels(*_labels(worker), reason).inc(count)

    def orphans_removed(self, sweep, count):
        backend = getattr(getattr(sweep.backend, 'cluster', None),
                          'backend', '')
        self.orphans.labels(sweep.name, str(backend)).inc(count)

    def last_probe(self, worker):
        """``(seconds, epoch, reachable)`` or None."""
        return self._probes.get(worker)

    def text(self):
        """The exposition text a scrape gets (tests, the quick start)."""
        return prometheus_client.generate_latest(self.registry).decode()

    # -- the HTTP endpoint ---------------------------------------------------

    def serve(self, host, port):
        """Listen on ``host:port``. :raises OSError: cannot bind."""
        self.server, self.thread = prometheus_client.start_http_server(
            port, addr=host, registry=self.registry)

    def close(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(5)
            self.server = self.thread = None


class _Collector:
    """Scrape-time gauges of the agent and the clusters it owns now."""

    def __init__(self, metrics):
        self.metrics = metrics

    def collect(self):
        agent = self.metrics.agent
        workers = dict(agent.workers)     # one atomic copy of the owned set
        member = agent.coordinator.member_id
        member = member.decode() if isinstance(member, bytes) else member
        info = prom_core.InfoMetricFamily(
            'multilb_agent', 'This provider agent (its member id in the '
            'agent group).', labels=('member_id',))
        info.add_metric([member or ''], {})
        yield info
        yield prom_core.GaugeMetricFamily(
            'multilb_agent_owned_clusters',
            'Clusters this agent drives now (one worker each).',
            value=len(workers))
        families = _families()
        store_ok = self._store_gauges(agent, workers, families)
        yield prom_core.GaugeMetricFamily(
            'multilb_agent_store_reachable',
            '1 if the state store answered the reads of this scrape; 0 if '
            'not (the store-based cluster gauges are then left out).',
            value=1 if store_ok else 0)
        for _name, worker in sorted(workers.items()):
            self._memory_gauges(worker, families)
        yield from families.values()

    def _memory_gauges(self, worker, families):
        labels = list(_labels(worker))
        families['max'].add_metric(labels,
                                   worker.cluster.max_loadbalancers or 0)
        families['inflight'].add_metric(labels, len(worker._inflight))
        breaker = worker.breaker
        if breaker is not None:
            state = breaker.state
            families['breaker_open'].add_metric(
                labels, 0 if state == BREAKER_STATES[0] else 1)
            for name in BREAKER_STATES:
                families['breaker_state'].add_metric(
                    labels + [name], 1 if state == name else 0)
        probe = self.metrics.last_probe(worker)
        if probe is not None:
            seconds, at, reachable = probe
            families['reachable'].add_metric(labels, 1 if reachable else 0)
            families['probe_seconds'].add_metric(labels, seconds)
            families['probe_at'].add_metric(labels, at)
        if worker.orphans is not None:
            families['orphans'].add_metric(labels,
                                           worker.orphans.outstanding())

    def _store_gauges(self, agent, workers, families):
        """Placements, pending work and outbox of the owned clusters;
        False if the store did not answer (those gauges are left out)."""
        if not workers:
            return True
        state = agent.rt.state
        now = time.time()
        rows = []
        try:
            runtime = state.cluster_runtime()
            for name, worker in sorted(workers.items()):
                labels = list(_labels(worker))
                info = runtime.get(name, {})
                pending = state.pending(name)
                ats = [i.get('at', now) for found in pending.values()
                       for i in found]
                outbox = state.outbox_entries(name)
                rows += [
                    ('placed', labels, info.get('placed', 0)),
                    ('listeners', labels, info.get('listeners', 0)),
                    ('pending_lbs', labels, len(pending)),
                    ('pending_intents', labels, len(ats)),
                    ('pending_age', labels,
                     max(0.0, now - min(ats)) if ats else 0.0),
                    ('outbox', labels, len(outbox)),
                    ('outbox_failing', labels,
                     sum(1 for e in outbox if e.get('delivery'))),
                    ('outbox_age', labels, max(0.0, now - min(
                        e['created_at'] for e in outbox)) if outbox else 0.0)]
        except exceptions.StoreUnavailable as exc:
            LOG.debug('Metrics: state store unavailable during a scrape: '
                      '%s', exc)
            return False
        for key, labels, value in rows:
            families[key].add_metric(labels, value)
        return True


_CLUSTER_GAUGES = (
    # key, name, help, extra labels
    ('placed', 'multilb_cluster_placed_loadbalancers',
     'Load balancers placed on the cluster (its capacity counter in the '
     'state store).', ()),
    ('max', 'multilb_cluster_max_loadbalancers',
     'The cluster\'s max_loadbalancers (0: no limit).', ()),
    ('listeners', 'multilb_cluster_listeners',
     'Listeners the agent applied on the cluster.', ()),
    ('breaker_open', 'multilb_cluster_breaker_open',
     '1 while the cluster\'s circuit breaker is not closed (open, or '
     'half-open during its trial call); 0 when closed.', ()),
    ('breaker_state', 'multilb_cluster_breaker_state',
     '1 for the circuit breaker\'s current state (closed, open, '
     'half-open), 0 for the others.', ('state',)),
    ('reachable', 'multilb_cluster_reachable',
     '1 if the last probe found a node of the cluster answering, else 0.',
     ()),
    ('probe_seconds', 'multilb_cluster_last_probe_duration_seconds',
     'Seconds the last probe of the cluster took.', ()),
    ('probe_at', 'multilb_cluster_last_probe_timestamp_seconds',
     'When the last probe of the cluster ended (Unix time).', ()),
    ('pending_lbs', 'multilb_cluster_pending_loadbalancers',
     'Load balancers of the cluster with pending work (intents).', ()),
    ('pending_intents', 'multilb_cluster_pending_intents',
     'Pending operations (intents) on the cluster.', ()),
    ('pending_age', 'multilb_cluster_oldest_pending_intent_age_seconds',
     'Age of the oldest pending intent of the cluster (0: none).', ()),
    ('inflight', 'multilb_cluster_jobs_in_flight',
     'Load balancer jobs the cluster\'s worker runs now.', ()),
    ('outbox', 'multilb_cluster_outbox_entries',
     'Status updates of the cluster not yet accepted by Octavia (the '
     'outbox depth).', ()),
    ('outbox_failing', 'multilb_cluster_outbox_failing_entries',
     'Outbox entries whose delivery failed at least once and are '
     'retried.', ()),
    ('outbox_age', 'multilb_cluster_oldest_outbox_entry_age_seconds',
     'Age of the oldest outbox entry of the cluster (0: empty).', ()),
    ('orphans', 'multilb_cluster_orphans',
     'Load balancers the cluster held at the last orphan sweep that are '
     'not placed on it and have no pending work there (waiting for '
     'orphan_grace_period, left by orphan_action = report, or lost by '
     'the state store).', ()),
)


def _families():
    return {key: prom_core.GaugeMetricFamily(name, text,
                                             labels=LABELS + extra)
            for key, name, text, extra in _CLUSTER_GAUGES}


# -- the agent's side -------------------------------------------------------

def start(agent, settings):
    """Serve the metrics of ``agent`` if ``settings.metrics_port`` is set.

    :param settings: the ``[multilb]`` option group.
    :returns: the :class:`Metrics` now exported (the hooks record into
        it), or None: off, or the port could not be bound (one WARNING;
        the agent works on without metrics).
    """
    port = getattr(settings, 'metrics_port', 0)
    if not port:
        return None
    host = getattr(settings, 'metrics_host', '127.0.0.1')
    metrics = Metrics(agent)
    try:
        metrics.serve(host, port)
    except (OSError, ValueError) as exc:   # in use, not allowed, bad host
        LOG.warning('Cannot serve metrics on %s port %d: %s; this agent '
                    'runs without metrics (check [multilb] metrics_host '
                    'and metrics_port: one port per agent process)', host,
                    port, exc)
        return None
    activate(metrics)
    LOG.info('Serving Prometheus metrics on http://%s/metrics',
             '[%s]:%d' % (host, port) if ':' in host else
             '%s:%d' % (host, port))
    return metrics


def stop(metrics):
    """Close what :func:`start` returned (None: nothing)."""
    if metrics is None:
        return
    deactivate(metrics)
    try:
        metrics.close()
    except Exception as exc:  # noqa: B902 - the agent stops anyway
        LOG.warning('Metrics endpoint did not close cleanly: %s', exc)


def activate(metrics):
    """Make the hooks record into ``metrics`` (tests use it directly)."""
    global _current
    with _current_lock:
        _current = metrics


def deactivate(metrics=None):
    """Hooks are no-ops again (if ``metrics`` is the active one)."""
    global _current
    with _current_lock:
        if metrics is None or _current is metrics:
            _current = None


# -- hooks: no-ops while metrics are off ------------------------------------

def _record(what, *args):
    _record_on(_current, what, *args)


def _record_on(metrics, what, *args):
    if metrics is None:
        return
    try:
        getattr(metrics, what)(*args)
    except Exception as exc:  # noqa: B902 - metrics never break the work
        LOG.debug('Metrics: %s not recorded: %s', what, exc)


def timed_apply(worker):
    """Context manager around one apply of a graph by ``worker``."""
    metrics = _current
    if metrics is None:
        return contextlib.nullcontext()
    return metrics.timed_apply(worker)


def probed(worker, seconds, reachable):
    """``worker`` probed its cluster in ``seconds``."""
    _record('probed', worker, seconds, reachable)


def reapplied(worker, reason, count=1):
    """``worker`` queued ``count`` re-applies (``MISSING``,
    ``LATE_WRITE``)."""
    if count:
        _record('reapplied', worker, reason, count)


def orphans_removed(sweep, count):
    """The orphan sweep of a cluster (:class:`multilb.reconcile.
    OrphanSweep`) removed ``count`` orphans."""
    if count:
        _record('orphans_removed', sweep, count)
