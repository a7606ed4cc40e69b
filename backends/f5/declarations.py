"""One declaration at a time per device, coalescing what waits.

AS3 runs one declaration at a time on a device (a second one is refused
with 503 until the first ends, and declarations take 30-180 s on loaded
devices). :class:`DeclarationQueue` keeps the changes callers submit
(``(tenant, application) -> Application or None``, None = remove it) and
sends them from one thread:

* all pending additions and replacements of one tenant go in one
  per-application declaration (``POST /declare/<tenant>/applications``);
  tenants take turns, oldest change first; removals go one by one
  (``DELETE .../applications/<app>``: AS3 has no batch form of it),
  except when they remove every application the tenant holds (read from
  the device first): then one ``DELETE /declare/<tenant>`` does;
* the first change after an idle spell waits ``gather`` seconds (0.2)
  for the others of its burst;
* a newer change of an application replaces its pending one (its waiters
  get the newer outcome: the newer graph is what the cluster must hold);
* busy (the device lock) puts the changes back and waits, doubling the
  wait from ``busy_wait`` up to ``busy_wait_max``; no error reaches the
  callers for it until their own ``timeout`` ends;
* a declaration AS3 rejects (422) for several applications is split and
  sent again one application at a time, so only the bad one fails.

Callers block in :meth:`submit` until their change is on the device, was
refused, or ``timeout`` passed: then the change is withdrawn unless its
declaration is already running, and BackendUnavailable tells the agent to
retry. A retry of a change that timed out keeps its original place (the
oldest change goes first), so waiting never starves a load balancer.
"""

from __future__ import annotations

import logging
import threading
import time

from backends import exceptions

LOG = logging.getLogger(__name__)


class _Change:
    __slots__ = ('tenant', 'app', 'body', 'since', 'done', 'error', 'lb',
                 'withdrawn')

    def __init__(self, tenant, app, body, lb):
        self.tenant, self.app, self.body, self.lb = tenant, app, body, lb
        self.since = time.monotonic()
        self.done = threading.Event()
        self.error = None
        self.withdrawn = False

    def finish(self, error=None):
        if self.done.is_set():
            return          # the first outcome stands
        self.error = error
        self.done.set()


