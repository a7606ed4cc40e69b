"""Caddy metrics parsing (metrics.py) and the traffic ledger (traffic.py).

The pages below have the shape Caddy 2.11.7 serves on ``GET /metrics``
(copied from a real node, trimmed); the functional tests read real ones.
"""

from backends.caddy import metrics
from backends.caddy import traffic

SERVER = 'lb-1--listener-1'


def page(requests=5, size_in=470, size_out=80, errors=0, in_flight=0,
         start=1795651334.14, reload=1795651334.69, healthy=(1, 0)):
    return '''\
# HELP caddy_config_last_reload_success_timestamp_seconds Timestamp ...
# TYPE caddy_config_last_reload_success_timestamp_seconds gauge
caddy_config_last_reload_success_timestamp_seconds %(reload)r
caddy_config_last_reload_successful 1
process_start_time_seconds %(start)r
caddy_reverse_proxy_upstreams_healthy{upstream="127.0.0.1:46087"} %(h0)d
caddy_reverse_proxy_upstreams_healthy{upstream="[2001:db8::1]:80"} %(h1)d
caddy_http_requests_total{handler="headers",server="%(s)s"} %(requests)d
caddy_http_requests_total{handler="reverse_proxy",server="%(s)s"} %(rp)d
caddy_http_requests_total{handler="static_response",server="%(s)s"} 1
caddy_http_requests_in_flight{handler="reverse_proxy",server="%(s)s"} %(fl)d
caddy_http_request_size_bytes_sum{code="200",handler="reverse_proxy",\
method="GET",server="%(s)s"} %(size_in)d
caddy_http_request_size_bytes_sum{code="200",handler="headers",\
method="GET",server="%(s)s"} 999999
caddy_http_response_size_bytes_sum{code="200",handler="reverse_proxy",\
method="GET",server="%(s)s"} %(size_out)d
caddy_http_request_duration_seconds_count{code="502",handler=\
"reverse_proxy",method="GET",server="%(s)s"} %(errors)d
caddy_http_request_duration_seconds_count{code="403",handler=\
"static_response",method="GET",server="%(s)s"} 1
caddy_admin_http_requests_total{code="200",handler="admin",method="GET",\
path="/metrics"} 2
''' % dict(reload=reload, start=start, h0=healthy[0], h1=healthy[1],
           s=SERVER, requests=requests, rp=requests - 1, fl=in_flight,
           size_in=size_in, size_out=size_out, errors=errors)


def test_counters_come_from_terminal_handlers_only():
    found = metrics.server_counters(metrics.samples(page(errors=2)))
    counters = found[SERVER]
    # 4 proxied + 1 rejected; the headers handler saw the same requests
    assert counters.requests == 5
    assert counters.bytes_in == 470 and counters.bytes_out == 80
    assert counters.errors == 2          # 5xx only: the 403 is a policy
    assert set(found) == {SERVER}


def test_upstream_health_by_dial_address():
    assert metrics.upstream_health(metrics.samples(page())) == {
        '127.0.0.1:46087': True, '[2001:db8::1]:80': False}


def test_garbage_lines_are_ignored():
    assert metrics.samples('bogus\nname{a="b"} notanumber\n\n') == []


def test_first_reading_counts_nothing_then_differences():
    ledger = traffic.TrafficLedger()
    ledger.fold('n1', metrics.samples(page(requests=5, in_flight=2)))
    first = ledger.take()[SERVER]
    assert first.total_connections == 0 and first.active_connections == 2
    ledger.fold('n1', metrics.samples(page(requests=9, size_in=900)))
    step = ledger.take()[SERVER]
    assert (step.total_connections, step.bytes_in) == (4, 430)
    assert ledger.take()[SERVER].total_connections == 0


def test_a_reload_restarts_the_counters_and_nothing_is_lost():
    ledger = traffic.TrafficLedger()
    ledger.fold('n1', metrics.samples(page(requests=5)))
    ledger.fold('n1', metrics.samples(page(requests=8)))      # +3
    # a config load: new generation, counters from zero again
    ledger.fold('n1', metrics.samples(page(requests=2, reload=1795651400.0)))
    assert ledger.take()[SERVER].total_connections == 3 + 2


def test_nodes_add_up():
    ledger = traffic.TrafficLedger()
    for node in ('n1', 'n2'):
        ledger.fold(node, metrics.samples(page(requests=5, in_flight=1)))
    ledger.fold('n1', metrics.samples(page(requests=7, in_flight=1)))
    ledger.fold('n2', metrics.samples(page(requests=6, in_flight=1,
                                           start=1795651999.0)))
    taken = ledger.take()[SERVER]
    assert taken.total_connections == 2 + 6   # n2 restarted
    assert taken.active_connections == 2
    ledger.lost('n2')
    assert ledger.take()[SERVER].active_connections == 1
