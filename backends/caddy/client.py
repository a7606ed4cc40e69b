"""The JSON admin API of ONE Caddy 2 node; knows nothing of Octavia.

A load balancer's listeners become entries of ``apps.http.servers`` (the
server *name* is the key); this client creates, replaces and deletes such
entries one key at a time, never reading and rewriting the whole config,
so concurrent changes to different servers of one node do not overwrite
each other.

Caddy admin API facts this relies on (checked against Caddy 2.11.7):

* ``POST /config/<path>`` *sets or replaces* the value at an object key
  (it appends only when the current value is an array), so
  ``POST /config/apps/http/servers/<name>`` is create-or-replace of exactly
  that server.  Its parent must exist: otherwise HTTP 500
  ``invalid traversal path``.
* ``PUT`` creates the key and any missing parents, and answers 409
  ``key already exists`` when the key is there: ``PUT
  /config/apps/http/servers {}`` is an idempotent "ensure" that never
  touches existing servers.  ``PATCH`` replaces and answers 404 when absent.
* ``DELETE`` of an absent key answers 404 ``key does not exist``; of a key
  under an absent parent, 500 ``invalid traversal path``.
* ``GET`` of an absent key under an existing object answers ``200 null``;
  under an absent parent, 400 ``invalid traversal path``.
* Every change re-provisions the whole running config (listeners are
  reused, so the other servers keep serving) and is rolled back when the
  new config fails to load: the answer is then **HTTP 500** ``loading new
  config: ...``.  That is a permanent rejection of the request, so
  :func:`classify` (which every transport of the caddy backend applies
  before the cluster's breaker counts the answer) turns it into
  :class:`BackendRejected`, except for the host's state (below).
* Never ``DELETE /config/``: it removes the ``admin`` section too, and the
  admin endpoint moves to Caddy's default ``localhost:2019``.
"""

import re

from backends import exceptions

SERVERS = 'config/apps/http/servers'
CERTIFICATES = 'config/apps/tls/certificates/load_pem'
# Read through the tls app, the deepest key whose parent (``apps``) exists
# whenever a server does: a GET under an absent parent is an error line in
# the node's log (HTTP 400), and a node without TLS listeners has no tls
# app. ``GET`` of the absent app itself is ``200 null``.
TLS_APP = 'config/apps/tls'
UPSTREAMS = 'reverse_proxy/upstreams'
METRICS = 'metrics'
# Go's goroutine profile, one line per stack (see version.py)
GOROUTINES = 'debug/pprof/goroutine?debug=1'

# What Caddy reports for a path whose parent objects do not exist.
_NO_PARENT = 'invalid traversal path'
# How Caddy 2.11 words a 500 it answers for a request it cannot take.
# Each is a prefix Caddy writes itself, before any value of the request
# (and so of a tenant: an L7 rule's regex is echoed much later in the
# text); texts are in tests/unit/backends/caddy/caddy_errors.json.
REJECTED_PREFIXES = (
    'loading new config: ',     # the config failed to load (rolled back)
    'decoding request body: ',  # not JSON
    _NO_PARENT + ' at: ',       # a parent of the path does not exist
)
# The one way a config that would load fails for the host's state: a
# listening socket cannot be made (the admin endpoint's, or a server's
# listener) and Go's net.OpError ``OP NET ADDR: SYSCALL: ERRNO`` ends the
# text (``listen tcp 10.0.0.5:80: bind: address already in use``, ``file
# unix /run/caddy/admin.sock: fcntl: too many open files``). Only Caddy
# writes the prefix, only the OS the ERRNO; OP, NET and ADDR have no
# spaces; the whole text must match: no value of a tenant can produce it.
HOST_STATE = re.compile(
    r'loading new config: '
    r'(?:http app module: start: listening on \S+|'
    r'starting caddy administration endpoint): '
    r'[a-z]+ \S+ \S+: [a-z0-9]+: '
    r'(?:address already in use|cannot assign requested address|'
    r'too many open files)')
