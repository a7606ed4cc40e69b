"""A private etcd (Debian etcd-server 3.4) for tests: one node
(:class:`EtcdServer`) or a cluster of members on loopback
(:class:`EtcdCluster`).

Data lives in ``<workdir>/etcd/data``, the log in ``<workdir>/etcd/etcd.log``
(``<workdir>/etcd-<name>/`` for a cluster's members). Client and peer ports
are picked once and kept, so ``restart()`` brings the same member back at
the same URL with its data, which is what etcd-outage tests need.

Cluster members run with ``HEARTBEAT_MS``/``ELECTION_MS`` rather than
etcd's 100/1000 ms: on a loaded 2-core host a member that misses a few
heartbeats would otherwise call elections while nothing failed.
"""

import json
import logging
import os
import shutil
import urllib.request

from . import ports
from .process import Service, wait_until

LOG = logging.getLogger(__name__)


HEARTBEAT_MS = 250
ELECTION_MS = 2500


class EtcdServer:
    """``EtcdServer(workdir).start()`` ... ``.stop()``; also a context
    manager."""

    def __init__(self, workdir, etcd_bin=None, ready_timeout=60,
                 detach=False, name='localstack', cluster=None,
                 extra_args=()):
        """:param cluster: the :class:`EtcdCluster` this member belongs
        to (None: a single-node etcd).
        :param extra_args: more etcd flags (e.g. ``--auth-token-ttl``)."""
        self.workdir = os.path.abspath(workdir)
        self.name = name
        self.cluster = cluster
        self.extra_args = list(extra_args)
        self.dir = os.path.join(self.workdir,
                                'etcd' if cluster is None else 'etcd-' + name)
        self.data_dir = os.path.join(self.dir, 'data')
        self.log_path = os.path.join(self.dir, 'etcd.log')
        self.etcd_bin = etcd_bin or shutil.which('etcd') or '/usr/bin/etcd'
        self.ready_timeout = ready_timeout
        self.detach = detach
        self.port = None
        self.peer_port = None
        self.service = None

    @property
    def client_url(self):
        return f'http://127.0.0.1:{self.port}'

    @property
    def peer_url(self):
        return f'http://127.0.0.1:{self.peer_port}'

    @property
    def store_url(self):
        """``etcd3+http://127.0.0.1:PORT``: the tooz coordination URL form
        (append ``?timeout=5&lock_timeout=10`` etc. as needed)."""
        return f'etcd3+http://127.0.0.1:{self.port}'

    @property
    def pid(self):
        return self.service.pid if self.service else None

    def _healthy(self):
        with urllib.request.urlopen(self.client_url + '/health',
                                    timeout=2) as resp:
            return json.load(resp).get('health') == 'true'

    def start(self):
        """Start etcd (free ports on first start) and wait for /health."""
        if self.service is not None and self.service.alive():
            return self
        self.spawn()
        return self.wait_ready()

    def spawn(self):
        """Start the process, without waiting (a cluster's members only
        become healthy together). From the main thread: the child gets
        SIGTERM when the *thread* that started it ends."""
        os.makedirs(self.dir, exist_ok=True)
        if self.port is None:
            self.port, self.peer_port = ports.free_ports(2)
        argv = [
            self.etcd_bin, '--name', self.name,
            '--data-dir', self.data_dir,
            '--listen-client-urls', self.client_url,
            '--advertise-client-urls', self.client_url,
            '--listen-peer-urls', self.peer_url,
            '--initial-advertise-peer-urls', self.peer_url,
            '--initial-cluster-state', 'new',
            '--logger', 'zap', '--log-outputs', 'stderr',
        ]
        if self.cluster is None:
            argv += ['--initial-cluster', f'{self.name}={self.peer_url}',
                     '--initial-cluster-token', f'localstack-{self.port}']
        else:
            argv += ['--initial-cluster', self.cluster.initial_cluster,
                     '--initial-cluster-token', self.cluster.token,
                     '--heartbeat-interval', str(HEARTBEAT_MS),
                     '--election-timeout', str(ELECTION_MS)]
        argv += self.extra_args
        # ETCD_* variables in our environment would override the flags.
        env = {k: v for k, v in os.environ.items()
               if not k.startswith('ETCD')}
        self.service = Service.spawn('etcd', argv, self.log_path, env=env,
                                     cwd=self.dir, detach=self.detach)

    def wait_ready(self):
        """Wait for /health (the process stops if it never comes)."""
        try:
            waited = wait_until(self._healthy, self.ready_timeout,
                                f'etcd on {self.client_url}',
                                watch=[self.service])
        except Exception:
            self.stop()
            raise
        LOG.info('etcd ready on %s after %.2fs', self.client_url, waited)
        return self

    def stop(self):
        if self.service is not None:
            self.service.stop(timeout=10)

    def kill(self):
        """SIGKILL, as a crashed host: no goodbye to peers or clients."""
        if self.service is not None and self.service.alive():
            self.service.kill()

    def restart(self):
        """Stop and start again with the same ports and data."""
        self.stop()
        return self.start()

    def describe(self):
        return {'client_url': self.client_url, 'store_url': self.store_url,
                'port': self.port, 'peer_port': self.peer_port,
                'data_dir': self.data_dir,
                'service': self.service.describe() if self.service else None}

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class EtcdCluster:
    """``EtcdCluster(workdir, size=3).start()``: members on loopback that
    form one etcd cluster; ``kill(i)`` and ``start_member(i)`` take one
    down and bring it back with its data (it rejoins)."""

    def __init__(self, workdir, size=3, etcd_bin=None, ready_timeout=60):
        self.workdir = os.path.abspath(workdir)
        self.members = [EtcdServer(workdir, etcd_bin=etcd_bin,
                                   ready_timeout=ready_timeout,
                                   name='m%d' % i, cluster=self)
                        for i in range(size)]
        self.token = None

    @property
    def initial_cluster(self):
        return ','.join(f'{m.name}={m.peer_url}' for m in self.members)

    @property
    def store_url(self):
        """``etcd3+http://127.0.0.1:P1,127.0.0.1:P2,...``: every member."""
        return 'etcd3+http://' + ','.join(
            f'127.0.0.1:{m.port}' for m in self.members)

    def start(self):
        """Start every member at once (each waits for a quorum before it
        is healthy, so they cannot be started one after the other)."""
        for member in self.members:
            if member.port is None:
                member.port, member.peer_port = ports.free_ports(2)
        self.token = self.token or f'localstack-{self.members[0].port}'
        try:
            for member in self.members:
                member.spawn()
            for member in self.members:
                member.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def start_member(self, index):
        return self.members[index].start()

    def kill(self, index):
        self.members[index].kill()

    def leader(self):
        """Index of the member that is the leader now (None if none)."""
        for index, member in enumerate(self.members):
            try:
                status = _post_json(member.client_url +
                                    '/v3/maintenance/status', {})
            except OSError:
                continue
            if status.get('leader') and (
                    status['leader'] == status['header'].get('member_id')):
                return index
        return None

    def healthy_members(self):
        found = []
        for index, member in enumerate(self.members):
            try:
                if member._healthy():
                    found.append(index)
            except (OSError, ValueError):
                pass
        return found

    def stop(self):
        for member in self.members:
            member.stop()

    def describe(self):
        return {'store_url': self.store_url,
                'members': [m.describe() for m in self.members]}

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _post_json(url, payload, timeout=2):
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(),
        headers={'Content-Type': 'application/json'})
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        return json.load(resp)
