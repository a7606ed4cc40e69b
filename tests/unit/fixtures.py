"""Shared builders and fakes for the multilb unit tests.

* :func:`write_conf` / :func:`load_conf` / :func:`make_runtime`: a private
  ``ConfigOpts`` loaded from an ini file in ``tmp_path`` (sqlite state store
  and tooz ``file://`` coordination in ``tmp_path`` too).
* :func:`create_lb`, :func:`get_lb`, :func:`lb_graph`: one load balancer with
  every object type, as Octavia hands it to ``loadbalancer_create`` (with its
  traps, see :func:`create_lb`) and as ``DriverLibrary.get_loadbalancer``
  returns it (see :func:`as_get_result`).
* :class:`FakeOctavia`: the worker's duck-typed ``OctaviaClient``.
* :class:`Clock`: replaces ``multilb.worker.time`` so tests move time on
  without sleeping.
* :class:`WorkerEnv`: cluster 'alpha' with its ClusterWorker, the driver,
  the sqlite state and a fake appliance mirrored as JSON in ``tmp_path``.

Fixtures (imported by the conftest modules of the test packages, and by
the BUGS_*.py modules through ``pytest_plugins``): ``isolated`` (autouse),
``clock``, ``settings``, ``env`` (a WorkerEnv), ``executor`` (a thread pool
for ``ClusterWorker.scan``).
"""

from __future__ import annotations

import concurrent.futures
import copy
import json
import textwrap
import time
import types

import pytest
from octavia_lib.api.drivers import data_models as dm
from oslo_config import cfg
from tooz import coordination as tooz_coordination

import multilb.conf
from backends.fake import backend as fake_backend
from multilb import coordination
from multilb import driver as driver_mod
from multilb import graph as graphs
from multilb import jobs
from multilb import octavia as octavia_mod
from multilb import runtime
from multilb import store
from multilb import outbox as outbox_mod
from multilb import probing
from multilb import reconcile
from multilb import worker as worker_mod

# -- ids of the sample load balancer ------------------------------------------

LB = 'lb-1'
PROJECT = 'proj-1'
L_HTTP = 'listener-http'        # default pool POOL_WEB, two L7 policies
L_TLS = 'listener-tls'          # TERMINATED_HTTPS, no default pool
POL_REDIRECT = 'l7policy-api'   # REDIRECT_TO_POOL -> POOL_API, rule R_API
POL_REJECT = 'l7policy-admin'   # REJECT, rule R_ADMIN
R_API = 'l7rule-api'
R_ADMIN = 'l7rule-admin'
POOL_WEB = 'pool-web'           # members M1, M2 and health monitor HM
POOL_API = 'pool-api'           # member M3, no health monitor
M1, M2, M3 = 'member-1', 'member-2', 'member-3'
HM = 'hm-web'

PRIVATE_KEY = '-----BEGIN PRIVATE KEY-----\nSECRET-KEY-MATERIAL\n'
PASSPHRASE = 'tls-passphrase-secret'
TLS_DATA = {'certificate': '-----BEGIN CERTIFICATE-----\nCERT\n',
            'private_key': PRIVATE_KEY, 'passphrase': PASSPHRASE,
            'intermediates': ['-----BEGIN CERTIFICATE-----\nINTER\n'],
            'primary_cn': 'www.example.com'}
SECRETS = (PRIVATE_KEY.splitlines()[1], PASSPHRASE)

ALL_IDS = {LB: 'loadbalancer', L_HTTP: 'listener', L_TLS: 'listener',
           POL_REDIRECT: 'l7policy', POL_REJECT: 'l7policy',
           R_API: 'l7rule', R_ADMIN: 'l7rule', POOL_WEB: 'pool',
           POOL_API: 'pool', M1: 'member', M2: 'member', M3: 'member',
           HM: 'healthmonitor'}


def member(member_id, pool_id, address, **kwargs):
    fields = dict(member_id=member_id, pool_id=pool_id, project_id=PROJECT,
                  address=address, protocol_port=8080, weight=1,
                  backup=False, admin_state_up=True, name=member_id,
                  subnet_id=None, monitor_address=None, monitor_port=None,
                  vnic_type='normal')
    fields.update(kwargs)
    return dm.Member(**fields)


