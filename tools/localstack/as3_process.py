"""The F5 AS3 device **emulator** (:mod:`tools.localstack.as3_device`) in a
process of its own, for stacks that outlive the Python that started them
(the quick start): ``AS3DeviceProcess(workdir, 'dc1-bigip').start()`` ...
``.stop()``.  It stands in for a BIG-IP, which cannot run here.

It serves ``http://127.0.0.1:<port>`` (a free port picked once), with one
user ``admin`` whose password is generated at start (``password``) unless
given; its log is ``<workdir>/as3/<name>.log``.  The command line carries
``--workdir <workdir>``, which is how ``python -m tools.localstack down``
recognises the process as its own.
"""

import base64
import json
import logging
import os
import secrets
import sys
import urllib.request

from . import ports
from .process import Service, wait_until

LOG = logging.getLogger(__name__)

HOST = '127.0.0.1'
USER = 'admin'
REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class AS3DeviceProcess:
    """One emulated device (see the module docstring)."""

    def __init__(self, workdir, name, port=None, password=None, python=None,
                 ready_timeout=30, detach=False):
        self.workdir = os.path.abspath(workdir)
        self.name = name
        self.port = port
        self.password = password or secrets.token_hex(12)
        self.python = python or sys.executable
        self.ready_timeout = ready_timeout
        self.detach = detach
        self.dir = os.path.join(self.workdir, 'as3')
        self.log_path = os.path.join(self.dir, f'{name}.log')
        self.service = None

    @property
    def url(self):
        return f'http://{HOST}:{self.port}'

    def alive(self):
        return self.service is not None and self.service.alive()

    def get(self, path):
        """GET ``path`` as the device's user: ``(status, parsed body)``."""
        request = urllib.request.Request(self.url + path, headers={
            'Authorization': 'Basic ' + base64.b64encode(
                f'{USER}:{self.password}'.encode()).decode()})
        with _DIRECT.open(request, timeout=5) as resp:
            body = resp.read()
            return resp.status, json.loads(body) if body else None

    def _ready(self):
        return self.get('/mgmt/shared/appsvcs/info')[0] == 200

    def start(self):
        """Start the emulator and wait until AS3's info answers."""
        if self.alive():
            return self
        os.makedirs(self.dir, exist_ok=True)
        if self.port is None:
            self.port = ports.free_port(HOST)
        argv = [self.python, '-m', 'tools.localstack.as3_device', 'serve',
                '--host', HOST, '--port', str(self.port),
                '--user', f'{USER}:{self.password}',
                '--workdir', self.workdir]
        env = dict(os.environ, PYTHONUNBUFFERED='1')
        env['PYTHONPATH'] = os.pathsep.join(
            p for p in (REPO, env.get('PYTHONPATH')) if p)
        self.service = Service.spawn(f'as3-{self.name}', argv, self.log_path,
                                     env=env, cwd=self.dir,
                                     detach=self.detach)
        try:
            waited = wait_until(self._ready, self.ready_timeout,
                                f'AS3 emulator {self.name} on {self.url}',
                                watch=[self.service])
        except Exception:
            self.stop()
            raise
        LOG.info('AS3 device emulator %s ready on %s after %.2fs', self.name,
                 self.url, waited)
        return self

    def stop(self, timeout=10):
        """SIGTERM, SIGKILL after ``timeout`` s.  Idempotent."""
        if self.service is not None:
            self.service.stop(timeout=timeout)

    def describe(self):
        return {'name': self.name, 'url': self.url, 'user': USER,
                'password': self.password, 'emulator': True,
                'log_path': self.log_path,
                'service': self.service.describe() if self.service else None}

    def __repr__(self):
        return f'<AS3DeviceProcess {self.name} {self.url}>'
