"""The multilb provider agent, run by octavia-driver-agent.

Entry point ``multilb = multilb.agent:run`` in the group
``octavia.driver_agent.provider_agents``.
octavia-driver-agent forks a process and calls :func:`run` with an
``exit_event``; if :func:`run` raises, it is called again a second later.

The agent joins the agents' group with the clusters it can drive, and every
``membership_interval`` works out which enabled clusters are its own (hash
ring over the live agents that can drive each one, see
:mod:`multilb.coordination`), takes
their locks and runs one :class:`~multilb.worker.ClusterWorker` per owned
cluster. When an agent dies its memberships and locks expire and the other
agents take its clusters over; pending work is in the state store, so
nothing is lost. Clusters that left the configuration while still holding
load balancers are shared the same way (:mod:`multilb.departed`). Each
worker is fenced (:mod:`multilb.fencing`): an agent that stalled past its
lock finds, when it resumes, that another agent claimed the cluster, and
drops the worker without writing anything more. When the live agents'
``enabled_clusters`` differ (a rolling configuration change, or a host
forgotten by one), the agent logs a WARNING naming the agents and
clusters each time the difference changes, and INFO once they agree.
"""

from __future__ import annotations

import logging
import time

from oslo_config import cfg

from multilb import coordination
from multilb import departed
from multilb import exceptions
from multilb import fencing
from multilb import metrics
from multilb import octavia as octavia_mod
from multilb import runtime
from multilb import schema
from multilb import sweep as sweep_mod
from multilb import version
from multilb import worker as worker_mod

LOG = logging.getLogger(__name__)


class Agent:
    """Owns clusters and runs their workers."""

    def __init__(self, rt, octavia=None, coordinator=None):
        self.rt = rt
        self.settings = rt.conf.multilb
        self.octavia = octavia or octavia_mod.OctaviaClient()
        self.coordinator = coordinator or coordination.Coordinator(
            self.settings.coordination_url,
            capabilities=coordination.capabilities(
                rt.clusters.clusters, self.settings.enabled_clusters,
                version.version_string()))
        self.workers = {}
        self._schema_checked = False
        self._disagreement = []
        self._unwatch = None
        self.sweep = None

    def start(self):
        self.coordinator.start()
        # New work wakes its cluster's worker at once (an etcd watch); the
        # periodic scan (poll_interval, idle_poll_interval when idle) still
        # finds what a watch missed.
        self._unwatch = self.rt.state.kv.watch_prefix('work/',
                                                      self._work_arrived)
        # Health records, fencing, late writes and the watch's backstop,
        # once for all the clusters (multilb.sweep).
        self.sweep = sweep_mod.AgentSweep(
            self.rt.state, self.settings, lambda: dict(self.workers),
            watched=self._unwatch is not None)
        self.sweep.start()
        LOG.info('multilb agent %s started; clusters enabled: %s; disabled '
                 'by configuration errors: %s',
                 self.coordinator.member_id.decode(),
                 ', '.join(sorted(self.rt.clusters.clusters)) or 'none',
                 ', '.join(sorted(self.rt.clusters.errors)) or 'none')

    def _schema_ok(self):
        """Whether the store holds the key layout this multilb reads
        (recording it on a store without one); checked until it is."""
        if self._schema_checked:
            return True
        try:
            schema.record(self.rt.state.kv)
        except exceptions.StoreUnavailable as exc:
            LOG.warning('Cannot check the state store key layout yet: %s',
                        exc)
            return False
        except exceptions.StoreSchemaError as exc:
            LOG.error('This agent drives no cluster: %s', exc)
            for name in sorted(self.workers):
                self._stop_worker(name)
            return False
        self._schema_checked = True
        return True

    def rebalance(self):
        """Start workers for clusters we now own, stop the others."""
        if not self._schema_ok():
            return
        for name in sorted(n for n, w in self.workers.items() if w.fenced):
            LOG.warning('Cluster %s: another agent took it over; dropping '
                        'its worker', name)
            self._stop_worker(name, release=False)
        try:
            names = set(self.rt.clusters.clusters) | departed.names(
                self.rt.state, self.rt.clusters)
            view = self.coordinator.view()
            owned = self.coordinator.owned(names, view)
        except exceptions.StoreUnavailable as exc:
            LOG.warning('Agent membership unknown (%s); keeping the clusters '
                        'held: %s', exc, ', '.join(sorted(self.workers)))
            return
        self._compare_cluster_lists(view)
        for name in sorted(set(self.workers) - owned):
            LOG.info('Cluster %s moved to another agent; stopping its '
                     'worker', name)
            self._stop_worker(name)
        for name in sorted(owned - set(self.workers)):
            if not self.coordinator.acquire(name):
                LOG.info('Cluster %s: lock still held by another agent; '
                         'will retry', name)
                continue
            me = self.coordinator.member_id.decode()
            try:
                ownership = fencing.Ownership(self.rt.state.kv, name, me)
                previous = ownership.claim()
                worker = self._worker(name, ownership)
                worker.watched = self._unwatch is not None
                worker.sweep = self.sweep
                worker.start()
            except Exception:
                LOG.exception('Cluster %s: worker failed to start', name)
                self.coordinator.release(name)
                continue
            self.workers[name] = worker
            LOG.info('Cluster %s is now served by agent %s%s', name, me,
                     ' (taken over from agent %s)' % previous.get('agent')
                     if previous and previous.get('agent') != me else '')

    def _compare_cluster_lists(self, view):
        """Log when the live agents' ``enabled_clusters`` start or stop
        differing from ours (once per change, not every rebalance)."""
        found = coordination.disagreements(view, self.coordinator.member_id)
        if found == self._disagreement:
            return
        self._disagreement = found
        if not found:
            LOG.info('Agent %s: every live agent has the same [multilb] '
                     'enabled_clusters again',
                     self.coordinator.member_id.decode())
            return
        for other, missing, extra in found:
            LOG.warning(
                'Agent %s has a different [multilb] enabled_clusters than '
                'agent %s: %s%s%s. Each cluster is driven only by agents '
                'that configure it; finish the configuration change on '
                'every host (see the operations guide, "Adding a '
                'cluster")', other, self.coordinator.member_id.decode(),
                'it lacks %s' % ', '.join(missing) if missing else '',
                '; ' if missing and extra else '',
                'it has %s that this agent does not' % ', '.join(extra)
                if extra else '')

    def _worker(self, name, ownership):
        cluster = self.rt.clusters.clusters.get(name)
        if cluster is None:
            return DepartedWorker(name, self.rt.state, self.octavia,
                                  self.settings, fence=ownership)
        return worker_mod.ClusterWorker(cluster, self.rt.state, self.octavia,
                                        self.settings, guard=self.rt.guard,
                                        fence=ownership)

    def _stop_worker(self, name, release=True):
        """Stop a worker; give its lock back unless another agent holds
        the cluster now (``release=False``: the lock is not ours)."""
        worker = self.workers.pop(name)
        try:
            worker.stop()
        finally:
            if release:
                self.coordinator.release(name)
            else:
                self.coordinator.forget(name)

    def _work_arrived(self, key):
        """``work/<cluster>/<lb>/<seq>`` changed: wake that worker."""
        worker = self.workers.get(key.split('/')[1] if key.count('/') > 1
                                  else '')
        if worker is not None:
            worker.wake()

    def stop(self):
        if self._unwatch is not None:
            self._unwatch()
        for name in sorted(self.workers):
            self._stop_worker(name)
        if self.sweep is not None:
            self.sweep.stop()
        self.coordinator.stop()
        LOG.info('multilb agent stopped')