def health_monitor(hm_id=HM, pool_id=POOL_WEB, **kwargs):
    fields = dict(healthmonitor_id=hm_id, pool_id=pool_id,
                  project_id=PROJECT, name=hm_id, admin_state_up=True,
                  type='HTTP', delay=5, timeout=3, max_retries=3,
                  max_retries_down=3, http_method='GET', http_version=1.1,
                  url_path='/healthz', expected_codes='200',
                  domain_name=None)
    fields.update(kwargs)
    return dm.HealthMonitor(**fields)


def pool(pool_id, algorithm='ROUND_ROBIN', members=(), hm=None, **kwargs):
    fields = dict(pool_id=pool_id, loadbalancer_id=LB, project_id=PROJECT,
                  name=pool_id, description='', admin_state_up=True,
                  protocol='HTTP', lb_algorithm=algorithm,
                  session_persistence=None, healthmonitor=hm,
                  members=list(members), tls_enabled=False)
    fields.update(kwargs)
    return dm.Pool(**fields)


def l7rule(rule_id, policy_id, value, **kwargs):
    fields = dict(l7rule_id=rule_id, l7policy_id=policy_id,
                  project_id=PROJECT, admin_state_up=True, type='PATH',
                  compare_type='STARTS_WITH', key=None, value=value,
                  invert=False)
    fields.update(kwargs)
    return dm.L7Rule(**fields)


def l7policy(policy_id, listener_id, action, rules=(), position=1,
             **kwargs):
    fields = dict(l7policy_id=policy_id, listener_id=listener_id,
                  project_id=PROJECT, name=policy_id, description='',
                  admin_state_up=True, action=action, position=position,
                  redirect_pool_id=None, redirect_url=None,
                  redirect_prefix=None, redirect_http_code=None,
                  rules=list(rules))
    fields.update(kwargs)
    return dm.L7Policy(**fields)


def listener(listener_id, protocol='HTTP', port=80, default_pool_id=None,
             default_pool=None, policies=(), **kwargs):
    fields = dict(listener_id=listener_id, loadbalancer_id=LB,
                  project_id=PROJECT, name=listener_id, description='',
                  admin_state_up=True, protocol=protocol,
                  protocol_port=port, connection_limit=-1,
                  default_pool_id=default_pool_id,
                  default_pool=default_pool, l7policies=list(policies),
                  insert_headers={}, allowed_cidrs=None,
                  timeout_client_data=50000, timeout_member_connect=5000,
                  timeout_member_data=50000, timeout_tcp_inspect=0)
    fields.update(kwargs)
    return dm.Listener(**fields)


def _pools():
    web = pool(POOL_WEB, members=[member(M1, POOL_WEB, '192.0.2.10'),
                                  member(M2, POOL_WEB, '192.0.2.11')],
               hm=health_monitor())
    api = pool(POOL_API, algorithm='LEAST_CONNECTIONS',
               members=[member(M3, POOL_API, '192.0.2.20')])
    return web, api


def _policies():
    return [
        l7policy(POL_REDIRECT, L_HTTP, 'REDIRECT_TO_POOL',
                 redirect_pool_id=POOL_API, position=1,
                 rules=[l7rule(R_API, POL_REDIRECT, '/api')]),
        l7policy(POL_REJECT, L_HTTP, 'REJECT', position=2,
                 rules=[l7rule(R_ADMIN, POL_REJECT, '/admin')]),
    ]


def _lb(listeners, pools, **kwargs):
    fields = dict(loadbalancer_id=LB, project_id=PROJECT, name='web',
                  description='', admin_state_up=True, flavor={},
                  availability_zone={}, vip_address='203.0.113.5',
                  vip_network_id='net-1', vip_port_id='port-1',
                  vip_subnet_id='subnet-1', vip_qos_policy_id=None,
                  vip_sg_ids=[], additional_vips=[], listeners=listeners,
                  pools=pools)
    fields.update(kwargs)
    return dm.LoadBalancer(**fields)


