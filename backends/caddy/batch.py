"""Group commit of load balancer changes to one Caddy node.

Every write to a Caddy node's config reloads the whole node: each tenant's
servers are provisioned again and their metrics restart. When many load
balancers on one node change at once (a burst of member updates by one
project, a resync), writing each one's servers separately reloads the node
once per listener of each of them, and every other tenant pays for it.

A :class:`NodeBatcher` turns the changes that arrive while a write is in
flight into one write: a caller that finds no write in flight becomes the
*leader* and writes everything queued (its own change and those of the
callers that arrived meanwhile) as at most three requests — the
certificates the batch adds, the whole ``apps.http.servers`` object, the
certificates it no longer needs. Changes that arrive during that write
wait for it, then the first of them leads the next batch; every caller
gets the outcome of its own change and no caller writes more than one
batch. A write the node rejects (one
tenant's bad config fails the whole load) is retried change by change, so
only the change that is really wrong fails.

Replacing the whole servers object is safe because one agent owns a
cluster and its backend serialises the writes to each node; multilb never
rewrites servers of load balancers outside the batch (their JSON is written
back as read).
"""

from __future__ import annotations

import threading

from backends import exceptions

SEPARATOR = '--'


def _lb_of(name):
    return (name or '').split(SEPARATOR, 1)[0]


class Change:
    """What one load balancer needs on the node (empty: nothing, i.e. a
    delete)."""

    def __init__(self, lb_id, servers, certificates):
        self.lb_id = lb_id
        self.servers = servers
        self.certificates = certificates
        self.done = threading.Event()
        self.wake = threading.Event()    # done, or promoted to leader
        self.error = None


class NodeBatcher:
    """Group commit of :class:`Change` s to one node (see the module
    docstring).

    :param client: the node's :class:`backends.caddy.client.CaddyClient`.
    :param lock: held while a batch is written (the backend's per-node
        lock: its statistics reads take it too).
    :param before_write: called, holding ``lock``, before each batch's
        first write (the backend reads the node's traffic counters there:
        a write resets them).
    """

    def __init__(self, client, lock=None, before_write=None):
        self.client = client
        self.lock = lock or threading.Lock()
        self.before_write = before_write
        self._lock = threading.Lock()
        self._queue = []
        self._leading = False
        self.writes = 0
        """Config writes sent to the node (each one reloads it)."""
        self.batches = 0

    def apply(self, lb_id, servers, certificates):
        """Make the node hold exactly ``servers`` and ``certificates`` for
        ``lb_id``; blocks until written.

        :param servers: ``{server name: server JSON}``.
        :param certificates: ``{@id: load_pem entry}``.
        :raises BackendError: the outcome for this change.
        """
        change = Change(lb_id, servers, certificates)
        with self._lock:
            self._queue.append(change)
            if not self._leading:
                self._leading = True
                change.wake.set()
        change.wake.wait()
        if not change.done.is_set():
            self._lead()
        if change.error is not None:
            raise change.error

    def _lead(self):
        """Write one batch (it holds the leader's own change), then hand
        the lead to the first change queued meanwhile, if any."""
        with self._lock:
            batch, self._queue = self._queue, []
        try:
            with self.lock:
                self._write_batch(batch)
        finally:
            for change in batch:
                change.done.set()
                change.wake.set()
            with self._lock:
                if self._queue:
                    self._queue[0].wake.set()
                else:
                    self._leading = False

    def _write_batch(self, batch):
        self.batches += 1
        if self.before_write is not None:
            self.before_write()
        try:
            self._write(batch)
        except exceptions.BackendRejected as exc:
            if len(batch) == 1:
                batch[0].error = exc
                return
            for change in batch:       # find the change that is wrong
                try:
                    self._write([change])
                except exceptions.BackendError as one:
                    change.error = one
        except exceptions.BackendError as exc:
            for change in batch:
                change.error = exc

    def _write(self, batch):
        """At most three writes for the whole batch (see the module
        docstring); nothing is written when the node already matches."""
        lbs = {change.lb_id for change in batch}
        wanted_certs = {}
        for change in batch:
            wanted_certs.update(change.certificates)
        present = self.client.get_certificates()
        present_ids = {entry.get('@id') for entry in present}
        added = [entry for object_id, entry in sorted(wanted_certs.items())
                 if object_id not in present_ids]
        certificates = present + added
        if added:
            self._send(self.client.replace_certificates, certificates)
        current = self.client.get_servers()
        servers = {name: server for name, server in current.items()
                   if _lb_of(name) not in lbs}
        for change in batch:
            servers.update(change.servers)
        if servers != current:
            self._send(self.client.replace_servers, servers)
        kept = [entry for entry in certificates
                if _lb_of(entry.get('@id')) not in lbs
                or entry.get('@id') in wanted_certs]
        if len(kept) != len(certificates):
            self._send(self.client.replace_certificates, kept)

    def _send(self, write, value):
        self.writes += 1
        write(value)
