"""Listener traffic increments from Caddy's resetting counters.

Caddy restarts every counter from zero at each config load and at each
restart (metrics.py). A node's *generation* is the pair (process start
time, last config load time), both in its metrics. The ledger remembers,
per node, the generation and the counters of its last reading:

* same generation: the increment is the difference;
* new generation: the counters restarted since the last reading, so the
  increment is the new value (the traffic between the last reading and the
  reset is lost; the backend reads a node right before each change it makes
  to keep that loss small);
* first reading of a node by this process: nothing is counted (an agent
  that took the cluster over must not count again what the previous owner
  counted).

Increments of all nodes add up until :meth:`take`. Thread-safe.
"""

from __future__ import annotations

import threading

from backends.caddy import metrics as metrics_mod
from backends import types

_START = 'process_start_time_seconds'
_RELOAD = 'caddy_config_last_reload_success_timestamp_seconds'


def generation(parsed):
    found = {name: value for name, labels, value in parsed
             if name in (_START, _RELOAD) and not labels}
    return found.get(_START), found.get(_RELOAD)


class TrafficLedger:
    """Per-node counter bookkeeping of one cluster."""

    def __init__(self):
        self._lock = threading.Lock()
        self._nodes = {}    # endpoint -> (generation, {server: Counters})
        self._carry = {}    # server -> {field: increment}
        self._active = {}   # endpoint -> {server: requests in flight}

    def fold(self, endpoint, parsed):
        """Account one reading (metrics.samples) of ``endpoint``."""
        gen = generation(parsed)
        now = metrics_mod.server_counters(parsed)
        with self._lock:
            previous = self._nodes.get(endpoint)
            self._nodes[endpoint] = (gen, now)
            self._active[endpoint] = {s: c.in_flight for s, c in now.items()}
            if previous is None:
                return
            old_gen, old = previous
            for server, counters in now.items():
                fields = counters.fields()
                if old_gen == gen and server in old:
                    before = old[server].fields()
                    fields = {k: max(0, v - before[k])
                              for k, v in fields.items()}
                carry = self._carry.setdefault(server, dict.fromkeys(
                    fields, 0))
                for key, value in fields.items():
                    carry[key] += value

    def lost(self, endpoint):
        """The node did not answer: its gauges are unknown."""
        with self._lock:
            self._active.pop(endpoint, None)

    def take(self):
        """``{server key: ListenerStats-like dict}``: the increments since
        the last take, and the requests in flight now (every node)."""
        with self._lock:
            carry, self._carry = self._carry, {}
            active = {}
            for servers in self._active.values():
                for server, value in servers.items():
                    active[server] = active.get(server, 0) + value
        found = {}
        for server in set(carry) | set(active):
            fields = carry.get(server) or {}
            found[server] = types.ListenerStats(
                listener_id=server, active_connections=active.get(server, 0),
                bytes_in=fields.get('bytes_in', 0),
                bytes_out=fields.get('bytes_out', 0),
                request_errors=fields.get('request_errors', 0),
                total_connections=fields.get('total_connections', 0))
        return found