def create_lb(**kwargs):
    """The object Octavia passes to ``loadbalancer_create``.

    Pools are complete but their ``listener_id`` is Unset; the listener's
    ``default_pool`` is a partial copy (no members, no HM); the listeners'
    ``l7policies`` are empty although the request created two.
    """
    web, api = _pools()
    for p in (web, api):
        p.listener_id = dm.Unset
    partial = pool(POOL_WEB, members=[], hm=None)
    listeners = [
        listener(L_HTTP, default_pool_id=POOL_WEB, default_pool=partial),
        _tls_listener(),
    ]
    return _lb(listeners, [web, api], **kwargs)


def _tls_listener():
    return listener(L_TLS, protocol='TERMINATED_HTTPS', port=443,
                    default_tls_container_ref='ref-tls',
                    default_tls_container_data=dict(TLS_DATA),
                    sni_container_refs=['ref-sni'],
                    sni_container_data=[dict(TLS_DATA)])


def full_lb(**kwargs):
    """The committed tree, with every model nested (L7 policies included)."""
    web, api = _pools()
    listeners = [
        # The get path nests a full copy of the default pool.
        listener(L_HTTP, default_pool_id=POOL_WEB, default_pool=_pools()[0],
                 policies=_policies()),
        _tls_listener(),
    ]
    return _lb(listeners, [web, api], **kwargs)


def as_get_result(model):
    """What ``DriverLibrary.get_*`` returns for ``model``:
    the agent serialises with ``to_dict(recurse=True, render_unsets=True)``
    and the library rebuilds only the top level with ``from_dict``."""
    return type(model).from_dict(
        model.to_dict(recurse=True, render_unsets=True))


def get_lb(**kwargs):
    return as_get_result(full_lb(**kwargs))


def lb_graph(**kwargs):
    """The normalised graph the worker works on (OctaviaClient's output)."""
    return graphs.from_octavia(get_lb(**kwargs))


# -- configuration ------------------------------------------------------------


def write_conf(tmp_path, clusters=None, defaults=None, extra='',
               enabled=None, options=None, name='multilb.conf'):
    """Write an ini file; ``clusters`` is ``{name: {option: value}}``.

    ``defaults`` is the ``[cluster_defaults]`` section (``backend = fake``
    unless given); ``enabled`` overrides ``[multilb] enabled_clusters``;
    ``options`` adds ``[multilb]`` options.
    """
    clusters = {'alpha': {}} if clusters is None else clusters
    defaults = {'backend': 'fake'} if defaults is None else defaults
    lines = ['[multilb]',
             'enabled_clusters = %s' % (
                 ', '.join(clusters) if enabled is None else enabled),
             'store_url = sqlite:///%s' % (tmp_path / 'state.db'),
             'coordination_url = file://%s?executor=sync' % (
                 tmp_path / 'locks')]
    lines += ['%s = %s' % item for item in (options or {}).items()]
    lines.append('[cluster_defaults]')
    for key, value in defaults.items():
        lines.append('%s = %s' % (key, value))
    for cluster, options in clusters.items():
        lines.append('[cluster:%s]' % cluster)
        for key, value in options.items():
            lines.append('%s = %s' % (key, value))
    path = tmp_path / name
    path.write_text('\n'.join(lines) + '\n' + textwrap.dedent(extra))
    return path


def load_conf(path):
    conf = cfg.ConfigOpts()
    conf(args=['--config-file', str(path)], project='multilb-unit',
         default_config_files=[], default_config_dirs=[])
    return conf


def make_runtime(tmp_path, clusters=None, **kwargs):
    """A fresh :class:`multilb.runtime.Runtime` over a private conf."""
    return runtime.Runtime(load_conf(write_conf(tmp_path, clusters,
                                                **kwargs)))


def use_runtime(monkeypatch, rt):
    """Make ``runtime.get()`` (used by the driver) return ``rt``."""
    monkeypatch.setattr(runtime, 'get', lambda conf=None: rt)
    return rt


def all_stored_text(state):
    """Every key and value in the state store, as one string."""
    return '\n'.join('%s=%s' % (e.key, e.value)
                     for e in state.kv.get_prefix(''))


def create_agent_group(url):
    """Create the agents' tooz group up front.

    The first ``join_group_create`` on a new group sleeps a second in
    tooz's retry before it creates the group; tests do not need to wait.
    """
    coordinator = tooz_coordination.get_coordinator(url, b'test-setup')
    coordinator.start()
    try:
        coordinator.create_group(coordination.GROUP).get()
    except tooz_coordination.GroupAlreadyExist:
        pass
    coordinator.stop()


