"""Error answers of a real Caddy node, provoked on purpose.

:func:`provoke` sends each request of :data:`CASES` to a running
:class:`tools.localstack.caddy.CaddyNode` (through a plain Transport, no
classification) and returns what the node answered. The unit tests read
the answers captured once, kept in
``tests/unit/backends/caddy/caddy_errors.json`` with the meaning each must
get (``rejected``: the request is wrong, never retried, never counts
against the cluster; ``transient``: the host's state, retried). Capture
them again for a new Caddy version::

    .tox/py3/bin/python -m tests.functional.caddy_errors

tests/functional/test_caddy_client.py provokes them again on a real node
and checks that :func:`backends.caddy.client.classify` reads them as the
file says.
"""

import json
import os
import resource
import socket
import sys
import tempfile

from backends import exceptions
from backends import transport as transport_mod
from tools.localstack import caddy as caddy_mod
from tools.localstack import ports

FIXTURE = os.path.join(os.path.dirname(__file__), os.pardir, 'unit',
                       'backends', 'caddy', 'caddy_errors.json')
SERVERS = 'config/apps/http/servers/'

# What a tenant could put in an L7 rule's regex to pass for the host's
# state: every word the old substring check took for a transient error,
# and the whole text Caddy writes for a busy address.
HOSTILE = ('(timeout|timed out|connection refused|context deadline exceeded'
           '|too many open files|cannot assign requested address')
HOSTILE_TAIL = ('(loading new config: http app module: start: listening on '
                '127.0.0.1:80: listen tcp 127.0.0.1:80: bind: address '
                'already in use')


def _server(port, matcher=None, handler=None, **fields):
    route = {'handle': [handler or {'handler': 'static_response',
                                    'status_code': 200}]}
    if matcher:
        route['match'] = [matcher]
    return dict({'listen': ['127.0.0.1:%d' % port], 'routes': [route]},
                **fields)


# name -> (what provokes it, meaning, request builder(free port, port a
# plain socket holds, port of the node's server x))
CASES = {
    'regex_unbalanced': (
        'a PATH REGEX rule that does not compile', 'rejected',
        lambda p, b, t: ('POST', SERVERS + 'x', _server(
            p, {'path_regexp': {'pattern': 'a(timeout'}}))),
    'regex_hostile_words': (
        'a regex holding every word once taken for a transient error',
        'rejected',
        lambda p, b, t: ('POST', SERVERS + 'x', _server(
            p, {'path_regexp': {'pattern': HOSTILE}}))),
    'regex_hostile_tail': (
        'a HOST_NAME regex holding the whole "address in use" text',
        'rejected',
        lambda p, b, t: ('POST', SERVERS + 'x', _server(
            p, {'header_regexp': {'Host': {'pattern': '(?i)'
                                           + HOSTILE_TAIL}}}))),
    'regex_cookie_hostile': (
        'a COOKIE regex ending like a bind failure', 'rejected',
        lambda p, b, t: ('POST', SERVERS + 'x', _server(
            p, {'vars_regexp': {'{http.request.cookie.a}': {
                'pattern': '*bind: address already in use'}}}))),
    'remote_ip_invalid': (
        'allowed_cidrs Caddy cannot parse', 'rejected',
        lambda p, b, t: ('POST', SERVERS + 'x', _server(
            p, {'remote_ip': {'ranges': ['timeout/99']}}))),
    'unknown_module': (
        'a handler Caddy does not have', 'rejected',
        lambda p, b, t: ('POST', SERVERS + 'x', _server(
            p, handler={'handler': 'timeout_handler'}))),
    'unknown_field': (
        'a server field Caddy does not know', 'rejected',
        lambda p, b, t: ('POST', SERVERS + 'x', _server(p, timeoutz=1))),
    'bad_duration': (
        'a duration Caddy cannot parse', 'rejected',
        lambda p, b, t: ('POST', SERVERS + 'x', _server(
            p, read_timeout='timeout'))),
    'health_uri_invalid': (
        'a health check URI Caddy cannot parse', 'rejected',
        lambda p, b, t: ('POST', SERVERS + 'x', _server(
            p, handler={'handler': 'reverse_proxy',
                        'upstreams': [{'dial': '127.0.0.1:1'}],
                        'health_checks': {'active': {
                            'uri': '%zz timeout', 'interval': '1s'}}}))),
    'listen_port_invalid': (
        'a listener port out of range', 'rejected',
        lambda p, b, t: ('POST', SERVERS + 'x', dict(
            _server(p), listen=['127.0.0.1:99999']))),
    'listen_host_unknown': (
        'a listener address that is a name nobody resolves', 'rejected',
        lambda p, b, t: ('POST', SERVERS + 'x', dict(
            _server(p), listen=['timeout.invalid:%d' % p]))),
    'listener_repeated': (
        'two servers of the node on one address (the 2nd is refused)',
        'rejected',
        lambda p, b, t: ('POST', SERVERS + 'y', _server(t))),
    'body_not_json': (
        'a request body that is not JSON', 'rejected',
        lambda p, b, t: ('POST', SERVERS + 'x', b'{"listen": [')),
    'no_parent': (
        'a key whose parent does not exist', 'rejected',
        lambda p, b, t: ('POST', 'config/apps/nothere/servers/x', {})),
    'address_in_use': (
        'a listener on an address another process holds', 'transient',
        lambda p, b, t: ('POST', SERVERS + 'x', _server(b))),
    'address_not_assigned': (
        'a listener on an address the host does not have (yet)',
        'transient',
        lambda p, b, t: ('POST', SERVERS + 'x', dict(
            _server(p), listen=['192.0.2.77:%d' % p]))),
}
# The node runs out of file descriptors (a prlimit on its process): a
# socket for a listener, or for the admin endpoint (which a config load
# restarts before the http app when no server exists), cannot be made.
# Run last and in this order: the second deletes every server.
EMFILE_CASES = {
    'too_many_open_files_listener': (
        'no file descriptor left for a listener', 'transient', 1),
    'too_many_open_files_admin': (
        'no file descriptor left for the admin endpoint (a unix socket)',
        'transient', -1),
}


