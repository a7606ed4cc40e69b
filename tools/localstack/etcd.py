"""A private single-node etcd (Debian etcd-server 3.4) for tests.

Data lives in ``<workdir>/etcd/data``, the log in ``<workdir>/etcd/etcd.log``.
Client and peer ports are picked once and kept, so ``restart()`` brings the
same member back at the same URL with its data, which is what
etcd-outage tests need.
"""

import json
import logging
import os
import shutil
import urllib.request

from . import ports
from .process import Service, wait_until

LOG = logging.getLogger(__name__)


class EtcdServer:
    """``EtcdServer(workdir).start()`` ... ``.stop()``; also a context
    manager."""

    def __init__(self, workdir, etcd_bin=None, ready_timeout=60,
                 detach=False):
        self.workdir = os.path.abspath(workdir)
        self.dir = os.path.join(self.workdir, 'etcd')
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
        os.makedirs(self.dir, exist_ok=True)
        if self.port is None:
            self.port, self.peer_port = ports.free_ports(2)
        peer_url = f'http://127.0.0.1:{self.peer_port}'
        argv = [
            self.etcd_bin, '--name', 'localstack',
            '--data-dir', self.data_dir,
            '--listen-client-urls', self.client_url,
            '--advertise-client-urls', self.client_url,
            '--listen-peer-urls', peer_url,
            '--initial-advertise-peer-urls', peer_url,
            '--initial-cluster', f'localstack={peer_url}',
            '--initial-cluster-token', f'localstack-{self.port}',
            '--initial-cluster-state', 'new',
            '--logger', 'zap', '--log-outputs', 'stderr',
        ]
        # ETCD_* variables in our environment would override the flags.
        env = {k: v for k, v in os.environ.items()
               if not k.startswith('ETCD')}
        self.service = Service.spawn('etcd', argv, self.log_path, env=env,
                                     cwd=self.dir, detach=self.detach)
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