# -- fakes --------------------------------------------------------------------


class FakeOctavia:
    """Duck-typed :class:`multilb.octavia.OctaviaClient`.

    ``lbs`` holds the committed graphs (what Octavia's DB shows); tests
    change it to play "not committed yet" or "committed now".
    ``get_errors`` / ``update_errors`` are queues of exceptions raised by
    the next calls; ``statuses`` records every delivered status dict.
    """

    def __init__(self):
        self.lbs = {}
        self.statuses = []
        self.get_errors = []
        self.update_errors = []
        self.update_attempts = 0
        self.statistics = []

    def commit(self, model_or_graph):
        """Make a load balancer visible, as Octavia's commit would."""
        if isinstance(model_or_graph, dict):
            graph = copy.deepcopy(model_or_graph)
        else:
            graph = graphs.from_octavia(as_get_result(model_or_graph))
        self.lbs[graph['loadbalancer_id']] = graph
        return graph

    def get_loadbalancer(self, lb_id):
        if self.get_errors:
            raise self.get_errors.pop(0)
        found = self.lbs.get(lb_id)
        return copy.deepcopy(found) if found is not None else None

    def update_status(self, status):
        self.update_attempts += 1
        if self.update_errors:
            raise self.update_errors.pop(0)
        json.dumps(status)   # what the socket would do with it
        self.statuses.append(status)

    def update_statistics(self, statistics):
        if self.update_errors:
            raise self.update_errors.pop(0)
        json.dumps(statistics)
        self.statistics.append(copy.deepcopy(statistics))

    def listener_stats(self):
        """``{listener_id: record}``: what Octavia's rows hold now."""
        found = {}
        for statistics in self.statistics:
            for record in statistics['listeners']:
                found[record['id']] = record
        return found

    # -- reading what was reported ------------------------------------------

    def provisioning(self):
        """``{(type, id): provisioning_status}`` over every delivery."""
        return flatten(self.statuses)


def flatten(statuses, field='provisioning_status'):
    """``{(status key, id): value}`` merged over status dicts, in order."""
    if isinstance(statuses, dict):
        statuses = [statuses]
    found = {}
    for status in statuses:
        for key, records in status.items():
            for record in records:
                if field in record:
                    found[(key, record['id'])] = record[field]
    return found


OctaviaUnavailable = octavia_mod.OctaviaUnavailable
StatusRejected = octavia_mod.StatusRejected


class Clock:
    """Stands in for ``time`` in multilb.worker, jobs, probing, outbox and
    reconcile."""

    def __init__(self):
        self.offset = 0.0

    def time(self):
        return time.time() + self.offset

    def monotonic(self):
        return time.monotonic() + self.offset

    def advance(self, seconds):
        self.offset += seconds


# -- a worker with its driver, store, fake Octavia and fake appliance ---------

ACTIVE, ERROR, DELETED = 'ACTIVE', 'ERROR', 'DELETED'