def _send(transport, method, path, body):
    """``(status, body)`` of an error answer, or None; a request whose
    connection a config reload closed is sent again (as the client does).
    """
    for _attempt in range(3):
        answer = _send_once(transport, method, path, body)
        if answer is None or answer[0] is not None:
            return answer
    return answer


def _send_once(transport, method, path, body):
    try:
        if isinstance(body, bytes):
            response = transport.session.request(
                method, transport.url(path), data=body,
                headers={'Content-Type': 'application/json'},
                timeout=transport.timeout)
            if response.status_code < 300:
                return None
            try:
                return response.status_code, response.json()
            except ValueError:
                return response.status_code, response.text
        transport.request(method, path, json=body)
        return None
    except exceptions.BackendError as exc:
        return exc.status, exc.body


def provoke(node, names=None):
    """``{name: (status, body)}`` a running node answered to each case
    (None: it took the request); the node holds server ``x`` on a free
    port afterwards (``listener_repeated`` needs one)."""
    transport = transport_mod.Transport(node.admin_url, 1, 10, retries=0)
    found = {}
    busy = socket.socket()
    try:
        busy.bind(('127.0.0.1', 0))
        busy.listen()
        busy_port = busy.getsockname()[1]
        if _send(transport, 'PUT', SERVERS.rstrip('/'), {}) not in (
                None, (409, {'error': '[/%s] key already exists: servers'
                             % SERVERS.rstrip('/')})):
            raise RuntimeError('cannot create the http app of %s' % node)
        # the server that listener_repeated collides with
        taken = ports.free_port()
        transport.request('POST', SERVERS + 'x', json=_server(taken))
        for name, (_what, _meaning, build) in CASES.items():
            if names is not None and name not in names:
                continue
            method, path, body = build(ports.free_port(), busy_port, taken)
            found[name] = _send(transport, method, path, body)
        for name, (_what, _meaning, extra) in EMFILE_CASES.items():
            if names is not None and name not in names:
                continue
            found[name] = _out_of_files(transport, node, extra)
            # the admin endpoint may take the last descriptor first
            while extra > 0 and extra < 4 and found[name] and \
                    'listening on' not in str(found[name][1]):
                extra += 1
                found[name] = _out_of_files(transport, node, extra)
    finally:
        busy.close()
        transport.close()
    return found


def _out_of_files(transport, node, extra):
    """A config load with the node's descriptors limited to what it holds
    (plus ``extra``); the limit is lifted afterwards."""
    if extra < 0:
        for name in transport.request('GET', SERVERS)[1] or {}:
            transport.request('DELETE', SERVERS + name)
    transport.request('GET', 'config/admin')   # a kept-alive connection
    before = resource.prlimit(node.pid, resource.RLIMIT_NOFILE)
    held = len(os.listdir('/proc/%d/fd' % node.pid))
    # the soft limit only: lowering the hard one could not be undone
    resource.prlimit(node.pid, resource.RLIMIT_NOFILE,
                     (held + extra, before[1]))
    try:
        return _send(transport, 'POST', SERVERS + 'z',
                     _server(ports.free_port()))
    finally:
        resource.prlimit(node.pid, resource.RLIMIT_NOFILE, before)


def capture():
    """Provoke every case on a fresh node; ``{name: record}``."""
    workdir = tempfile.mkdtemp(prefix='caddy-errors-')
    node = caddy_mod.CaddyNode(workdir, 'errors').start()
    try:
        version = caddy_mod.find_caddy()
        answers = provoke(node)
    finally:
        node.stop()
    cases = dict({n: c[:2] for n, c in CASES.items()},
                 **{n: c[:2] for n, c in EMFILE_CASES.items()})
    return version, {name: {'provoked_by': cases[name][0],
                            'meaning': cases[name][1],
                            'status': answer[0] if answer else None,
                            'body': answer[1] if answer else None}
                     for name, answer in answers.items()}


def main():
    """Capture every case again; entries of the file that no case
    provokes any more (captured on an earlier setup) are kept."""
    import subprocess
    caddy, records = capture()
    version = subprocess.run([caddy, 'version'], capture_output=True,
                             text=True, check=True).stdout.split()[0]
    with open(FIXTURE) as old:
        kept = json.load(old)['errors']
    with open(FIXTURE, 'w') as out:
        json.dump({'caddy': version, 'errors': dict(kept, **records)}, out,
                  indent=1, sort_keys=True)
        out.write('\n')
    missing = [n for n, r in records.items() if r['status'] is None]
    print('wrote %s (%d answers from Caddy %s)%s' % (
        os.path.normpath(FIXTURE), len(records), version,
        '; NOT PROVOKED: %s' % ', '.join(missing) if missing else ''))
    return 1 if missing else 0


if __name__ == '__main__':
    sys.exit(main())
