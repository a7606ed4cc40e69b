"""A real Octavia API + driver agent, without keystone/RabbitMQ/Neutron.

Layout under ``<workdir>``::

    octavia/octavia.conf          main config (``conf_path``)
    octavia/<process>.conf        per-process overrides (port, log file)
    octavia/logs/                 ``log_dir``: octavia-api-0.log, ...
    run/{status,stats,get}.sock   driver-agent sockets
    run/network-noop.db           the no-op network driver's SQLite file
    <cert_storage_path>/          only if given: Octavia's local certificate
                                  store (``<ref>.crt``, ``.key``, ...)

Every Octavia process is started through ``launch_octavia.py`` (by path,
with the venv's Python) so the no-op network driver never writes the
shared ``/tmp/octavia-network-noop.db``.  The config: ``auth_strategy =
noauth`` (send ``X-Project-Id``), only the given providers enabled, the
no-op network driver so VIP/subnet validation needs no Neutron.

Opt-in: ``cert_storage_path`` switches Octavia's certificate manager from
Barbican (the default, unreachable here) to ``local_cert_manager`` reading
``<cert_storage_path>/<ref>.crt`` / ``.key`` / ``.int`` / ``.pass``; a
TERMINATED_HTTPS listener's ``default_tls_container_ref`` (and SNI refs)
are then such ``<ref>`` names, and the provider receives the real PEM.
"""

import json
import logging
import os
import stat
import subprocess
import sys
import urllib.request

from . import ports
from .process import Service, children, proc_cmdline, tail, wait_until

LOG = logging.getLogger(__name__)

LAUNCHER = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        'launch_octavia.py')
NOOP_NET_DB_ENV = 'LOCALSTACK_NOOP_NET_DB'

# Lists the provider drivers / provider agents installed in the venv.
_ENTRY_POINT_PROBE = """
import json, importlib.metadata as md
eps = md.entry_points()
print(json.dumps({g: sorted(e.name for e in eps.select(group=g)) for g in
      ('octavia.api.drivers', 'octavia.driver_agent.provider_agents')}))
"""


def _names(value):
    if isinstance(value, str):
        value = value.split(',')
    return [v.strip() for v in value if v and v.strip()]