_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$')


def _error_text(exc):
    body = getattr(exc, 'body', None)
    if isinstance(body, dict):
        return str(body.get('error') or '')
    return body if isinstance(body, str) else ''


def classify(error):
    """What a Caddy node's error answer means (a transport ``classify``).

    An HTTP 500 whose text starts with one of :data:`REJECTED_PREFIXES` is
    a :class:`BackendRejected` (permanent: the request is wrong, retrying
    cannot help, and it says nothing about the cluster's health), unless
    the whole text is :data:`HOST_STATE`: that stays a
    :class:`BackendUnavailable` (retried) marked ``cluster_failure =
    False`` (the node answered; one listener cannot bind, which must not
    open the cluster's circuit breaker). Every other error, any other
    500 included (not Caddy's words), is returned unchanged.
    """
    if (not isinstance(error, exceptions.BackendUnavailable)
            or getattr(error, 'status', None) != 500):
        return error
    text = _error_text(error).strip()
    if HOST_STATE.fullmatch(text):
        error.cluster_failure = False
        return error
    if not text.startswith(REJECTED_PREFIXES):
        return error
    rejected = exceptions.BackendRejected(str(error))
    rejected.status, rejected.body = error.status, error.body
    rejected.retry_after = None
    rejected.__cause__ = error
    return rejected


def _check_name(name):
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError('invalid Caddy server name %r: use letters, digits, '
                         '"_", "." and "-", starting with a letter or digit'
                         % (name,))
    return name


