"""Member health and listener statistics of one cluster, for Octavia.

Each :class:`~multilb.worker.ClusterWorker` has a :class:`ClusterMonitor`
with its own thread, so reading a slow cluster's health or counters never
delays that cluster's configuration work (nor any other cluster's).

Health: every ``member_health_interval`` the monitor asks the backend which
monitored members pass their checks, rolls that up with
:mod:`multilb.health` and sends Octavia the operating statuses that changed
(operating status only: provisioning status is the worker's business).
What was last sent is durable (``sent/<lb id>``, shared with the worker's
reports, see :meth:`multilb.state.State.record_sent`): an agent restart or
a takeover sends only what really changed. Clusters that do not observe
their data plane (:meth:`backends.base.ApplianceBackend.observes_health`)
have no health round.

Statistics: every ``statistics_interval`` the monitor collects the traffic
increments of every listener from the backend, adds them to the totals kept
in the state store (``stats/<lb id>``) and sends Octavia the totals that
changed. Octavia replaces its row with what it gets, so totals never go
down, whatever the appliance does with its own counters.

The monitor knows a load balancer's graph from the worker's last successful
apply (:meth:`remember`); after an agent restart it fetches the graphs of the
cluster's load balancers from Octavia, a few per round. Cached graphs hold
no TLS material (:func:`multilb.health.observable`).
"""

from __future__ import annotations

import logging
import threading
import time

from backends import exceptions as backend_exc
from multilb import exceptions
from multilb import graph as graphs
from multilb import health
from multilb import octavia as octavia_mod

LOG = logging.getLogger(__name__)

FETCH_PER_ROUND = 20   # graphs fetched from Octavia per health round
STATUS_BATCH = 50      # load balancers whose operating statuses share a call
COUNTERS = ('bytes_in', 'bytes_out', 'request_errors', 'total_connections')


