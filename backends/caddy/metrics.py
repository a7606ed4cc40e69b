"""Caddy's Prometheus metrics (``GET /metrics`` of the admin API) -> the
figures multilb reports. Pure functions, no I/O.

Facts this relies on (checked against Caddy 2.11.7):

* per-server HTTP metrics exist only for servers with ``"metrics": {}``
  (translate.py sets it on every server); each handler of the chain that a
  request runs through counts it, labelled ``handler`` and ``server`` (the
  server's key, ``<lb id>--<listener id>``);
* every request of a multilb server ends in exactly one *terminal* handler,
  ``reverse_proxy`` or ``static_response`` (REJECT, redirects, 503, refused
  CIDRs); ``headers`` (HSTS) runs before one, so only terminal handlers are
  counted;
* **every config load (any change on the node) starts a new metrics
  registry: all counters restart from zero**, as they do when the node
  restarts;
* ``caddy_reverse_proxy_upstreams_healthy{upstream="<dial>"}`` is 1 or 0
  for every upstream, refreshed every 10 seconds, and keyed by the dial
  address only (shared by every load balancer of the node that uses it).
"""

from __future__ import annotations

import dataclasses
import re

TERMINAL_HANDLERS = frozenset(('reverse_proxy', 'static_response'))

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


@dataclasses.dataclass
class Counters:
    """Raw counters of one server on one node, since its last reset."""

    requests: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    errors: int = 0
    in_flight: int = 0

    def fields(self):
        return {'total_connections': self.requests,
                'bytes_in': self.bytes_in, 'bytes_out': self.bytes_out,
                'request_errors': self.errors}


def samples(text):
    """``[(name, {label: value}, float)]`` of a Prometheus text page."""
    found = []
    for line in (text or '').splitlines():
        if not line or line.startswith('#'):
            continue
        match = _SAMPLE.match(line)
        if not match:
            continue
        name, labels, value = match.groups()
        try:
            number = float(value)
        except ValueError:
            continue
        found.append((name, dict(_LABEL.findall(labels or '')), number))
    return found


def server_counters(parsed):
    """``{server key: Counters}`` from :func:`samples`."""
    found = {}
    for name, labels, value in parsed:
        if labels.get('handler') not in TERMINAL_HANDLERS:
            continue
        server = labels.get('server')
        if not server:
            continue
        counters = found.setdefault(server, Counters())
        value = int(value)
        if name == 'caddy_http_requests_total':
            counters.requests += value
        elif name == 'caddy_http_requests_in_flight':
            counters.in_flight += value
        elif name == 'caddy_http_request_size_bytes_sum':
            counters.bytes_in += value
        elif name == 'caddy_http_response_size_bytes_sum':
            counters.bytes_out += value
        elif (name == 'caddy_http_request_duration_seconds_count'
              and labels.get('code', '').startswith('5')):
            counters.errors += value
    return found


def upstream_health(parsed):
    """``{dial address: bool}`` from :func:`samples`."""
    return {labels['upstream']: value >= 1
            for name, labels, value in parsed
            if name == 'caddy_reverse_proxy_upstreams_healthy'
            and 'upstream' in labels}
