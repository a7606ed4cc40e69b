"""``caddy``: a cluster of Caddy 2 nodes driven through their admin API.

Every node of a cluster gets the same configuration (active/active: the
nodes share the VIP, the kernel spreads connections). Each Octavia listener
is one Caddy server under its own key (``<lb id>--<listener id>``,
:mod:`backends.caddy.translate`), so applying or deleting one load balancer
never rewrites another's configuration.

Node failures: a change is applied to every node that answers (to all the
nodes at once, so concurrent changes share each node's loads); if at least
one did, the change succeeds and the nodes that missed it are named in a
WARNING (they catch up at the next change of that load balancer); if none
did, the cluster is unavailable and the agent retries.

Certificates of TERMINATED_HTTPS listeners go into each node's tls app as
``load_pem`` entries whose ``@id`` carries the LB id and a digest of the
content: new ones are added before the servers change and old ones removed
after, so a certificate rotation never leaves a listener without one. The
PEM material lives in memory and on the nodes only, never in logs.

Caddy version: a node older than :data:`version.MINIMUM` (2.11.2) gets no
configuration: its version is read before its first change and at every
listing of the probe, the probe's detail names it, a WARNING (once per
node and version) says why; once upgraded it gets every load balancer.
A node whose version cannot be read is used, with one WARNING.

Version history: 1.0 — HTTP and TERMINATED_HTTPS listeners, pools, members,
health monitors, L7 policies (see translate.py for what maps to Caddy and
how).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import threading
import time

from oslo_config import cfg

from backends import base
from backends import endpoints as endpoints_mod
from backends import exceptions
from backends import transport as transport_mod
from backends import types
from backends.caddy import batch
from backends.caddy import client as client_mod
from backends.caddy import metrics as metrics_mod
from backends.caddy import traffic
from backends.caddy import translate
from backends.caddy import version as version_mod
from multilb import exceptions as multilb_exc

LOG = logging.getLogger(__name__)

SEPARATOR = '--'
_FORWARDED = frozenset(('X-Forwarded-For', 'X-Forwarded-Port',
                        'X-Forwarded-Proto'))


class CaddyBackend(base.ApplianceBackend):
    """Caddy 2 cluster (real traffic). See the module docstring."""

    SUPPORTED_LISTENER_PROTOCOLS = translate.SUPPORTED[
        'SUPPORTED_LISTENER_PROTOCOLS']
    SUPPORTED_POOL_PROTOCOLS = translate.SUPPORTED['SUPPORTED_POOL_PROTOCOLS']
    SUPPORTED_ALGORITHMS = translate.SUPPORTED['SUPPORTED_ALGORITHMS']
    SUPPORTED_HEALTH_MONITOR_TYPES = translate.SUPPORTED[
        'SUPPORTED_HEALTH_MONITOR_TYPES']
    SUPPORTED_SESSION_PERSISTENCE = translate.SUPPORTED[
        'SUPPORTED_SESSION_PERSISTENCE']
    OBSERVES_HEALTH = True   # Caddy carries the traffic and checks it
    SUPPORTED_L7_ACTIONS = translate.SUPPORTED['SUPPORTED_L7_ACTIONS']
    SUPPORTED_L7_RULE_TYPES = translate.SUPPORTED['SUPPORTED_L7_RULE_TYPES']
    BINDS_ADDRESSES = True

    @classmethod
    def get_config_options(cls):
        return [
            cfg.ListOpt('endpoints', default=[], secret=True,
                        help='Admin API URLs of the Caddy nodes of the '
                             'cluster: https://HOST:PORT for a node on '
                             'another host (its admin API behind mutual '
                             'TLS: ca_bundle, client_cert), '
                             'unix:///ABSOLUTE/PATH/admin.sock for a node '
                             'on this host (HTTP over its admin unix '
                             'socket), for example https://10.0.0.11:2020, '
                             'https://10.0.0.12:2020. Never a TCP admin '
                             'listener tenants can reach (see '
                             'doc/source/admin/caddy.rst). Every node gets '
                             'the same configuration. Credentials in a URL '
                             '(user:password@, ?token=) are sent with '
                             'every request and never shown: logs and '
                             'multilb-manage name a node scheme://host:port '
                             'only.'),
            cfg.StrOpt('listen_address', default='',
                       help='Address the nodes bind listeners to. Empty: '
                            'the load balancer\'s VIP address (production). '
                            'A fixed address (for example 127.0.0.1) is for '
                            'labs and tests where the VIP is not local.'),
            cfg.StrOpt('served_by_header', default='',
                       regex=r'^([A-Za-z0-9-]+)?$',
                       help='Name of a response header every node adds to '
                            'each response, valued with the cluster\'s '
                            'name (for example X-Served-By): shows which '
                            'cluster served a request, during a move of '
                            'load balancers between clusters for example. '
                            'Empty: none. Tells clients the cluster name.'),
            cfg.FloatOpt('connect_timeout', default=3.0, min=0.1,
                         help='Seconds to connect to a node\'s admin API.'),
            cfg.FloatOpt('read_timeout', default=15.0, min=0.1,
                         help='Seconds to wait for each read from a node\'s '
                              'admin API (a config load reloads the node).'),
            cfg.BoolOpt('batch_writes', default=True,
                        help='Write the changes of load balancers that '
                             'reach a node at the same time as one config '
                             'load (the certificates they add, every '
                             'server, the certificates they drop: at most '
                             'three writes), instead of one write per '
                             'server and certificate. Every write reloads '
                             'the whole node, every tenant\'s servers '
                             'included; a batch the node rejects is '
                             'retried change by change, so one bad '
                             'configuration fails alone.'),
            cfg.FloatOpt('divergence_check_interval', default=30.0, min=0.5,
                         help='Seconds between two comparisons of the '
                              'servers every node holds (a full listing '
                              'of each node). The load balancers whose '
                              'servers the nodes hold differently are '
                              're-applied (a node restarted empty gets '
                              'them all); one no longer placed on the '
                              'cluster (a node kept it after missing its '
                              'delete) is removed by the agent\'s orphan '
                              'sweep instead. The probes in between only '
                              'check that each node answers.'),
            cfg.FloatOpt('probe_timeout', default=2.0, min=0.1,
                         help='Seconds a health probe waits for each node '
                              '(connect and read, no retry). A node that '
                              'fails its probe gets no change until it '
                              'answers again, and then gets every load '
                              'balancer re-applied.'),
            cfg.StrOpt('ca_bundle', default='',
                       help='CA bundle that signs the nodes\' admin API '
                            'certificates (https endpoints). Empty: the '
                            'system trust store.'),
            cfg.StrOpt('client_cert', default='',
                       help='Client certificate (PEM file) presented to '
                            'the nodes\' admin API (https endpoints that '
                            'require mutual TLS). Empty: none.'),
            cfg.StrOpt('client_key', default='',
                       help='Private key (PEM file) of client_cert, if not '
                            'in the same file. Keep it readable by the '
                            'Octavia services only.'),
        ]

    @classmethod
    def check_config(cls, options):
        endpoints = options.get('endpoints') or []
        endpoints_mod.require(endpoints, 'the admin API URL of every Caddy '
                              'node, for example https://10.0.0.11:2020')
        for endpoint in endpoints:
            try:
                if transport_mod.unix_socket_path(endpoint):
                    continue
            except ValueError as exc:
                raise multilb_exc.ConfigError('endpoints: %s' % exc)
            endpoints_mod.check_http(endpoint,
                                     'an https://, http:// or unix:///')
        if options.get('client_key') and not options.get('client_cert'):
            raise multilb_exc.ConfigError(
                'client_key: set, but client_cert is empty; set both, or '
                'client_cert alone when it holds the key too')

    @classmethod
    def management_addresses(cls, options):
        """The IP literals (and ports) of the nodes' TCP admin endpoints
        (unix sockets have none)."""
        return endpoints_mod.ip_ports(options.get('endpoints'))

    @classmethod
    def bound_addresses(cls, options, vips):
        fixed = options.get('listen_address') or None
        return [fixed] if fixed else super().bound_addresses(options, vips)

    @classmethod
    def check_supported(cls, object_type, fields):
        """The declared sets, plus options Caddy has no equivalent for."""
        super().check_supported(object_type, fields)
        problem = None
        if object_type == 'listener':
            limit = fields.get('connection_limit')
            auth = fields.get('client_authentication')
            headers = sorted(set(fields.get('insert_headers') or {})
                             - _FORWARDED)
            if limit not in (None, -1):
                problem = ('listener connection_limit %s is not supported '
                           '(Caddy has no connection cap); supported: -1 '
                           '(unlimited)' % limit)
            elif auth not in (None, 'NONE'):
                problem = ('listener client_authentication %s is not '
                           'supported; supported: NONE' % auth)
            elif headers:
                problem = ('listener insert_headers %s not supported; '
                           'supported: %s' % (', '.join(headers),
                                              ', '.join(sorted(_FORWARDED))))
        elif object_type == 'pool' and fields.get('tls_enabled'):
            problem = ('pool tls_enabled is not supported (members are '
                       'reached over plain HTTP); supported: false')
        if problem:
            raise exceptions.UnsupportedFeature(problem)

    def start(self):
        opts = self.cluster.options

        def transport(endpoint, timeout, retries):
            return transport_mod.Transport(
                endpoint, connect_timeout=min(opts['connect_timeout'],
                                              timeout),
                read_timeout=timeout, retries=retries,
                ca_bundle=opts.get('ca_bundle') or None,
                client_cert=client_cert, breaker=self.breaker,
                classify=client_mod.classify)

        client_cert = opts.get('client_cert') or None
        if client_cert and opts.get('client_key'):
            client_cert = (client_cert, opts['client_key'])

        self._nodes = [
            (endpoint, client_mod.CaddyClient(transport(
                endpoint, opts['read_timeout'], 2)))
            for endpoint in opts['endpoints']]
        self._probes = {
            endpoint: client_mod.CaddyClient(transport(
                endpoint, opts['probe_timeout'], 0))
            for endpoint in opts['endpoints']}
        # background reads (listings, metrics): never retried
        self._readers = {
            endpoint: client_mod.CaddyClient(transport(
                endpoint, opts['read_timeout'], 0))
            for endpoint in opts['endpoints']}
        self._changing = {endpoint: threading.Lock()
                          for endpoint in opts['endpoints']}
        self._batchers = {}    # endpoint -> batch.NodeBatcher
        self._batchers_lock = threading.Lock()
        self._first_change = {endpoint: threading.Lock()
                              for endpoint in opts['endpoints']}
        # how logs and messages name a node: never with its credentials
        # (the transport's name: scheme://host:port, or unix:///path)
        self._names = {endpoint: client.transport.name
                       for endpoint, client in self._nodes}
        self._ledger = traffic.TrafficLedger()
        self._down = set()     # failed their last probe: skipped
        # endpoint -> why it may have missed anything (was down, ran an
        # outdated Caddy): every load balancer is re-applied once it answers
        self._stale = {}
        self._missed = {}      # endpoint -> ids of LBs it missed a change of
        self._compared_at = None   # monotonic time of the last listing
        # Caddy versions (version.py): endpoint -> version or None, read
        # before a node's first change and at each listing of the probe
        self._versions = {}
        self._outdated = {}    # endpoint -> version older than the minimum
        self._version_lock = threading.Lock()
        self._unknown_said = set()   # endpoints whose version is unknown

    def stop(self):
        clients = [c for _e, c in getattr(self, '_nodes', [])]
        clients += list(getattr(self, '_probes', {}).values())
        clients += list(getattr(self, '_readers', {}).values())
        for client in clients:
            try:
                client.transport.close()
            except Exception:  # noqa: B902 - stop must not raise
                LOG.debug('closing %s failed', client, exc_info=True)

    def _on_every_node(self, what, lb_id, action):
        """Run ``action(endpoint, client)`` on each node, all nodes at
        once (the first in the calling thread): a change reaches every
        node's batcher at the same time, so changes of concurrent applies
        meet in one batch on each node instead of trailing each other
        from node to node; see the module docstring."""
        down = set(self._down)
        if all(endpoint in down or endpoint in self._outdated
               for endpoint, _client in self._nodes):
            down = set()   # every node failed its probe: try them anyway
        nodes = list(self._nodes)
        outcomes = [None] * len(nodes)

        def run(index):
            endpoint, client = nodes[index]
            try:
                outcomes[index] = self._on_node(lb_id, action, endpoint,
                                                client, down)
            except Exception as exc:  # noqa: B902 - re-raised below
                outcomes[index] = exc

        others = [threading.Thread(target=run, args=(index,), daemon=True,
                                   name='caddy-%s-node%d' % (
                                       self.cluster.name, index))
                  for index in range(1, len(nodes))]
        for thread in others:
            thread.start()
        run(0)
        for thread in others:
            thread.join()
        failed = [o for o in outcomes if isinstance(o, Exception)]
        if failed:
            raise failed[0]
        missed = [o for o in outcomes if o]
        if len(missed) == len(self._nodes):
            raise exceptions.BackendUnavailable(
                'cluster %s: no Caddy node answered the %s of load balancer '
                '%s: %s' % (self.cluster.name, what, lb_id,
                            '; '.join(missed)))
        if missed:
            LOG.warning('Load balancer %s on cluster %s: %s missed by %d of '
                        '%d nodes: %s', lb_id, self.cluster.name, what,
                        len(missed), len(self._nodes), '; '.join(missed))

    def _on_node(self, lb_id, action, endpoint, client, down):
        """``action`` on one node: None when the node took it, else why
        it did not (it is then counted as having missed ``lb_id``)."""
        if endpoint in down:
            self._missed.setdefault(endpoint, set()).add(lb_id)
            return '%s: skipped, failed its last probe' % self._names[endpoint]
        try:
            # never under _changing: a change must reach the node's
            # batcher while the previous batch is being written
            if endpoint not in self._versions:   # its first change
                with self._first_change[endpoint]:
                    if endpoint not in self._versions:
                        self._read_version(endpoint)
            usable = endpoint not in self._outdated
            if usable:
                action(endpoint, client)
        except exceptions.BackendUnavailable as exc:
            self._missed.setdefault(endpoint, set()).add(lb_id)
            return '%s: %s' % (self._names[endpoint], exc)
        if not usable:      # gets everything once upgraded (it is stale)
            return '%s: skipped, %s' % (self._names[endpoint],
                                        self._too_old(endpoint))
        self._missed.get(endpoint, set()).discard(lb_id)
        return None

    @staticmethod
    def _prune(client, lb_id, keep, keep_certificates=()):
        for name in client.get_servers():
            if name.split(SEPARATOR, 1)[0] == lb_id and name not in keep:
                client.delete_server(name)
        for entry in client.get_certificates():
            object_id = entry.get('@id') or ''
            if (object_id.split(SEPARATOR, 1)[0] == lb_id
                    and object_id not in keep_certificates):
                client.delete_id(object_id)

    @staticmethod
    def _certificates(graph):
        """translate.certificates() with content-versioned ``@id``s."""
        found = {}
        for entry in translate.certificates(graph):
            digest = hashlib.sha256(
                (entry['certificate'] + entry['key']).encode()).hexdigest()
            object_id = '%s--pem-%s' % (entry['tags'][-1], digest[:16])
            found[object_id] = dict(entry, **{'@id': object_id})
        return found

    def apply_loadbalancer(self, graph):
        lb_id = graph['loadbalancer_id']
        servers = translate.servers(
            graph, self.cluster.options.get('listen_address') or None,
            served_by=self._served_by())
        self._on_every_node('apply', lb_id, self._writer(
            lb_id, servers, self._certificates(graph)))

    def delete_loadbalancer(self, loadbalancer_id):
        self._on_every_node('delete', loadbalancer_id,
                            self._writer(loadbalancer_id, {}, {}))

    def verify_loadbalancer(self, graph):
        """Every node holds exactly this load balancer's servers (as
        applied, compared key by key) and certificates; each node is
        asked directly, with the probe's short timeout, down or not."""
        lb_id = graph['loadbalancer_id']
        servers = translate.servers(
            graph, self.cluster.options.get('listen_address') or None,
            served_by=self._served_by())
        wanted = set(self._certificates(graph))
        problems = []
        for endpoint, _client in self._nodes:
            name, client = self._names[endpoint], self._probes[endpoint]
            if endpoint in self._outdated:
                problems.append('%s %s' % (name, self._too_old(endpoint)))
                continue
            try:
                held = {key: value for key, value in
                        client.get_servers().items()
                        if key.split(SEPARATOR, 1)[0] == lb_id}
                certificates = {
                    e.get('@id') for e in client.get_certificates()
                    if (e.get('@id') or '').split(SEPARATOR, 1)[0] == lb_id}
            except exceptions.BackendError as exc:
                problems.append('%s: %s' % (name, exc))
                continue
            if set(held) != set(servers):
                problems.append('%s holds %d of its %d servers' % (
                    name, len(set(held) & set(servers)), len(servers)))
            elif any(held[key] != value for key, value in servers.items()):
                problems.append('%s holds an older configuration' % name)
            elif not wanted <= certificates:
                problems.append('%s lacks %d certificate(s)' % (
                    name, len(wanted - certificates)))
        if problems:
            raise exceptions.BackendUnavailable(
                'cluster %s does not serve load balancer %s on every node: '
                '%s' % (self.cluster.name, lb_id, '; '.join(problems)))

    def _served_by(self):
        header = self.cluster.options.get('served_by_header') or ''
        return (header, self.cluster.name) if header else None

    def _writer(self, lb_id, servers, certificates):
        """``action(endpoint, client)`` that makes a node hold exactly
        ``servers`` and ``certificates`` for ``lb_id``."""
        def batched(endpoint, client):
            with self._batchers_lock:
                batcher = self._batchers.get(endpoint)
                if batcher is None or batcher.client is not client:
                    batcher = self._batchers[endpoint] = batch.NodeBatcher(
                        client, lock=self._changing[endpoint],
                        before_write=functools.partial(
                            self._read_traffic, endpoint, client))
            batcher.apply(lb_id, servers, certificates)

        def one_key_at_a_time(endpoint, client):
            with self._changing[endpoint]:
                self._read_traffic(endpoint, client)
                # put_server creates the http app when a node has none:
                # creating it first would be Caddy's 409 (and an error
                # line in the node's log) at every change.
                present = {e.get('@id') for e in client.get_certificates()}
                for object_id, entry in certificates.items():
                    if object_id not in present:
                        client.add_certificate(entry)
                for name, server in servers.items():
                    client.put_server(name, server)
                self._prune(client, lb_id, servers, certificates)

        if self.cluster.options.get('batch_writes', True):
            return batched
        return one_key_at_a_time

    def probe(self):
        """Each node answers a tiny admin read (``GET /config/admin``);
        every ``divergence_check_interval`` (and when a node is back) the
        nodes' server lists are compared instead, and the Caddy version of
        each node is read again (a node older than version.MINIMUM is
        named in the detail and gets no configuration)."""
        now = time.monotonic()
        compare = (self._compared_at is None or bool(self._down) or
                   now - self._compared_at >= self.cluster.options.get(
                       'divergence_check_interval', 30.0))
        problems, held, back, stale = [], {}, [], False
        for endpoint, _client in self._nodes:
            try:
                probe = self._probes[endpoint]
                found = (set(probe.get_servers()) if compare
                         else probe.admin())
                if compare or endpoint not in self._versions:
                    self._read_version(endpoint)
            except exceptions.BackendError as exc:
                if endpoint not in self._down:
                    LOG.warning('Cluster %s: node %s stopped answering: %s',
                                self.cluster.name, self._names[endpoint],
                                exc)
                self._down.add(endpoint)
                self._stale.setdefault(endpoint, 'was unreachable')
                self._versions.pop(endpoint, None)   # read again when back
                problems.append('%s: %s' % (self._names[endpoint], exc))
                continue
            if endpoint in self._down:
                LOG.info('Cluster %s: node %s answers again',
                         self.cluster.name, self._names[endpoint])
                self._down.discard(endpoint)
            if endpoint in self._outdated:
                problems.append('%s %s: given no configuration' % (
                    self._names[endpoint], self._too_old(endpoint)))
                continue
            held[endpoint] = found
            if endpoint in self._stale:
                # once: every load balancer is queued for a re-apply now
                back.append('%s %s' % (self._names[endpoint],
                                       self._stale.pop(endpoint)))
                stale = True
            if self._missed.get(endpoint):
                back.append('%s missed changes of %d load balancer(s)' % (
                    self._names[endpoint], len(self._missed[endpoint])))
        detail = '%d of %d Caddy nodes answer' % (len(held), len(self._nodes))
        behind, differing = [], set()
        if compare and held:
            self._compared_at = now
            union = set().union(*held.values())
            for endpoint, names in held.items():
                if union - names:
                    behind.append('%s lacks %d of %d servers' % (
                        self._names[endpoint], len(union - names),
                        len(union)))
                    differing |= {name.split(SEPARATOR, 1)[0]
                                  for name in union - names}
        if problems or behind or back:
            detail += '; ' + '; '.join(problems + behind + back)
        missed = frozenset().union(*(self._missed.get(e, ())
                                     for e in held))
        # Only the load balancers the nodes disagree on are re-applied (a
        # server one node kept after a delete it missed is an orphan the
        # agent's sweep removes, not a reason to re-apply everything).
        return types.ClusterHealth(reachable=bool(held), detail=detail,
                                   resync=stale,
                                   resync_ids=missed | differing)

    def _read_version(self, endpoint):
        """Read which Caddy the node runs (version.py); one older than the
        minimum gets no configuration (it is skipped, and stale: it gets
        everything once upgraded). A WARNING names the cluster, the node
        and the version once per finding.

        :raises BackendUnavailable: the node did not answer.
        """
        client, name = self._probes[endpoint], self._names[endpoint]
        found = None
        for read, parse in ((client.goroutines, version_mod.from_goroutines),
                            (client.metrics, version_mod.from_metrics)):
            try:
                found = parse(read())
            except exceptions.BackendRejected as exc:   # a filtering proxy
                LOG.debug('Cluster %s: %s', self.cluster.name, exc)
            if found:
                break
        verdict = version_mod.check(found)
        with self._version_lock:
            self._versions[endpoint] = found
            was = self._outdated.get(endpoint)
            if verdict == version_mod.TOO_OLD:
                self._outdated[endpoint] = found
                self._stale[endpoint] = 'ran Caddy %s' % found
                if was != found:
                    LOG.warning(
                        'Cluster %s: node %s runs Caddy %s, older than %s, '
                        'the minimum multilb needs (earlier versions let a '
                        'request read the node\'s files and environment '
                        'through placeholders in vars matchers, and ignore '
                        'the health-check port): it gets no configuration '
                        'until it is upgraded', self.cluster.name, name,
                        found, version_mod.MINIMUM_TEXT)
                return
            self._outdated.pop(endpoint, None)
            if was:
                LOG.info('Cluster %s: node %s now runs Caddy %s',
                         self.cluster.name, name, found or '(unknown)')
            if verdict == version_mod.OK:
                self._unknown_said.discard(endpoint)
            elif endpoint not in self._unknown_said:
                self._unknown_said.add(endpoint)
                LOG.warning(
                    'Cluster %s: node %s does not tell which Caddy version '
                    'it runs (a development build?); multilb needs %s or '
                    'later and cannot check it: using the node',
                    self.cluster.name, name, version_mod.MINIMUM_TEXT)

    def _too_old(self, endpoint):
        return 'runs Caddy %s, older than the minimum %s' % (
            self._outdated.get(endpoint), version_mod.MINIMUM_TEXT)

    def list_loadbalancer_ids(self):
        """Ids on the nodes that answer (nodes that failed their last probe
        are not asked; no retry: a listing must not stall the caller)."""
        found, answered = set(), False
        for endpoint, _client in self._nodes:
            if endpoint in self._down or endpoint in self._outdated:
                continue
            try:
                names = self._readers[endpoint].get_servers()
            except exceptions.BackendUnavailable:
                continue
            answered = True
            # multilb's servers only (``<lb>--<listener>``): servers the
            # operator put on the node are none of multilb's business
            found |= {name.split(SEPARATOR, 1)[0] for name in names
                      if SEPARATOR in name}
        if not answered:
            raise exceptions.BackendUnavailable(
                'cluster %s: no Caddy node answered' % self.cluster.name)
        return found

    # -- health and traffic ------------------------------------------------

    def _metrics(self, endpoint, _client=None):
        """The node's parsed metrics, or None (a node that failed its last
        probe, or runs an outdated Caddy, is not asked; no retry)."""
        if endpoint in self._down or endpoint in self._outdated:
            return None
        try:
            return metrics_mod.samples(self._readers[endpoint].metrics())
        except exceptions.BackendError as exc:
            LOG.debug('Cluster %s: no metrics from %s: %s',
                      self.cluster.name, self._names[endpoint], exc)
            return None

    def _read_traffic(self, endpoint, client):
        """Account the node's counters (before a change resets them)."""
        parsed = self._metrics(endpoint, client)
        if parsed is None:
            self._ledger.lost(endpoint)
        else:
            self._ledger.fold(endpoint, parsed)
        return parsed is not None

    def member_health(self, graphs):
        """Verdicts from ``caddy_reverse_proxy_upstreams_healthy``.

        Caddy keeps that gauge per dial address (``ip:port``), and every
        reverse_proxy handler of a node writes it for its upstreams: the
        last writer wins. A member whose dial address more than one pool
        of the cluster proxies to (two load balancers, of one project or
        of two, or two pools of one) therefore gets no verdict: the figure
        may be another pool's checks (other path, other expected codes).
        Every pool of ``graphs`` counts, enabled or not (a safe excess:
        a verdict is only given when one pool can have written it).
        """
        healthy, answered = {}, 0
        for endpoint, client in self._nodes:
            parsed = self._metrics(endpoint, client)
            if parsed is None:
                continue
            answered += 1
            for dial, up in metrics_mod.upstream_health(parsed).items():
                healthy[dial] = healthy.get(dial, False) or up
        if not answered:
            raise exceptions.BackendUnavailable(
                'cluster %s: no Caddy node answered' % self.cluster.name)
        pools = self._pools_by_dial(graphs)
        found, withheld = {}, {}
        for graph in graphs.values():
            for pool in graph.get('pools', []):
                monitor = pool.get('healthmonitor') or {}
                if not monitor or monitor.get('admin_state_up') is False:
                    continue
                for member, dial in self._dials(pool):
                    if len(pools[dial]) > 1:
                        withheld.setdefault(dial, []).append(
                            member['member_id'])
                    elif dial in healthy:
                        found[member['member_id']] = healthy[dial]
        if withheld:
            LOG.debug('Cluster %s: no health verdict for %s: Caddy keeps '
                      'one health figure per member address, and each of '
                      'these addresses is used by several pools',
                      self.cluster.name, '; '.join(
                          'member(s) %s at %s (pools %s)' % (
                              ', '.join(sorted(ids)), dial,
                              ', '.join(sorted(pools[dial])))
                          for dial, ids in sorted(withheld.items())))
        return found

    @staticmethod
    def _dials(pool):
        """``[(member, dial address)]`` of the members Caddy proxies to."""
        found = []
        for member in translate.proxied_members(pool):
            try:
                found.append((member, translate.member_dial(member)))
            except exceptions.BackendRejected:
                continue
        return found

    @classmethod
    def _pools_by_dial(cls, graphs):
        """``{dial address: {pool id}}`` over every pool of ``graphs``."""
        found = {}
        for graph in graphs.values():
            for pool in graph.get('pools', []):
                for _member, dial in cls._dials(pool):
                    found.setdefault(dial, set()).add(pool['pool_id'])
        return found

    def collect_statistics(self):
        answered = 0
        for endpoint, client in self._nodes:
            with self._changing[endpoint]:
                answered += self._read_traffic(endpoint, client)
        if not answered:
            raise exceptions.BackendUnavailable(
                'cluster %s: no Caddy node answered' % self.cluster.name)
        found = {}
        for server, stats in self._ledger.take().items():
            _lb_id, _sep, listener_id = server.partition(SEPARATOR)
            if listener_id:
                found[listener_id] = dataclasses.replace(
                    stats, listener_id=listener_id)
        return found