class CaddyClient:
    """Admin API of one Caddy node over a :class:`backends.transport.
    Transport` whose endpoint is the node's admin URL."""

    def __init__(self, transport):
        self.transport = transport

    def __repr__(self):
        return '<CaddyClient %s>' % self.transport.name

    def _call(self, method, path, json=None, replay=False):
        """``transport.request`` with Caddy's 500-for-bad-config fixed.

        :param replay: the call is idempotent although its verb is not (a
            POST that sets one key): replay it once if the connection closed
            before any response, which happens when Caddy's config reload
            drops a kept-alive admin connection.
        """
        try:
            return self.transport.request(method, path, json=json)[1]
        except exceptions.BackendUnavailable as exc:
            if not replay or getattr(exc, 'status', None) is not None:
                return self._reclassify(exc)
        try:
            return self.transport.request(method, path, json=json)[1]
        except exceptions.BackendUnavailable as exc:
            return self._reclassify(exc)

    @staticmethod
    def _reclassify(exc):
        """Raise ``exc`` as :func:`classify` reads it (for transports
        built without it)."""
        found = classify(exc)
        if found is exc:
            raise exc
        raise found from exc

    # -- reading -------------------------------------------------------------

    def config(self):
        """The node's whole running config (``{}`` when it has none)."""
        return self._call('GET', 'config/') or {}

    def get_servers(self):
        """``{name: server JSON}`` of ``apps.http.servers`` (``{}`` if the
        http app or its servers are absent)."""
        try:
            return self._call('GET', SERVERS) or {}
        except exceptions.BackendRejected as exc:
            if _NO_PARENT in _error_text(exc):
                return {}
            raise

    def get_server(self, name):
        """One server's JSON, or None when absent."""
        path = '%s/%s' % (SERVERS, _check_name(name))
        try:
            return self._call('GET', path)
        except exceptions.BackendRejected as exc:
            if _NO_PARENT in _error_text(exc):
                return None
            raise

    def upstreams(self):
        """``GET /reverse_proxy/upstreams``: ``[{'address', 'num_requests',
        'fails'}]`` for every upstream of every reverse_proxy handler of the
        node (``num_requests`` is requests in flight, not a total)."""
        return self._call('GET', UPSTREAMS) or []

    def admin(self):
        """``GET /config/admin``: the cheapest read that proves the node
        answers (a few bytes, whatever the node serves)."""
        return self._call('GET', 'config/admin') or {}

    def metrics(self):
        """The node's Prometheus metrics page (text; see metrics.py)."""
        return self._call('GET', METRICS) or ''

    def goroutines(self):
        """Go's goroutine profile of the node (text, a few kB): the files of
        the Caddy module in it carry its version (see version.py)."""
        return self._call('GET', GOROUTINES) or ''

    # -- writing -------------------------------------------------------------

    def ensure_http_app(self):
        """Create ``apps.http.servers`` if absent; never touches existing
        servers.  Returns True when it had to create it."""
        try:
            self._call('PUT', SERVERS, json={})
            return True
        except exceptions.BackendRejected as exc:
            if getattr(exc, 'status', None) == 409:
                return False
            raise

    def put_server(self, name, server):
        """Create or replace exactly the server ``name`` (one POST to its
        key; the http app is created first if the node has none)."""
        path = '%s/%s' % (SERVERS, _check_name(name))
        try:
            self._call('POST', path, json=server, replay=True)
        except exceptions.BackendRejected as exc:
            if _NO_PARENT not in _error_text(exc):
                raise
            self.ensure_http_app()
            self._call('POST', path, json=server, replay=True)

    def replace_servers(self, servers):
        """Replace the whole ``apps.http.servers`` object with ``servers``
        (``{name: server JSON}``): one config load, whatever the number of
        servers that change (batch.py).  Creates the http app if absent."""
        for name in servers:
            _check_name(name)
        self._replace(SERVERS, servers)

    def _replace(self, path, value):
        try:
            self._call('PATCH', path, json=value, replay=True)
        except exceptions.BackendRejected as exc:
            if (getattr(exc, 'status', None) != 404
                    and _NO_PARENT not in _error_text(exc)):
                raise
            # absent: PUT creates it and its missing parents
            self._call('PUT', path, json=value)

    def delete_server(self, name):
        """Delete the server ``name``; absent is success.  Returns True
        when it existed."""
        path = '%s/%s' % (SERVERS, _check_name(name))
        try:
            self._call('DELETE', path)
            return True
        except exceptions.BackendRejected as exc:
            text = _error_text(exc)
            if (getattr(exc, 'status', None) == 404
                    and 'does not exist' in text) or _NO_PARENT in text:
                return False
            raise

    # -- TLS certificates (apps.tls.certificates.load_pem) -------------------

    def get_certificates(self):
        """The ``load_pem`` entries (``[]`` when the tls app has none)."""
        try:
            tls_app = self._call('GET', TLS_APP)
        except exceptions.BackendRejected as exc:
            if _NO_PARENT in _error_text(exc):
                return []                   # no apps at all
            raise
        certificates = (tls_app or {}).get('certificates') or {}
        return certificates.get('load_pem') or []

    def add_certificate(self, entry):
        """Append one ``load_pem`` entry (give it a unique ``@id``)."""
        try:
            self._call('POST', CERTIFICATES, json=entry)
        except exceptions.BackendRejected as exc:
            # No load_pem list: POST would set it to the entry itself,
            # which Caddy refuses (a tls app that only loads other
            # certificates, such as the admin API's own: admin/caddy.rst).
            if _NO_PARENT not in _error_text(exc) and self._call(
                    'GET', CERTIFICATES) is not None:
                raise
            # PUT creates the list and its missing parents (tls app,
            # certificates).
            self._call('PUT', CERTIFICATES, json=[entry])

    def replace_certificates(self, entries):
        """Replace the whole ``load_pem`` list (one config load)."""
        self._replace(CERTIFICATES, list(entries))

    def delete_id(self, object_id):
        """Delete the config object tagged ``"@id": object_id``; absent is
        success. Returns True when it existed."""
        try:
            self._call('DELETE', 'id/%s' % _check_name(object_id))
            return True
        except exceptions.BackendRejected as exc:
            if getattr(exc, 'status', None) == 404:
                return False
            raise