class OctaviaStack:
    """``OctaviaStack(workdir, database_url).start()`` ... ``.stop()``."""

    def __init__(self, workdir, database_url, provider='multilb',
                 provider_description='multilb appliance fleet',
                 provider_agents=('multilb',), extra_conf='', api_count=1,
                 venv_bin=None, debug=False, ready_timeout=120,
                 detach=False, cert_storage_path=None):
        self.workdir = os.path.abspath(workdir)
        self.database_url = database_url
        self.providers = _names(provider)
        if not self.providers:
            raise ValueError('at least one provider is needed')
        self.provider_description = provider_description
        self.provider_agents = _names(provider_agents)
        self.extra_conf = extra_conf or ''
        self.api_count = api_count
        if venv_bin:
            self.venv_bin = os.path.abspath(venv_bin)
            self.python = os.path.join(self.venv_bin, 'python')
            if not os.path.exists(self.python):
                self.python += '3'
        else:
            self.venv_bin = os.path.dirname(sys.executable)
            self.python = sys.executable
        self.debug = debug
        self.ready_timeout = ready_timeout
        self.detach = detach
        self.cert_storage_path = (os.path.abspath(cert_storage_path)
                                  if cert_storage_path else None)

        self.dir = os.path.join(self.workdir, 'octavia')
        self.log_dir = os.path.join(self.dir, 'logs')
        self.run_dir = os.path.join(self.workdir, 'run')
        self.conf_path = os.path.join(self.dir, 'octavia.conf')
        self.status_socket = os.path.join(self.run_dir, 'status.sock')
        self.stats_socket = os.path.join(self.run_dir, 'stats.sock')
        self.get_socket = os.path.join(self.run_dir, 'get.sock')
        self.noop_net_db = os.path.join(self.run_dir, 'network-noop.db')
        for path in self.sockets:
            if len(path) > 107:
                raise ValueError(f'workdir too long for a unix socket: {path}')

        self.api_ports = []
        self.api_services = []
        self.driver_agent = None
        self.extra_driver_agents = []

    # ------------------------------------------------------------ properties
    @property
    def sockets(self):
        return [self.status_socket, self.stats_socket, self.get_socket]

    @property
    def api_urls(self):
        return [f'http://127.0.0.1:{p}' for p in self.api_ports]

    @property
    def api_url(self):
        return self.api_urls[0]

    # ---------------------------------------------------------------- config
    def _descriptions(self):
        first, *others = self.providers
        pairs = [(first, self.provider_description)]
        pairs += [(name, f'{name} provider') for name in others]
        for name, desc in pairs:
            if any(c in desc for c in ',:') or any(c in name for c in ',:'):
                raise ValueError(f'provider name/description may not contain '
                                 f'"," or ":": {name!r}: {desc!r}')
        return ','.join(f'{name}:{desc}' for name, desc in pairs)

    def conf_text(self):
        """The main octavia.conf as a string (extra_conf appended)."""
        text = f"""\
[DEFAULT]
debug = {self.debug}
log_dir = {self.log_dir}

[api_settings]
bind_host = 127.0.0.1
bind_port = {self.api_ports[0]}
auth_strategy = noauth
enabled_provider_drivers = {self._descriptions()}
default_provider_driver = {self.providers[0]}

[database]
connection = {self.database_url}

[driver_agent]
status_socket_path = {self.status_socket}
stats_socket_path = {self.stats_socket}
get_socket_path = {self.get_socket}
enabled_provider_agents = {','.join(self.provider_agents)}
provider_agent_shutdown_timeout = 5

[controller_worker]
network_driver = network_noop_driver
"""
        if self.cert_storage_path:
            text += f"""
[certificates]
cert_manager = local_cert_manager
storage_path = {self.cert_storage_path}
"""
        if self.extra_conf:
            text += '\n' + self.extra_conf.rstrip('\n') + '\n'
        return text

    def _write_override(self, name, body=''):
        """Per-process config: its own log file (+ ``body``)."""
        path = os.path.join(self.dir, f'{name}.conf')
        with open(path, 'w') as f:
            f.write(f'[DEFAULT]\nlog_file = {name}.log\n{body}')
        return path

    def write_config(self):
        os.makedirs(self.log_dir, exist_ok=True)
        os.makedirs(self.run_dir, exist_ok=True)
        if self.cert_storage_path:
            os.makedirs(self.cert_storage_path, mode=0o700, exist_ok=True)
        if not self.api_ports:
            self.api_ports = ports.free_ports(self.api_count)
        with open(self.conf_path, 'w') as f:
            f.write(self.conf_text())

    # ------------------------------------------------------------- processes
    def _env(self):
        env = dict(os.environ)
        env[NOOP_NET_DB_ENV] = self.noop_net_db
        env['PYTHONUNBUFFERED'] = '1'
        return env

    def _launch_argv(self, kind, override):
        return [self.python, LAUNCHER, kind, '--',
                '--config-file', self.conf_path, '--config-file', override]

    def check_entry_points(self):
        """Fail fast if a provider or provider agent is not installed in
        the venv (Octavia itself would just log and drop it)."""
        out = subprocess.run([self.python, '-c', _ENTRY_POINT_PROBE],
                             capture_output=True, text=True, check=True,
                             timeout=120).stdout
        found = json.loads(out)
        missing = [
            f'{group}:{name}' for group, names in (
                ('octavia.api.drivers', self.providers),
                ('octavia.driver_agent.provider_agents',
                 self.provider_agents))
            for name in names if name not in found[group]]
        if missing:
            raise RuntimeError(f'not installed in {self.venv_bin}: {missing};'
                               f' available: {found}')

    def db_upgrade(self):
        """``octavia-db-manage upgrade head``."""
        override = self._write_override('octavia-db-manage')
        log = os.path.join(self.log_dir, 'octavia-db-manage.out')
        with open(log, 'ab') as out:
            rc = subprocess.call(
                self._launch_argv('db-manage', override) +
                ['upgrade', 'head'], stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, env=self._env(), cwd=self.workdir,
                timeout=600)
        if rc != 0:
            raise RuntimeError(f'octavia-db-manage upgrade head failed ({rc})'
                               f'; see {log}\n{tail(log)}')

    def _spawn(self, name, kind, override):
        return Service.spawn(
            name, self._launch_argv(kind, override),
            os.path.join(self.log_dir, f'{name}.out'), env=self._env(),
            cwd=self.workdir, detach=self.detach,
            other_logs=[os.path.join(self.log_dir, f'{name}.log')])

    def _spawn_driver_agent(self):
        # Stale socket files would make the readiness check pass too early.
        for path in self.sockets:
            if os.path.exists(path):
                os.unlink(path)
        override = self._write_override('octavia-driver-agent')
        self.driver_agent = self._spawn('octavia-driver-agent',
                                        'driver-agent', override)

    @staticmethod
    def _is_socket(path):
        # Deliberately no connect() probe: each connection forks a handler
        # in the listener that blocks in recv() until data arrives, and the
        # listener's server_close() waits for it, so an idle probe
        # connection makes the driver agent hang on SIGTERM.  The file
        # appears at bind(); listen() follows immediately.
        return stat.S_ISSOCK(os.stat(path).st_mode)

    def _driver_agent_ready(self):
        return (all(self._is_socket(p) for p in self.sockets) and
                all(self.provider_agent_pids(a) for a in self.provider_agents))

    def _wait_driver_agent(self):
        return wait_until(self._driver_agent_ready, self.ready_timeout,
                          'octavia-driver-agent sockets/provider agents',
                          watch=[self.driver_agent])

    def _api_ready(self, url):
        with urllib.request.urlopen(url + '/', timeout=5) as resp:
            return resp.status == 200

    def start_driver_agent(self):
        """Start the driver agent and wait for its 3 sockets and the
        provider agent processes."""
        if self.driver_agent is not None and self.driver_agent.alive():
            return
        self._spawn_driver_agent()
        self._wait_driver_agent()

    def stop_driver_agent(self):
        if self.driver_agent is not None:
            self.driver_agent.stop(timeout=30)

    def restart_driver_agent(self):
        self.stop_driver_agent()
        self.start_driver_agent()

    def start_extra_driver_agent(self):
        """Start one more driver agent with its own sockets, as a second
        Octavia host would run; returns its Service (stopped by stop())."""
        index = len(self.extra_driver_agents) + 1
        name = f'octavia-driver-agent-{index}'
        run = os.path.join(self.run_dir, f'agent{index}')
        os.makedirs(run, exist_ok=True)
        sockets = [os.path.join(run, f'{kind}.sock')
                   for kind in ('status', 'stats', 'get')]
        for path in sockets:
            if os.path.exists(path):
                os.unlink(path)
        override = self._write_override(name, (
            '[driver_agent]\nstatus_socket_path = {}\n'
            'stats_socket_path = {}\nget_socket_path = {}\n').format(
                *sockets))
        service = self._spawn(name, 'driver-agent', override)
        self.extra_driver_agents.append(service)
        wait_until(lambda: (
            all(self._is_socket(p) for p in sockets) and
            all(self.provider_agent_pids(a, service)
                for a in self.provider_agents)),
            self.ready_timeout, name, watch=[service])
        return service

    def provider_agent_pids(self, name='multilb', driver_agent=None):
        """PIDs of a driver agent's provider-agent children for ``name``
        (default: the main driver agent's).

        Octavia titles them (setproctitle, so it shows in
        /proc/<pid>/cmdline) ``octavia-driver-agent - provider_agent --
        <name>``.
        """
        agent = driver_agent or self.driver_agent
        if agent is None or not agent.alive():
            return []
        title = f'provider_agent -- {name}'
        return sorted(pid for pid, _ in children(agent.pid)
                      if proc_cmdline(pid).endswith(title))

    # ------------------------------------------------------------- lifecycle
    def start(self):
        """Write the config, migrate the DB, start the driver agent and
        ``api_count`` API processes, and wait until all are ready.

        A no-op if everything already runs; a partly running stack is
        stopped first.  Ports are kept across stop()/start()."""
        if self.running():
            return self
        self.stop()
        try:
            self.check_entry_points()
            self.write_config()
            self.db_upgrade()
            self._spawn_driver_agent()
            self.api_services = []
            for i, port in enumerate(self.api_ports):
                override = self._write_override(
                    f'octavia-api-{i}',
                    f'[api_settings]\nbind_port = {port}\n')
                self.api_services.append(
                    self._spawn(f'octavia-api-{i}', 'api', override))
            for url, svc in zip(self.api_urls, self.api_services):
                waited = wait_until(lambda url=url: self._api_ready(url),
                                    self.ready_timeout, f'octavia-api {url}',
                                    watch=[svc])
                LOG.info('octavia-api %s ready after %.2fs', url, waited)
            waited = self._wait_driver_agent()
            LOG.info('octavia-driver-agent ready (+%.2fs)', waited)
        except BaseException:
            self.stop()
            raise
        return self

    def running(self):
        """True if the driver agent and every API process run."""
        services = [self.driver_agent] + self.api_services
        return bool(self.api_services) and all(
            s is not None and s.alive() for s in services)

    def stop(self):
        """Stop the API processes, then the driver agent.  Idempotent."""
        for svc in self.api_services:
            svc.stop(timeout=15)
        for svc in self.extra_driver_agents:
            svc.stop(timeout=30)
        self.extra_driver_agents = []
        self.stop_driver_agent()

    def describe(self):
        found = {
            'api_urls': self.api_urls, 'conf_path': self.conf_path,
            'log_dir': self.log_dir, 'providers': self.providers,
            'provider_agents': self.provider_agents,
            'sockets': {'status': self.status_socket,
                        'stats': self.stats_socket, 'get': self.get_socket},
            'noop_net_db': self.noop_net_db,
            'api_services': [s.describe() for s in self.api_services],
            'driver_agent': (self.driver_agent.describe()
                             if self.driver_agent else None),
        }
        if self.cert_storage_path:
            found['cert_storage_path'] = self.cert_storage_path
        return found

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
