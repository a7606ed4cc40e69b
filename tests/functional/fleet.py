"""A real fleet for functional tests: etcd, MariaDB, Octavia API + driver agent
with multilb enabled over FAKE appliance clusters, and an openstacksdk client.

Everything runs on free ports under a private directory and is stopped at the
end (tools/localstack). Faults are injected into the fake clusters through a
JSON file (see backends/fake/backend.py).
"""

from __future__ import annotations

import json
import os
import time
import urllib.request

import openstack

from tests import tls as tls_material
from tools.localstack import etcd as ls_etcd
from tools.localstack import mariadb as ls_mariadb
from tools.localstack import octavia as ls_octavia
from tools.localstack import ports

VIP_SUBNET = '11111111-2222-3333-4444-555555555555'


def multilb_conf(workdir, store_url, clusters, poll_interval=0.1, extra='',
                 enabled_extra=(), coordination_url=None,
                 cluster_options=None, metrics_port=0):
    """The [multilb] and [cluster:*] sections for ``clusters`` {name: max}.

    ``enabled_extra`` names more enabled clusters whose sections (if any)
    come in ``extra``: tests use it for broken ones. ``metrics_port``: the
    agent's Prometheus endpoint (0: off).
    """
    lines = ['[multilb]',
             'enabled_clusters = %s' % ', '.join(
                 list(clusters) + list(enabled_extra)),
             'store_url = %s' % store_url,
             'coordination_url = %s' % coordination_url,
             'poll_interval = %s' % poll_interval,
             'commit_wait_timeout = 30',
             'apply_retry_timeout = 20',
             'membership_interval = 0.5',
             'health_interval = 1',
             'resync_interval = 2',
             'orphan_grace_period = 2',
             'metrics_port = %d' % metrics_port,
             '[cluster_defaults]',
             '# tests inject faults: a tripped breaker must not outlive them',
             'breaker_reset_timeout = 2',
             '# the fake clusters pretend to carry traffic (operating',
             '# statuses follow health); tempest runs them without it',
             'fake_observe_health = true',
             'fake_fault_file = %s/faults.json' % workdir,
             'fake_state_dir = %s/appliance' % workdir]
    for name, limit in clusters.items():
        options = dict((cluster_options or {}).get(name, {}))
        lines += ['[cluster:%s]' % name,
                  'backend = %s' % options.pop('backend', 'fake'),
                  'max_loadbalancers = %d' % limit]
        lines += ['%s = %s' % item for item in options.items()]
    return '\n'.join(lines) + '\n' + extra


class Fleet:
    """Starts and stops the whole stack; offers helpers to tests."""

    def __init__(self, workdir, clusters, api_count=1, extra_conf='',
                 enabled_extra=(), single_host=False, cluster_options=None,
                 local_certificates=False, etcd_members=1):
        """:param single_host: use the embedded one-host defaults (sqlite
        store, file:// coordination) instead of etcd for multilb.
        :param local_certificates: Octavia reads TLS containers from
            ``cert_dir`` (its local cert manager) instead of Barbican; see
            :meth:`store_certificate`.
        :param etcd_members: above 1, multilb's store and coordination
            use an etcd cluster of that many members (``self.etcd`` is an
            :class:`tools.localstack.etcd.EtcdCluster`), every member
            listed in their URLs."""
        self.workdir = str(workdir)
        self.single_host = single_host
        self.cluster_options = cluster_options
        self.clusters = clusters
        self.enabled_extra = enabled_extra
        self.api_count = api_count
        self.extra_conf = extra_conf
        self.cert_dir = (os.path.join(self.workdir, 'octavia-certificates')
                         if local_certificates else None)
        self.etcd_members = etcd_members
        self.etcd = self.db = self.octavia = None
        self.metrics_port = None

    def start(self):
        try:
            self.etcd = (ls_etcd.EtcdServer(self.workdir)
                         if self.etcd_members == 1 else ls_etcd.EtcdCluster(
                             self.workdir, self.etcd_members)).start()
            self.db = ls_mariadb.MariaDBServer(self.workdir).start()
            url = self.db.create_database('octavia', 'octavia', 'octavia')
            if self.single_host:
                store_url = 'sqlite:///%s/multilb/state.db' % self.workdir
                coordination_url = 'file://%s/multilb/locks' % self.workdir
            else:
                store_url = self.etcd.store_url + '?prefix=/multilb/'
                coordination_url = (self.etcd.store_url + '?timeout=5'
                                    '&lock_timeout=6&membership_timeout=6')
            # the agent's Prometheus endpoint (tests/functional/
            # test_metrics.py scrapes it)
            self.metrics_port = ports.free_port()
            conf = multilb_conf(self.workdir, store_url, self.clusters,
                                extra=self.extra_conf,
                                enabled_extra=self.enabled_extra,
                                coordination_url=coordination_url,
                                cluster_options=self.cluster_options,
                                metrics_port=self.metrics_port)
            self.octavia = ls_octavia.OctaviaStack(
                self.workdir, url, extra_conf=conf,
                api_count=self.api_count, debug=True,
                cert_storage_path=self.cert_dir).start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        for service in (self.octavia, self.db, self.etcd):
            if service is not None:
                service.stop()

    # -- helpers ---------------------------------------------------------

    def connection(self, index=0):
        api = self.octavia.api_urls[index]
        return openstack.connection.Connection(
            auth_type='none', auth={'endpoint': api},
            load_balancer_endpoint_override=api)

    def store_certificate(self, tls):
        """Put ``tls`` (tests/tls.py shape) into Octavia's local
        certificate store; returns the ref for ``*_tls_container_ref``."""
        return tls_material.store_local(self.cert_dir, tls)

    def set_faults(self, **faults):
        path = os.path.join(self.workdir, 'faults.json')
        with open(path + '.tmp', 'w') as f:
            json.dump(faults, f)
        os.replace(path + '.tmp', path)

    def appliance(self, lb_id):
        """What the fake appliance holds for ``lb_id`` (None if nothing)."""
        root = os.path.join(self.workdir, 'appliance')
        for cluster in self.clusters:
            path = os.path.join(root, cluster, lb_id + '.json')
            if os.path.exists(path):
                with open(path) as f:
                    return cluster, json.load(f)
        return None

    def metrics(self):
        """The text of the driver agent's metrics endpoint
        (``[multilb] metrics_port``, on 127.0.0.1)."""
        url = 'http://127.0.0.1:%d/metrics' % self.metrics_port
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=10) as resp:
            return resp.read().decode()

    def agent_log(self):
        with open(os.path.join(self.octavia.log_dir,
                               'octavia-driver-agent.log')) as f:
            return f.read()


def wait_for(predicate, timeout=60, interval=0.1, what='condition'):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError('%s not reached in %ss' % (what, timeout))
        time.sleep(interval)
