"""``f5``: a cluster of F5 BIG-IP devices driven through AS3.

One multilb cluster is one BIG-IP device, or one HA pair / device group
whose members share their configuration (config sync): declarations go to
the **active** device (``/mgmt/tm/cm/device`` ``failoverState``, read at
every probe when more than one endpoint is configured; a failover moves
them to the new active device).

Tenancy: each (project, VIP network) is one AS3 tenant (a BIG-IP
partition, :mod:`backends.f5.names`), each load balancer one AS3
application in it, sent with AS3's per-application API (3.50+) so a change
of one load balancer never needs the graphs of the tenant's others (which
hold TLS keys multilb does not keep). The tenant goes with its last
application. Route domains are the operator's: ``route_domains`` maps VIP
network ids to existing route domain ids (AS3 cannot create them), and
every address of that network's load balancers is declared
``ADDR%<id>``; VLANs and self IPs are the operator's too (iControl REST,
outside multilb).

Declarations: one at a time per device, pending changes of a tenant
coalesced into one declaration (:mod:`backends.f5.declarations`), sent
with ``?async=true`` and polled (:mod:`backends.f5.client`). The device
lock (HTTP 503) is *busy*: changes wait and back off, the cluster's
circuit breaker does not count it.

Versions: AS3 :data:`MINIMUM_AS3` or later (declarations are schema
3.56.0, validated against it in tests) on BIG-IP :data:`MINIMUM_BIGIP` or
later, read at the first probe and whenever the device answered a
failure; an older device gets no declaration (the probe's detail and a
WARNING say why).

Resync: every ``divergence_check_interval`` the probe lists the tenants
the device holds; load balancers this agent applied that are missing (a
device restored from an older configuration, AS3 reinstalled, another
device become active without them) are reported for re-apply; applications
no placed load balancer owns are the orphan sweep's
(:meth:`list_loadbalancer_ids`).
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time

from oslo_config import cfg

from backends import base
from backends import endpoints as endpoints_mod
from backends import exceptions
from backends import transport as transport_mod
from backends import types
from backends.f5 import client as client_mod
from backends.f5 import declarations
from backends.f5 import names
from backends.f5 import stats as stats_mod
from backends.f5 import translate
from multilb import exceptions as multilb_exc
from multilb import redact

LOG = logging.getLogger(__name__)

MINIMUM_AS3 = (3, 56, 0)
MINIMUM_BIGIP = (15, 1)
TENANT_PREFIX = 'mlb_'
_INSERT_HEADERS = frozenset(('X-Forwarded-For',))


def _version(text, parts):
    try:
        return tuple(int(p) for p in str(text).split('.')[:parts])
    except (TypeError, ValueError):
        return None


def _text(version):
    return '.'.join(str(p) for p in version)


class F5Backend(base.ApplianceBackend):
    """F5 BIG-IP with AS3 (a device or an HA pair). See the module doc."""

    SUPPORTED_LISTENER_PROTOCOLS = translate.SUPPORTED[
        'SUPPORTED_LISTENER_PROTOCOLS']
    SUPPORTED_POOL_PROTOCOLS = translate.SUPPORTED['SUPPORTED_POOL_PROTOCOLS']
    SUPPORTED_ALGORITHMS = translate.SUPPORTED['SUPPORTED_ALGORITHMS']
    SUPPORTED_HEALTH_MONITOR_TYPES = translate.SUPPORTED[
        'SUPPORTED_HEALTH_MONITOR_TYPES']
    SUPPORTED_SESSION_PERSISTENCE = translate.SUPPORTED[
        'SUPPORTED_SESSION_PERSISTENCE']
    SUPPORTED_L7_ACTIONS = translate.SUPPORTED['SUPPORTED_L7_ACTIONS']
    SUPPORTED_L7_RULE_TYPES = translate.SUPPORTED['SUPPORTED_L7_RULE_TYPES']
    BINDS_ADDRESSES = True
    OBSERVES_HEALTH = True
    # applies wait in the device's queue, where the changes of a tenant
    # that wait together go in one declaration: let a burst wait together
    PARALLEL_APPLIES = 100

    @classmethod
    def get_config_options(cls):
        return [
            cfg.ListOpt('endpoints', default=[],
                        help='iControl REST URLs of the BIG-IP devices of '
                             'the cluster: one device, or both members of '
                             'an HA pair (declarations go to the active '
                             'one), for example https://192.0.2.10, '
                             'https://192.0.2.11. Their management '
                             'addresses are refused as tenant addresses.'),
            cfg.StrOpt('username', default='admin',
                       help='BIG-IP user with the Administrator role (AS3 '
                            'needs it).'),
            cfg.StrOpt('password', default='', secret=True,
                       help='Its password; sent in the login request only '
                            '(multilb keeps and reuses one token per '
                            'device).'),
            cfg.StrOpt('ca_bundle', default='',
                       help='CA bundle that signs the devices\' '
                            'management certificates. Empty: the system '
                            'trust store.'),
            cfg.BoolOpt('verify_tls', default=True,
                        help='Verify the devices\' management certificates '
                             '(a lab with self-signed ones: false).'),
            cfg.DictOpt('route_domains', default={},
                        help='VIP network id: BIG-IP route domain id, for '
                             'example 6f3e...:2,9a1b...:3. Addresses of '
                             'load balancers on such a network are '
                             'declared ADDR%%ID (the route domain must '
                             'exist on the devices: AS3 cannot create '
                             'it). Networks not listed use '
                             'default_route_domain.'),
            cfg.IntOpt('default_route_domain', default=0, min=0, max=65534,
                       help='Route domain of VIP networks that '
                            'route_domains does not list (0: the '
                            'partition default).'),
            cfg.ListOpt('self_ips', default=[],
                        help='Self IP addresses of the devices (data '
                             'plane): refused as members, monitor '
                             'addresses and VIPs, like the management '
                             'addresses.'),
            cfg.FloatOpt('connect_timeout', default=5.0, min=0.1,
                         help='Seconds to connect to a device.'),
            cfg.FloatOpt('read_timeout', default=60.0, min=0.1,
                         help='Seconds to wait for each read from a '
                              'device.'),
            cfg.FloatOpt('probe_timeout', default=5.0, min=0.1,
                         help='Seconds a health probe waits for a device '
                              '(connect and read, no retry).'),
            cfg.FloatOpt('task_timeout', default=900.0, min=1.0,
                         help='Seconds one declaration may run on a device '
                              'before multilb stops waiting for it (30 to '
                              '180 s are common on loaded devices).'),
            cfg.FloatOpt('change_timeout', default=240.0, min=1.0,
                         help='Seconds a change of a load balancer may '
                              'wait for its turn and its declaration. '
                              'Then, unless its declaration is running, '
                              'it is withdrawn and the agent retries it '
                              '(keeping its place in the queue) until '
                              'apply_retry_timeout (this section\'s, else '
                              '[multilb]\'s, 300 s by default) and then '
                              'reports ERROR: keep it below that, and raise '
                              'both for devices with long queues.'),
            cfg.FloatOpt('task_poll_interval', default=1.0, min=0.05,
                         help='Seconds between two reads of a running '
                              'declaration\'s task.'),
            cfg.FloatOpt('busy_wait', default=2.0, min=0.05,
                         help='Seconds to wait before sending again when '
                              'the device is busy with another '
                              'declaration; doubled up to busy_wait_max.'),
            cfg.FloatOpt('busy_wait_max', default=30.0, min=0.05,
                         help='Longest wait between two attempts on a '
                              'busy device.'),
            cfg.FloatOpt('divergence_check_interval', default=60.0,
                         min=0.5,
                         help='Seconds between two listings of the '
                              'tenants the device holds: load balancers '
                              'missing from it are re-applied.'),
        ]

    @classmethod
    def check_config(cls, options):
        endpoints = options.get('endpoints') or []
        endpoints_mod.require(endpoints, 'the iControl REST URL of each '
                              'device, for example https://192.0.2.10')
        for endpoint in endpoints:
            parsed = endpoints_mod.check_http(endpoint)
            if parsed.username or parsed.password:
                raise multilb_exc.ConfigError(
                    'endpoints: %s carries credentials; use username and '
                    'password' % redact.url(endpoint))
        if not options.get('password'):
            raise multilb_exc.ConfigError(
                'password: missing; the BIG-IP user\'s password')
        for network, domain in (options.get('route_domains') or {}).items():
            try:
                value = int(domain)
            except (TypeError, ValueError):
                value = -1
            if not 0 <= value <= 65534:
                raise multilb_exc.ConfigError(
                    'route_domains: %s:%s is not a route domain id '
                    '(0..65534)' % (network, domain))
        for address in options.get('self_ips') or []:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise multilb_exc.ConfigError(
                    'self_ips: %r is not an IP address' % address)

    @classmethod
    def management_addresses(cls, options):
        found = endpoints_mod.ip_ports(options.get('endpoints'))
        for address in options.get('self_ips') or ():
            try:
                found.add((str(ipaddress.ip_address(address)), None))
            except ValueError:
                continue
        return found

    @classmethod
    def check_supported(cls, object_type, fields):
        """The declared sets, plus options AS3 cannot express."""
        super().check_supported(object_type, fields)
        problem = None
        if object_type == 'listener':
            auth = fields.get('client_authentication')
            headers = sorted(k for k, v in (fields.get('insert_headers')
                                            or {}).items()
                             if str(v).lower() == 'true'
                             and k not in _INSERT_HEADERS)
            cidrs = fields.get('allowed_cidrs') or []
            if auth not in (None, 'NONE'):
                problem = ('listener client_authentication %s is not '
                           'supported; supported: NONE' % auth)
            elif headers:
                problem = ('listener insert_headers %s not supported; '
                           'supported: X-Forwarded-For' % ', '.join(headers))
            elif len(cidrs) > 1:
                problem = ('listener allowed_cidrs with %d entries is not '
                           'supported; supported: at most one' % len(cidrs))
        elif object_type == 'pool' and fields.get('tls_enabled'):
            problem = ('pool tls_enabled is not supported; supported: '
                       'false')
        elif object_type == 'member' and (fields.get('monitor_address') or
                                          fields.get('monitor_port')):
            problem = ('member monitor_address / monitor_port are not '
                       'supported (monitors are per pool); supported: none')
        elif object_type == 'l7rule' and fields.get('compare_type') == \
                'REGEX':
            problem = ('l7rule compare_type REGEX is not supported (BIG-IP '
                       'policies have no regular expressions); supported: '
                       'CONTAINS, ENDS_WITH, EQUAL_TO, STARTS_WITH')
        elif object_type == 'healthmonitor':
            delay, retries = fields.get('delay'), fields.get(
                'max_retries_down')
            if isinstance(delay, int) and isinstance(retries, int) and \
                    delay * retries + 1 > 900:
                problem = ('health monitor delay x max_retries_down + 1 = '
                           '%d s is not supported; supported: at most '
                           '900 s' % (delay * retries + 1))
        if problem:
            raise exceptions.UnsupportedFeature(problem)

    # -- instance ------------------------------------------------------------

    def start(self):
        opts = self.cluster.options
        verify = opts.get('verify_tls', True)

        def client(endpoint, timeout, retries):
            return client_mod.AS3Client(
                transport_mod.Transport(
                    endpoint, connect_timeout=min(
                        opts.get('connect_timeout', 5.0), timeout),
                    read_timeout=timeout, retries=retries,
                    ca_bundle=opts.get('ca_bundle') or None, verify=verify,
                    breaker=self.breaker, classify=client_mod.classify),
                opts.get('username') or 'admin', opts.get('password') or '',
                task_timeout=opts.get('task_timeout', 900.0),
                poll_interval=opts.get('task_poll_interval', 1.0))

        endpoints = list(opts['endpoints'])
        # declarations: no transport retry (busy is the queue's business)
        self._clients = {e: client(e, opts.get('read_timeout', 60.0), 0)
                         for e in endpoints}
        self._probes = {e: client(e, opts.get('probe_timeout', 5.0), 0)
                        for e in endpoints}
        self._active = endpoints[0]
        self._checked = {}       # endpoint -> None (ok) or why refused
        self._lock = threading.Lock()
        self._tenants = {}       # lb id -> tenant (applied or seen)
        self._applied = set()    # lb ids this instance put on the device
        self._listed_at = None
        self._ledger = stats_mod.TrafficLedger()
        self._queue = declarations.DeclarationQueue(
            self._declaring_client, translate.SCHEMA_VERSION,
            self.cluster.name, busy_wait=opts.get('busy_wait', 2.0),
            busy_wait_max=opts.get('busy_wait_max', 30.0))
        self._queue.start()

    def stop(self):
        queue = getattr(self, '_queue', None)
        if queue is not None:
            queue.stop()
        for group in (getattr(self, '_clients', {}),
                      getattr(self, '_probes', {})):
            for client in group.values():
                client.logout()
                try:
                    client.transport.close()
                except Exception:  # noqa: B902 - stop must not raise
                    LOG.debug('closing %s failed', client, exc_info=True)

    def _declaring_client(self):
        """The active device's client, refusing one too old for us."""
        endpoint = self._active
        if endpoint not in self._checked:
            self._check_versions(endpoint, self._clients[endpoint])
        problem = self._checked.get(endpoint)
        if problem:
            error = exceptions.BackendUnavailable(
                'cluster %s: %s' % (self.cluster.name, problem))
            error.cluster_failure = False
            raise error
        return self._clients[endpoint]

    def _check_versions(self, endpoint, client):
        """Read AS3's and BIG-IP's versions (once per device and answer).

        :raises BackendUnavailable: the device did not answer.
        """
        as3 = (client.as3_info() or {}).get('version')
        bigip = client.bigip_version()
        problem = None
        if _version(as3, 3) is None or _version(as3, 3) < MINIMUM_AS3:
            problem = ('device %s runs AS3 %s; multilb needs AS3 %s or '
                       'later (per-application declarations, schema %s)'
                       % (client.name, as3 or '(unknown)',
                          _text(MINIMUM_AS3), translate.SCHEMA_VERSION))
        elif bigip and (_version(bigip, 2) or (0,)) < MINIMUM_BIGIP:
            problem = ('device %s runs BIG-IP %s; multilb needs %s or '
                       'later' % (client.name, bigip, _text(MINIMUM_BIGIP)))
        if problem and self._checked.get(endpoint) != problem:
            LOG.warning('Cluster %s: %s: it gets no declaration',
                        self.cluster.name, problem)
        elif not problem and endpoint not in self._checked:
            LOG.info('Cluster %s: device %s runs AS3 %s on BIG-IP %s',
                     self.cluster.name, client.name, as3,
                     bigip or '(unknown)')
        self._checked[endpoint] = problem

    def _route_domain(self, graph):
        network = names.vip_network(graph)
        opts = self.cluster.options
        mapped = (opts.get('route_domains') or {}).get(network)
        return int(mapped if mapped is not None else
                   opts.get('default_route_domain', 0) or 0)

    def apply_loadbalancer(self, graph):
        lb_id = graph['loadbalancer_id']
        tenant = names.tenant_of(graph)
        app = translate.application(graph, self._route_domain(graph))
        self._queue.submit(tenant, names.application(lb_id), app,
                           self.cluster.options.get('change_timeout',
                                                    240.0), lb=lb_id)
        with self._lock:
            self._tenants[lb_id] = tenant
            self._applied.add(lb_id)
        LOG.debug('Cluster %s: load balancer %s declared in tenant %s',
                  self.cluster.name, lb_id, tenant)

    def delete_loadbalancer(self, loadbalancer_id):
        app = names.application(loadbalancer_id)
        with self._lock:
            tenant = self._tenants.get(loadbalancer_id)
        tenants = [tenant] if tenant else [
            t for t, apps in self._listing().items() if app in apps]
        for name in tenants:
            self._queue.submit(name, app, None, self.cluster.options.get(
                'change_timeout', 240.0), lb=loadbalancer_id)
        with self._lock:
            self._tenants.pop(loadbalancer_id, None)
            self._applied.discard(loadbalancer_id)

    def _listing(self, client=None):
        """``{tenant: {app names}}`` of multilb's tenants on the active
        device (never the operator's own)."""
        client = client or self._clients[self._active]
        return {tenant: set(apps) for tenant, apps in
                client.declared().items()
                if tenant.startswith(TENANT_PREFIX)}

    def list_loadbalancer_ids(self):
        found = set()
        for tenant, apps in self._listing().items():
            for app in apps:
                if app.startswith(stats_mod.APP_PREFIX):
                    lb_id = app[len(stats_mod.APP_PREFIX):]
                    found.add(lb_id)
                    with self._lock:
                        self._tenants.setdefault(lb_id, tenant)
        return found

    def probe(self):
        """Each device answers AS3's info (short timeout, no retry); the
        active one is found (HA) and, every divergence_check_interval,
        its tenants are listed and compared with what this agent
        applied."""
        problems, answered = [], []
        for endpoint, probe in self._probes.items():
            try:
                probe.as3_info()
                if endpoint not in self._checked:
                    self._check_versions(endpoint, probe)
                state = (probe.failover_state() if len(self._probes) > 1
                         else 'active')
            except exceptions.BackendError as exc:
                self._checked.pop(endpoint, None)   # read again when back
                problems.append('%s: %s' % (probe.name, exc))
                continue
            answered.append((endpoint, state))
        active = [e for e, state in answered if state == 'active'
                  and not self._checked.get(e)]
        if active and active[0] != self._active:
            LOG.warning('Cluster %s: device %s is now the active one '
                        '(was %s)', self.cluster.name,
                        self._probes[active[0]].name,
                        self._probes[self._active].name)
            self._active = active[0]
            self._listed_at = None   # compare with the new device now
        detail = '%d of %d devices answer' % (len(answered),
                                              len(self._probes))
        if answered and not active and not any(
                self._checked.get(e) for e, _ in answered):
            problems.append('no device says it is active')
        problems += [p for p in (self._checked.get(e) for e, _ in answered)
                     if p]
        resync_ids = frozenset()
        now = time.monotonic()
        interval = self.cluster.options.get('divergence_check_interval',
                                            60.0)
        if active and (self._listed_at is None
                       or now - self._listed_at >= interval):
            try:
                held = self._listing(self._probes[self._active])
            except exceptions.BackendError as exc:
                problems.append('listing: %s' % exc)
            else:
                self._listed_at = now
                apps = set().union(*held.values()) if held else set()
                with self._lock:
                    resync_ids = frozenset(
                        lb for lb in self._applied
                        if names.application(lb) not in apps)
                if resync_ids:
                    problems.append('device lacks %d load balancer(s) '
                                    'applied before' % len(resync_ids))
        pending = self._queue.pending()
        if pending:
            problems.append('%d change(s) waiting for the device' % pending)
        if problems:
            detail += '; ' + '; '.join(problems)
        return types.ClusterHealth(reachable=bool(active), detail=detail,
                                   resync_ids=resync_ids)

    # -- health and traffic --------------------------------------------------

    def member_health(self, graphs):
        client = self._clients[self._active]
        found = {}
        for lb_id, graph in graphs.items():
            try:
                tenant = names.tenant_of(graph)
            except exceptions.BackendRejected:
                continue
            for pool in graph.get('pools') or []:
                monitor = pool.get('healthmonitor') or {}
                if not monitor or monitor.get('admin_state_up') is False:
                    continue
                path = '/%s/%s/%s' % (tenant, names.application(lb_id),
                                      names.obj('pool', pool['pool_id'],
                                                'pool'))
                try:
                    members = client.stats('pool', path, members=True)
                except exceptions.BackendRejected:
                    continue        # not declared (yet)
                except exceptions.BackendUnavailable as exc:
                    if getattr(exc, 'busy', False):
                        return found    # mid-declaration: next round
                    raise
                found.update(stats_mod.member_verdicts(pool, members))
        return found

    def collect_statistics(self):
        try:
            virtuals = self._clients[self._active].stats('virtual')
        except exceptions.BackendUnavailable as exc:
            if getattr(exc, 'busy', False):
                LOG.debug('Cluster %s: statistics skipped, the device is '
                          'busy: %s', self.cluster.name, exc)
                return {}
            raise
        return self._ledger.take(virtuals)