class ClusterMonitor:
    """Polls one cluster's member health and listener statistics."""

    def __init__(self, cluster_name, backend, state, octavia, settings,
                 fence=None):
        """:param fence: the worker's :class:`multilb.fencing.Ownership`:
            before it sends or stores anything, a poll checks the agent
            still owns the cluster (a stalled agent that lost it reports
            neither health nor traffic the new owner counts too). A poll
            that finds nothing to report reads nothing from the store."""
        self.name = cluster_name
        self.fence = fence
        self.backend = backend
        self.state = state
        self.octavia = octavia
        self.settings = settings
        self._lock = threading.Lock()
        self._graphs = {}     # lb_id -> observable graph
        self._verdicts = {}   # member_id -> bool (last known)
        self._shown = {}      # lb_id -> {(type, id): operating status}
        #                       (a cache of the store's sent/<lb id>)
        self._totals = {}     # lb_id -> {listener_id: {counter: total}}
        self._dirty = set()   # lb ids whose totals are not stored yet
        self._active = {}     # listener_id -> active connections
        self._sent = {}       # listener_id -> last statistics record sent
        self._unsent = False  # totals Octavia may not have yet
        self._stop = threading.Event()
        self._thread = None

    # -- called by the worker ------------------------------------------------

    def remember(self, lb_id, graph):
        """The worker applied ``graph``: poll it from now on (what it
        reported is read back from the store on the next round)."""
        with self._lock:
            self._graphs[lb_id] = health.observable(graph)
            self._shown.pop(lb_id, None)

    def forget(self, lb_id):
        """The load balancer left the cluster."""
        with self._lock:
            graph = self._graphs.pop(lb_id, None)
            self._shown.pop(lb_id, None)
            self._totals.pop(lb_id, None)
            self._dirty.discard(lb_id)
        for listener in (graph or {}).get('listeners', []):
            self._sent.pop(listener['listener_id'], None)
            self._active.pop(listener['listener_id'], None)

    def overlay(self, status, graph):
        """Operating statuses of a status dict the worker is about to send,
        corrected with what health says (:func:`multilb.health.overlay`)."""
        with self._lock:
            verdicts = dict(self._verdicts)
        return health.overlay(status, graph, verdicts)

    # -- lifecycle -----------------------------------------------------------

    def start(self):
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name='multilb-monitor-%s' % self.name)
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self):
        next_health = next_stats = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_health:
                next_health = now + self.settings.member_health_interval
                self._guarded(self.poll_health)
            if now >= next_stats:
                next_stats = now + self.settings.statistics_interval
                self._guarded(self.poll_statistics)
            self._stop.wait(max(0.05, min(next_health, next_stats) -
                                time.monotonic()))

    def _guarded(self, poll):
        try:
            poll()
        except exceptions.Fenced as exc:
            LOG.warning('Cluster %s: %s stopped: %s', self.name,
                        poll.__name__, exc)
            self._stop.set()
        except (exceptions.StoreUnavailable,
                octavia_mod.OctaviaUnavailable) as exc:
            LOG.warning('Cluster %s: %s postponed: %s', self.name,
                        poll.__name__, exc)
        except Exception:
            LOG.exception('Cluster %s: %s failed', self.name, poll.__name__)

    def _verify(self):
        """Before anything is stored or sent: :raises Fenced: another
        agent owns the cluster now; :raises StoreUnavailable: cannot
        tell."""
        if self.fence is not None:
            self.fence.verify()

    # -- graphs --------------------------------------------------------------

    def _known_graphs(self):
        """``(graphs, placed ids)`` of the load balancers placed on the
        cluster, fetching a few missing graphs from Octavia; forgets the
        ones that left."""
        placed = set(self.state.cluster_lb_ids(self.name))
        with self._lock:
            gone = set(self._graphs) - placed
        for lb_id in gone:
            self.forget(lb_id)
        pending = set(self.state.pending(self.name))
        with self._lock:
            missing = sorted(placed - set(self._graphs) - pending)
        for lb_id in missing[:FETCH_PER_ROUND]:
            record = self.state.get_lb(lb_id)
            if not record or not record.get('applied'):
                continue
            graph = self.octavia.get_loadbalancer(lb_id)
            if graph is not None:
                with self._lock:
                    self._graphs.setdefault(lb_id, health.observable(graph))
        with self._lock:
            return dict(self._graphs), placed

    # -- health --------------------------------------------------------------

    def _shown_of(self, lb_id, graph):
        """``{(type, id): operating status}`` last reported for the LB."""
        with self._lock:
            if lb_id in self._shown:
                return dict(self._shown[lb_id])
        sent = self.state.get_sent(lb_id)
        shown = {(otype, oid): sent[oid][1]
                 for otype, oid, _obj, _parent in graphs.walk(graph)
                 if oid in sent and sent[oid][1]}
        with self._lock:
            if lb_id in self._graphs:
                self._shown.setdefault(lb_id, shown)
        return shown

    def poll_health(self):
        """Read member health and send Octavia what changed."""
        if not self.backend.observes_health():
            return
        known, _placed = self._known_graphs()
        if not known:
            with self._lock:
                self._verdicts.clear()     # nothing held: none to keep
            return
        try:
            verdicts = self.backend.member_health(known)
        except backend_exc.BackendError as exc:
            LOG.warning('Cluster %s: cannot read member health: %s',
                        self.name, exc)
            return
        held = {oid for graph in known.values()
                for otype, oid, _obj, _parent in graphs.walk(graph)
                if otype == 'member'}
        with self._lock:
            self._verdicts.update(verdicts)
            for member_id in set(self._verdicts) - held:
                del self._verdicts[member_id]    # the member is gone
            all_verdicts = dict(self._verdicts)
        changed = []
        for lb_id, graph in sorted(known.items()):
            shown = self._shown_of(lb_id, graph)
            status, differ = health.changes(graph, all_verdicts, shown)
            if status:
                changed.append((lb_id, status, differ))
        if changed:
            self._verify()
        for start in range(0, len(changed), STATUS_BATCH):
            self._send_health(changed[start:start + STATUS_BATCH])

    def _send_health(self, changed):
        """Deliver the operating statuses of several load balancers in
        one status call (Octavia's driver agent takes lists); if the agent
        refuses a record (it stops at the first), each load balancer's is
        sent on its own, so one bad record fails alone."""
        if len(changed) > 1:
            merged = {}
            for _lb_id, status, _differ in changed:
                for kind, records in status.items():
                    merged.setdefault(kind, []).extend(records)
            try:
                self.octavia.update_status(merged)
            except octavia_mod.StatusRejected as exc:
                LOG.warning('Cluster %s: operating statuses of %d load '
                            'balancers refused (%s); sending them one by '
                            'one', self.name, len(changed), exc)
            else:
                for lb_id, status, differ in changed:
                    self._health_sent(lb_id, status, differ)
                return
        for lb_id, status, differ in changed:
            try:
                self.octavia.update_status(status)
            except octavia_mod.StatusRejected as exc:
                LOG.warning('Load balancer %s on cluster %s: operating '
                            'status refused: %s', lb_id, self.name, exc)
                continue
            self._health_sent(lb_id, status, differ)

    def _health_sent(self, lb_id, status, differ):
        LOG.info('Load balancer %s on cluster %s: operating status %s',
                 lb_id, self.name, ', '.join(
                     '%s %s %s' % (t, i, s)
                     for (t, i), s in sorted(differ.items())))
        self.state.record_sent(lb_id, status)
        with self._lock:
            if lb_id in self._graphs:
                self._shown.setdefault(lb_id, {}).update(differ)

    # -- statistics ----------------------------------------------------------

    def _owner(self, listener_id, known):
        for lb_id, graph in known.items():
            if any(li['listener_id'] == listener_id
                   for li in graph.get('listeners', [])):
                return lb_id
        found = self.state.lookup(listener_id)
        return found[0] if found and found[1] == 'listener' else None

    def _totals_of(self, lb_id):
        with self._lock:
            if lb_id in self._totals:
                return self._totals[lb_id]
        stored = self.state.get_statistics(lb_id)
        with self._lock:
            return self._totals.setdefault(lb_id, stored)

    def poll_statistics(self):
        """Add the cluster's traffic to the totals; send what changed.

        A round in which no listener moved (no increment, no connection
        now or at the last round) and nothing waits to be stored reads
        nothing from the store: an idle fleet costs no request."""
        try:
            readings = self.backend.collect_statistics()
        except backend_exc.BackendError as exc:
            LOG.warning('Cluster %s: cannot read listener statistics: %s',
                        self.name, exc)
            return
        with self._lock:
            quiet = not (self._dirty or self._unsent or
                         any(self._active.values()))
        if quiet and not any(
                reading.active_connections or any(
                    getattr(reading, counter) > 0 for counter in COUNTERS)
                for reading in readings.values()):
            return
        known, placed = self._known_graphs()
        with self._lock:
            self._active = {}   # a listener left out has no traffic now
        for listener_id, reading in readings.items():
            lb_id = self._owner(listener_id, known)
            if lb_id is None or lb_id not in placed:
                continue
            totals = self._totals_of(lb_id)
            with self._lock:
                entry = totals.setdefault(listener_id,
                                          dict.fromkeys(COUNTERS, 0))
                for counter in COUNTERS:
                    entry[counter] += max(0, getattr(reading, counter))
                self._active[listener_id] = reading.active_connections
                self._dirty.add(lb_id)
                self._unsent = True
        self._store_totals()
        self._send_totals()

    def _store_totals(self):
        with self._lock:
            dirty = {lb_id: dict(self._totals[lb_id])
                     for lb_id in self._dirty if lb_id in self._totals}
        if not dirty:
            return
        self._verify()
        self.state.save_statistics(dirty)
        with self._lock:
            self._dirty -= set(dirty)
        # A load balancer deleted while we wrote must not keep a key.
        placed = set(self.state.cluster_lb_ids(self.name))
        if set(dirty) - placed:
            self.state.drop_statistics(set(dirty) - placed)

    def _send_totals(self):
        records = []
        with self._lock:
            if self._dirty:
                return   # never send totals the store does not have
            for lb_id, listeners in self._totals.items():
                for listener_id, entry in listeners.items():
                    record = dict(entry, id=listener_id,
                                  active_connections=self._active.get(
                                      listener_id, 0))
                    if self._sent.get(listener_id) != record:
                        records.append(record)
        if records:
            self._verify()
            self.octavia.update_statistics({'listeners': records})
        with self._lock:
            for record in records:
                self._sent[record['id']] = record
            self._unsent = False
        LOG.debug('Cluster %s: statistics of %d listeners sent', self.name,
                  len(records))
