"""Real services (etcd, MariaDB, Octavia API + driver agent) for functional
tests and a quick start, on free ports with private data directories.

Library use (pytest fixtures)::

    from tools.localstack import EtcdServer, MariaDBServer, OctaviaStack
    etcd = EtcdServer(tmp).start()
    db = MariaDBServer(tmp).start()
    url = db.create_database('octavia', 'octavia', 'octavia')
    stack = OctaviaStack(tmp, url, provider='noop_driver',
                         provider_agents=()).start()
    ...
    stack.stop(); db.stop(); etcd.stop()

CLI: ``python -m tools.localstack up|down --workdir DIR`` (see __main__).
Every object stops exactly the processes it started.
"""

from .etcd import EtcdServer
from .mariadb import MariaDBServer
from .octavia import OctaviaStack
from .ports import free_port, free_ports
from .process import Service, wait_until

__all__ = ['EtcdServer', 'MariaDBServer', 'OctaviaStack', 'Service',
           'free_port', 'free_ports', 'wait_until']