class DeclarationQueue:
    """Pending AS3 changes of one device (see the module docstring).

    :param client: the device's :class:`backends.f5.client.AS3Client`
        (or a callable answering it, for a device that can change: the
        active member of an HA pair).
    :param schema_version: ``schemaVersion`` of every declaration.
    :param name: the cluster's name, for logs.
    """

    def __init__(self, client, schema_version, name, busy_wait=2.0,
                 busy_wait_max=30.0, sleep=None, gather=0.2):
        self._client = client if callable(client) else (lambda: client)
        self.schema_version = schema_version
        self.name = name
        self.busy_wait = busy_wait
        self.busy_wait_max = busy_wait_max
        self.gather = gather
        self._cond = threading.Condition()
        self._pending = {}     # (tenant, app) -> [_Change, waiters...]
        self._since = {}       # (tenant, app) -> first submit (withdrawn)
        self._stopping = False
        self._thread = None
        self._sleep = sleep
        self.sent = 0          # declarations sent (tests, benchmarks)
        self.busy_seen = 0

    # -- callers -----------------------------------------------------------

    def start(self):
        with self._cond:
            self._stopping = False
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, daemon=True,
                    name='f5-declarations-%s' % self.name)
                self._thread.start()

    def stop(self):
        with self._cond:
            self._stopping = True
            waiting = [c for group in self._pending.values() for c in group]
            self._pending.clear()
            self._cond.notify_all()
        for change in waiting:
            change.finish(exceptions.BackendUnavailable(
                'cluster %s: backend stopped' % self.name))

    def submit(self, tenant, app, body, timeout, lb=None):
        """Queue a change and wait for its outcome.

        :param body: the Application, or None to remove it.
        :raises BackendRejected: AS3 refused it.
        :raises BackendUnavailable: not done within ``timeout`` seconds.
        """
        change = _Change(tenant, app, body, lb)
        key = (tenant, app)
        with self._cond:
            if self._stopping:
                raise exceptions.BackendUnavailable(
                    'cluster %s: backend stopped' % self.name)
            change.since = self._since.pop(key, change.since)
            group = self._pending.get(key)
            if group:
                # the newer change is the one to send; everyone waiting
                # for the older one gets its outcome
                change.since = group[0].since
                group.insert(0, change)
            else:
                self._pending[(tenant, app)] = [change]
            self._cond.notify_all()
        if not change.done.wait(timeout) and self._withdraw(change):
            raise exceptions.BackendUnavailable(
                'cluster %s: change of %s/%s not on the device after %.0f '
                's (device busy or slow); withdrawn' % (
                    self.name, tenant, app, timeout))
        change.done.wait()
        if change.error is not None:
            raise change.error

    def _withdraw(self, change):
        """Take a change that timed out out of the queue, with the older
        changes of its application it replaced (their waiters get the
        same answer); False when its declaration is running or done (the
        caller takes that outcome)."""
        key = (change.tenant, change.app)
        with self._cond:
            group = self._pending.get(key)
            if group is None or change not in group:
                # being sent: if the device turns it away busy, it is not
                # put back (see _put_back); else its outcome stands
                change.withdrawn = True
                return False
            del self._pending[key]
            self._since[key] = min(c.since for c in group)
        error = exceptions.BackendUnavailable(
            'cluster %s: change of %s/%s withdrawn: a newer one timed out'
            % (self.name, change.tenant, change.app))
        _finish([c for c in group if c is not change], error)
        return True

    def pending(self):
        with self._cond:
            return len(self._pending)

    # -- the sender ----------------------------------------------------------

    def _take(self):
        """The next batch: ``(tenant, [groups to add], [groups to
        remove])`` of the tenant with the oldest pending change."""
        with self._cond:
            idle = not self._pending
            while not self._pending and not self._stopping:
                self._cond.wait()
            if idle and self.gather and not self._stopping:
                # the first change of a burst: let its fellows arrive
                self._cond.wait_for(lambda: self._stopping,
                                    timeout=self.gather)
            if self._stopping:
                return None
            oldest = min(self._pending.values(), key=lambda g: g[0].since)
            tenant = oldest[0].tenant
            keys = [k for k in self._pending if k[0] == tenant]
            groups = [self._pending.pop(k) for k in keys]
        adds = [g for g in groups if g[0].body is not None]
        removes = [g for g in groups if g[0].body is None]
        return tenant, adds, removes

    def _put_back(self, groups):
        withdrawn = [g for g in groups if g[0].withdrawn]
        groups = [g for g in groups if not g[0].withdrawn]
        with self._cond:
            for group in withdrawn:
                key = (group[0].tenant, group[0].app)
                self._since[key] = min(c.since for c in group)
        for group in withdrawn:
            _finish(group, exceptions.BackendUnavailable(
                'cluster %s: change of %s/%s withdrawn: not on the device '
                'in time (device busy)' % (self.name, group[0].tenant,
                                           group[0].app)))
        with self._cond:
            for group in groups:
                key = (group[0].tenant, group[0].app)
                newer = self._pending.get(key)
                # a change submitted meanwhile is newer: it goes first
                self._pending[key] = (newer or []) + group
                self._pending[key][0].since = min(
                    c.since for c in self._pending[key])

    def _run(self):
        wait = self.busy_wait
        while True:
            batch = self._take()
            if batch is None:
                return
            tenant, adds, removes = batch
            left = []
            busy = False
            try:
                if adds:
                    left = self._declare(tenant, adds)
                elif len(removes) > 1 and self._removes_all(tenant,
                                                            removes):
                    left, removes = self._remove_tenant(tenant, removes), []
                for n, group in enumerate(removes):
                    if left:
                        left += removes[n:]
                        break
                    left = self._remove(tenant, group)
            except Exception as exc:  # noqa: B902 - never let the thread die
                LOG.exception('Cluster %s: declaration sender failed',
                              self.name)
                for group in adds + removes:
                    _finish(group, exceptions.BackendUnavailable(
                        'cluster %s: %s' % (self.name, exc)))
                continue
            busy = bool(left)
            if busy:
                self.busy_seen += 1
                self._put_back(left)
                LOG.info('Cluster %s: device busy (another declaration '
                         'runs); %d change(s) wait %.0f s', self.name,
                         len(left), wait)
                self._pause(wait)
                wait = min(wait * 2, self.busy_wait_max)
            else:
                wait = self.busy_wait

    def _pause(self, seconds):
        if self._sleep is not None:
            self._sleep(seconds)
            return
        with self._cond:
            self._cond.wait_for(lambda: self._stopping, timeout=seconds)

    def _send(self, groups, call, split=None):
        """One declaration (``call()``) for ``groups``; answers the groups
        to send again (busy). ``split(error)``: what to do instead of
        failing them all when AS3 refuses a declaration of several."""
        try:
            self.sent += 1
            call()
        except exceptions.BackendRejected as exc:
            if split is not None and len(groups) > 1:
                return split(exc)
            error = exc
        except exceptions.BackendUnavailable as exc:
            if getattr(exc, 'busy', False):
                return groups
            error = exc
        else:
            error = None
        for group in groups:
            _finish(group, error)
        return []

    def _declare(self, tenant, groups):
        """Send the applications of ``groups``; answer the groups to send
        again (busy)."""
        apps = {g[0].app: g[0].body for g in groups}

        def one_by_one(exc):
            LOG.warning('Cluster %s: AS3 refused the declaration of %d '
                        'applications of tenant %s (%s); sending them one '
                        'by one', self.name, len(groups), tenant, exc)
            left = []
            for group in groups:
                if left:
                    left.append(group)
                    continue
                left = self._declare(tenant, [group])
            return left

        return self._send(groups, lambda: self._client().declare_applications(
            tenant, apps, self.schema_version), split=one_by_one)

    def _removes_all(self, tenant, removes):
        """Whether ``removes`` name every application ``tenant`` holds
        (read from the device: a tenant-wide removal must never take an
        application nobody asked to remove)."""
        try:
            held = self._client().applications(tenant)
        except exceptions.BackendError as exc:
            LOG.debug('Cluster %s: tenant %s not listed (%s); removing its '
                      'applications one by one', self.name, tenant, exc)
            return False
        return bool(held) and held <= {g[0].app for g in removes}

    def _remove_tenant(self, tenant, groups):
        """One declaration removing ``tenant`` with every application
        in it; answers the groups to send again (busy)."""
        left = self._send(groups,
                          lambda: self._client().delete_tenant(tenant))
        if not left and not any(g[0].error for g in groups):
            LOG.info('Cluster %s: tenant %s removed with its %d '
                     'applications in one declaration', self.name, tenant,
                     len(groups))
        return left

    def _remove(self, tenant, group):
        return self._send([group], lambda: self._client().delete_application(
            tenant, group[0].app))


def _finish(group, error):
    for change in group:
        change.finish(error)