class WorkerEnv:
    """One cluster 'alpha', its worker, the driver and a fake Octavia."""

    def __init__(self, tmp_path, monkeypatch, settings, observes=True,
                 **options):
        """:param observes: the fake cluster pretends to carry traffic
            (``fake_observe_health``); False: a no-op cluster as tempest
            runs it.
        :param options: more options of its ``[cluster:alpha]`` section."""
        self.tmp_path = tmp_path
        self.fault_file = tmp_path / 'faults.json'
        self.rt = use_runtime(monkeypatch, make_runtime(tmp_path, {
            'alpha': dict({'fake_state_dir': tmp_path / 'appliance',
                           'fake_fault_file': self.fault_file,
                           'fake_observe_health': observes}, **options)}))
        self.state = self.rt.state
        self.driver = driver_mod.MultiLBProviderDriver()
        self.octavia = FakeOctavia()
        cluster = self.rt.clusters.clusters['alpha']
        self.worker = worker_mod.ClusterWorker(cluster, self.state,
                                               self.octavia, settings)
        self.worker.backend = cluster.backend_class(cluster)

    def pending(self, lb_id=LB):
        return self.state.pending('alpha').get(lb_id, [])

    def process(self, lb_id=LB):
        """One pass of the worker over the LB's pending intents."""
        self.worker.process(lb_id, self.pending(lb_id))

    def appliance(self, lb_id=LB):
        path = self.tmp_path / 'appliance' / 'alpha' / (lb_id + '.json')
        return json.loads(path.read_text()) if path.exists() else None

    def faults(self, **faults):
        self.fault_file.write_text(json.dumps(faults))

    def placed(self):
        return self.state.cluster_counts().get('alpha', (0, None))[0]

    def create_active(self):
        """The sample LB created, committed, applied and reported."""
        self.driver.loadbalancer_create(create_lb())
        self.octavia.commit(full_lb())
        self.process()
        assert self.octavia.provisioning()[('loadbalancers', LB)] == ACTIVE
        self.octavia.statuses.clear()
        self.octavia.update_attempts = 0

    def committed(self):
        """Octavia's committed graph of the LB (edit it in place)."""
        return self.octavia.lbs[LB]

    def weight_update(self, appliance_down=True):
        """An ACTIVE LB, then a committed weight change of member M1 (5),
        by default on an appliance that is down."""
        self.create_active()
        if appliance_down:
            self.faults(apply='unavailable')
        self.driver.member_update(member(M1, POOL_WEB, '192.0.2.10'),
                                  dm.Member(member_id=M1, weight=5))
        self.committed()['pools'][0]['members'][0]['weight'] = 5


def reported(env):
    """``{id: provisioning}`` over every delivered status update."""
    return {oid: value for (_key, oid), value in
            env.octavia.provisioning().items()}


# -- fixtures -----------------------------------------------------------------


@pytest.fixture(autouse=True)
def isolated(monkeypatch):
    """Per-test process globals: runtimes, stores, fake appliances.

    ``multilb.conf`` remembers registered ConfigOpts by ``id()``, and a new
    ConfigOpts may reuse the id of a collected one, so that memo is emptied
    too.
    """
    runtime.reset()
    monkeypatch.setattr(multilb.conf, '_registered', {})
    stores = {}
    monkeypatch.setattr(store, '_cache', stores)
    monkeypatch.setattr(fake_backend, '_STATE', {})
    yield
    runtime.reset()
    for kv in stores.values():
        kv.close()


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(worker_mod, 'time', fake)
    monkeypatch.setattr(probing, 'time', fake)
    monkeypatch.setattr(outbox_mod, 'time', fake)
    monkeypatch.setattr(reconcile, 'time', fake)
    monkeypatch.setattr(jobs, 'time', fake)
    return fake


@pytest.fixture
def settings():
    """The ``[multilb]`` options a ClusterWorker reads."""
    return types.SimpleNamespace(poll_interval=0.01, commit_wait_timeout=60.0,
                                 apply_retry_timeout=300.0,
                                 workers_per_cluster=2,
                                 membership_interval=0.1,
                                 health_interval=10.0,
                                 resync_interval=30.0,
                                 member_health_interval=10.0,
                                 statistics_interval=10.0,
                                 orphan_action='delete',
                                 orphan_grace_period=30.0,
                                 orphan_sweep_limit=10,
                                 move_timeout=300.0,
                                 idle_poll_interval=5.0)


@pytest.fixture
def env(tmp_path, monkeypatch, settings, clock):
    """A :class:`WorkerEnv` for cluster 'alpha' (time on the ``clock``)."""
    return WorkerEnv(tmp_path, monkeypatch, settings)


@pytest.fixture
def make(tmp_path, monkeypatch):
    """``make(clusters, **write_conf options) -> (driver, runtime)`` over a
    private conf (what ``runtime.get()`` returns in the test)."""
    def _make(clusters=None, **kwargs):
        rt = use_runtime(monkeypatch, make_runtime(tmp_path, clusters,
                                                   **kwargs))
        return driver_mod.MultiLBProviderDriver(), rt
    return _make


@pytest.fixture
def executor(env):
    """Give the worker a real thread pool so that ``scan()`` can run."""
    pool = concurrent.futures.ThreadPoolExecutor(2)
    env.worker._pool = pool
    yield pool
    pool.shutdown(wait=True)
