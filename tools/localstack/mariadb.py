"""A private MariaDB server (Debian mariadb-server 10.11) for tests.

Everything lives in ``<workdir>/mariadb``: ``my.cnf``, ``data/``,
``mysqld.sock``, ``mysqld.pid`` and ``mariadb.log`` (the server's stderr).
Pitfalls handled here:
mariadbd running as root needs ``user = root``; ``--defaults-file`` must
be the *first* option of every MariaDB program; the data directory is
initialised with ``--auth-root-authentication-method=normal`` so root can
log in through the socket without a password.
"""

import logging
import os
import re
import shutil
import subprocess
import urllib.parse

from . import ports
from .process import Service, tail, wait_until

LOG = logging.getLogger(__name__)

_NAME_RE = re.compile(r'^[A-Za-z0-9_]{1,64}$')
_MAX_SOCKET_PATH = 107  # sun_path is 108 bytes including the NUL


def _which(name, fallback):
    return shutil.which(name) or fallback


class MariaDBServer:
    """``MariaDBServer(workdir).start()`` ... ``.stop()``; also a context
    manager."""

    def __init__(self, workdir, mariadbd=None, ready_timeout=60,
                 detach=False):
        self.workdir = os.path.abspath(workdir)
        self.dir = os.path.join(self.workdir, 'mariadb')
        self.data_dir = os.path.join(self.dir, 'data')
        self.cnf_path = os.path.join(self.dir, 'my.cnf')
        self.socket_path = os.path.join(self.dir, 'mysqld.sock')
        self.pid_file = os.path.join(self.dir, 'mysqld.pid')
        self.log_path = os.path.join(self.dir, 'mariadb.log')
        self.mariadbd = mariadbd or _which('mariadbd', '/usr/sbin/mariadbd')
        self.install_db = _which('mariadb-install-db',
                                 '/usr/bin/mariadb-install-db')
        self.client = _which('mariadb', '/usr/bin/mariadb')
        self.admin = _which('mariadb-admin', '/usr/bin/mariadb-admin')
        self.ready_timeout = ready_timeout
        self.detach = detach
        self.port = None
        self.service = None
        if len(self.socket_path) > _MAX_SOCKET_PATH:
            raise ValueError(f'workdir too long for a unix socket path: '
                             f'{self.socket_path}')

    @property
    def pid(self):
        return self.service.pid if self.service else None

    def _write_cnf(self):
        with open(self.cnf_path, 'w') as f:
            f.write(f"""\
[mysqld]
user = root
datadir = {self.data_dir}
socket = {self.socket_path}
pid-file = {self.pid_file}
bind-address = 127.0.0.1
port = {self.port}
skip-name-resolve
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci
innodb_buffer_pool_size = 128M
# test data: durability is not needed, speed is
innodb_flush_log_at_trx_commit = 2

[client]
socket = {self.socket_path}
port = {self.port}
user = root
""")

    def _run(self, argv, what, **kwargs):
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, **kwargs)
        if proc.returncode != 0:
            raise RuntimeError(f'{what} failed ({proc.returncode}): '
                               f'{proc.stdout}{proc.stderr}')
        return proc.stdout

    def _ping(self):
        proc = subprocess.run(
            [self.admin, f'--defaults-file={self.cnf_path}',
             '--connect-timeout=2', 'ping'],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
        return proc.returncode == 0

    def start(self):
        """Initialise the data directory if needed, start mariadbd and
        wait until it answers ``mariadb-admin ping``. After :meth:`stop`
        it starts again on the same port with the same data."""
        if self.service is not None and self.service.alive():
            return self
        os.makedirs(self.dir, exist_ok=True)
        if self.port is None:
            self.port = ports.free_port()
        self._write_cnf()
        if not os.path.isdir(os.path.join(self.data_dir, 'mysql')):
            log = os.path.join(self.dir, 'mariadb-install-db.log')
            with open(log, 'w') as out:
                rc = subprocess.call(
                    [self.install_db, f'--defaults-file={self.cnf_path}',
                     '--auth-root-authentication-method=normal',
                     '--skip-test-db'],
                    stdin=subprocess.DEVNULL, stdout=out,
                    stderr=subprocess.STDOUT)
            if rc != 0:
                raise RuntimeError(f'mariadb-install-db failed ({rc}); see '
                                   f'{log}\n{tail(log)}')
        self.service = Service.spawn(
            'mariadbd', [self.mariadbd, f'--defaults-file={self.cnf_path}'],
            self.log_path, cwd=self.dir, detach=self.detach)
        try:
            waited = wait_until(self._ping, self.ready_timeout,
                                f'mariadbd on port {self.port}',
                                watch=[self.service])
        except Exception:
            self.stop()
            raise
        LOG.info('mariadbd ready on port %d after %.2fs', self.port, waited)
        return self

    def sql(self, statements):
        """Run SQL as root through the socket; return the client's stdout."""
        return self._run([self.client, f'--defaults-file={self.cnf_path}',
                          '--batch', '-e', statements], 'mariadb client')

    def create_database(self, name, user, password):
        """Create (or reset the password of) ``user`` with all rights on
        database ``name``; return the SQLAlchemy URL for it."""
        for value in (name, user):
            if not _NAME_RE.match(value):
                raise ValueError(f'unsupported database/user name {value!r}')
        quoted_pw = password.replace('\\', '\\\\').replace("'", "\\'")
        self.sql(f"""
            CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4;
            CREATE OR REPLACE USER '{user}'@'127.0.0.1'
                IDENTIFIED BY '{quoted_pw}';
            GRANT ALL ON `{name}`.* TO '{user}'@'127.0.0.1';""")
        return (f'mysql+pymysql://{user}:'
                f'{urllib.parse.quote(password, safe="")}'
                f'@127.0.0.1:{self.port}/{name}')

    def stop(self):
        if self.service is not None:
            self.service.stop(timeout=60)

    def describe(self):
        return {'port': self.port, 'socket': self.socket_path,
                'cnf_path': self.cnf_path, 'data_dir': self.data_dir,
                'service': self.service.describe() if self.service else None}

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