class DepartedWorker(worker_mod.ClusterWorker):
    """A :class:`~multilb.worker.ClusterWorker` for a departed cluster
    (:mod:`multilb.departed`): no breaker, no probes, no health or
    statistics polling; pending work and the status outbox are handled as
    on any cluster."""

    def __init__(self, name, state, octavia, settings, fence=None):
        super().__init__(departed.config(name), state, octavia, settings,
                         fence=fence)

    def start(self):
        self.backend = departed.DepartedBackend(self.cluster)
        self._start_threads()
        LOG.warning('Cluster %s is not in [multilb] enabled_clusters but '
                    'still holds load balancers or status updates: its '
                    'load balancers can only be deleted (without touching '
                    'the appliance)', self.name)

    def probe(self, force=False):
        """Nothing to probe."""


def run(exit_event):
    """Provider-agent entry point: build, start, wait for exit, stop."""
    rt = runtime.get(cfg.CONF)
    agent = Agent(rt)
    agent.start()
    exporter = metrics.start(agent, rt.conf.multilb)
    try:
        agent.rebalance()
        # NOTE: poll is_set() instead of blocking in exit_event.wait(): a
        # process killed while waiting on a multiprocessing.Event stays
        # counted as a sleeper, and the driver agent's exit_event.set() then
        # waits for it forever, so octavia-driver-agent could not stop after
        # this agent was SIGKILLed (OOM killer, operator).
        while not exit_event.is_set():
            time.sleep(rt.conf.multilb.membership_interval)
            if not exit_event.is_set():
                agent.rebalance()
    finally:
        metrics.stop(exporter)
        agent.stop()
