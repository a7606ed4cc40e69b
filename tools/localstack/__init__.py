"""Real services (etcd, MariaDB, Octavia API + driver agent, Caddy nodes
and clusters, member HTTP servers) for functional tests and a quick start,
on free ports with private data directories.

Library use (pytest fixtures)::

    from tools.localstack import EtcdServer, MariaDBServer, OctaviaStack
    etcd = EtcdServer(tmp).start()
    db = MariaDBServer(tmp).start()
    url = db.create_database('octavia', 'octavia', 'octavia')
    stack = OctaviaStack(tmp, url, provider='noop_driver',
                         provider_agents=()).start()
    ...
    stack.stop(); db.stop(); etcd.stop()

    nodes = CaddyCluster(tmp, 'web', nodes=2).start()   # nodes.endpoints
    from tools.localstack.netns import MemberLab    # (not imported here:
    lab = MemberLab().start()   # python -m tools.localstack.netns is a CLI)
    members = MemberPool(2, lab=lab).start()            # threads, or
    member = MemberProcess(tmp, 'm1', lab=lab).start()  # a process
    ...
    lab.stop()

    from tools.localstack.as3_device import AS3Device   # (not imported
    as3 = AS3Device().start()   # here: a CLI too) an F5 BIG-IP AS3
    ...                         # *emulator* in threads: as3.url, knobs
    as3.stop()

CLI: ``python -m tools.localstack up|status|down --workdir DIR
[--caddy-cluster NAME[:NODES]]... [--members N]`` (see __main__).
Every object stops exactly the processes it started.
"""

from .caddy import CaddyCluster, CaddyNode
from .etcd import EtcdServer
from .mariadb import MariaDBServer
from .members import MemberPool, MemberProcess, MemberServer
from .octavia import OctaviaStack
from .ports import free_port, free_ports
from .process import Service, wait_until

__all__ = ['CaddyCluster', 'CaddyNode', 'EtcdServer', 'MariaDBServer',
           'MemberPool', 'MemberProcess', 'MemberServer', 'OctaviaStack',
           'Service', 'free_port', 'free_ports', 'wait_until']
