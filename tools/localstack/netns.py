"""The member lab: a network namespace of our own for member servers.

A tenant's pool member must not be on this host's loopback (127.0.0.0/8,
::1), link-local or the appliances' admin endpoints, and multilb's API
refuses such members.  So the member HTTP servers of the functional tests,
the benchmarks and the quick start live in a :class:`MemberLab`: a network
namespace that this module creates and removes, reached from the root
namespace through a veth pair::

    root namespace                          namespace mlb-<pid>-<n>
    mlb-<pid>-<n>  198.18.X.1/24  <-veth->  lab0  198.18.X.2/24
                                            lo    up, and
                                            local 198.18.X.0/24 dev lo

The ``local`` route makes *every* address of the /24 an address of the
namespace (except ``.1``, the host end, which gets a /32 route back out
over ``lab0``), so each member binds its own address: ``lab.address(0)``
is ``198.18.X.10``, ``lab.address(1)`` ``198.18.X.11`` ...  The
namespace's default route goes to the host end, so members can answer
whoever reached them.  Caddy nodes, the test process and curl in the root
namespace reach the members through the host end's connected route.

The /24 is taken from 198.18.0.0/15 (the benchmarking range: not routed on
the internet, and apart from the documentation ranges such as 192.0.2.0/24
that test machines themselves often sit on).  A /24 is used only if no
route of any table (``ip -4 route show table all``, and ``ip -6 route show
table all`` for IPv4-mapped addresses) covers or overlaps it, default
routes aside (they cover everything; the lab's more specific /24 only
takes over addresses no other route claims), and no other lab's
namespace holds it; another
running lab has the host end's connected route, so two labs (a test run
and the quick start) never share a /24.  The choice and the creation hold
an exclusive lock (:data:`LOCK_PATH`), so labs started at the same time do
not race.  A requested /24 that clashes is refused with
:class:`LabError` naming the route.

Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and iproute2's ``ip``
(``tools/install-system-deps.sh`` installs it); :func:`preflight` says
which is missing.  ``stop()`` deletes exactly what ``start()`` created:
the veth pair (which also removes the host end's route) and the
namespace.  A lab that is not ``detach``-ed is also stopped at exit of
the Python that started it (``atexit``); a run killed by a signal
(SIGKILL, or a SIGTERM nobody handles: atexit does not run then) leaves
its lab behind: ``python -m tools.localstack.netns list`` shows the
labs, ``... delete NAME`` removes one.

Opening sockets inside the namespace from this process: a short-lived
thread enters the namespace with ``setns(2)`` (it changes only the calling
thread) and creates the socket there; a socket keeps the namespace it was
created in (:meth:`MemberLab.socket`, :func:`run_in_netns`).  A process is
started inside with :meth:`MemberLab.exec_argv` (``ip netns exec``).
"""

import argparse
import atexit
import contextlib
import ctypes
import fcntl
import ipaddress
import itertools
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading

LOG = logging.getLogger(__name__)

LAB_RANGE = ipaddress.ip_network('198.18.0.0/15')
PREFIX = 'mlb-'                 # every lab namespace's name starts so
INNER_IF = 'lab0'               # the namespace's end of the veth pair
FIRST_MEMBER = 10               # address(0) is .10 of the /24
NETNS_DIR = '/run/netns'
LOCK_PATH = ('/run/lock' if os.path.isdir('/run/lock') else '/tmp') + \
    '/multilb-member-lab.lock'
IP_SEARCH = os.pathsep.join(['/usr/sbin', '/sbin', '/usr/bin', '/bin'])

_CLONE_NEWNET = 0x40000000
_CAP_NET_ADMIN, _CAP_SYS_ADMIN = 12, 21
_ROUTE_TYPES = {'unicast', 'local', 'broadcast', 'multicast', 'throw',
                'unreachable', 'prohibit', 'blackhole', 'nat', 'anycast'}
_counter = itertools.count()
_counter_lock = threading.Lock()
try:
    _LIBC = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - not Linux
    _LIBC = None


class LabError(RuntimeError):
    """The lab cannot be created here (what is missing), or its /24
    clashes with a route or another lab."""


# --------------------------------------------------------------------------
# ip(8)
# --------------------------------------------------------------------------

def ip_binary():
    """Path of iproute2's ``ip`` or None."""
    return shutil.which('ip') or shutil.which('ip', path=IP_SEARCH)


def _ip(*args, check=True):
    """Run ``ip ARGS``; returns its stdout.  Raises ``LabError`` with
    ip's message if it fails (and ``check``)."""
    binary = ip_binary()
    if binary is None:
        raise LabError(_no_iproute2())
    argv = [binary] + [str(a) for a in args]
    done = subprocess.run(argv, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=30)
    if check and done.returncode:
        raise LabError('`%s` failed (exit %d): %s' % (
            ' '.join(['ip'] + argv[1:]), done.returncode,
            done.stderr.strip() or done.stdout.strip()))
    return done.stdout


def _no_iproute2():
    return ('the member lab needs iproute2\'s `ip` (not on PATH nor in '
            '%s): install the Debian package iproute2 (tools/'
            'install-system-deps.sh does, as root)' % IP_SEARCH)


def _capabilities():
    """The effective capability mask of this process (0 if unknown)."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('CapEff:'):
                    return int(line.split()[1], 16)
    except OSError:
        pass
    return 0


def preflight():
    """Check that a lab can be created here: ``ip`` exists, this process
    has CAP_NET_ADMIN and CAP_SYS_ADMIN (root), and ``ip netns add`` works
    (a probe namespace is added and deleted).  Raises ``LabError`` saying
    what is missing."""
    if ip_binary() is None:
        raise LabError(_no_iproute2())
    caps = _capabilities()
    missing = [name for bit, name in ((_CAP_NET_ADMIN, 'CAP_NET_ADMIN'),
                                      (_CAP_SYS_ADMIN, 'CAP_SYS_ADMIN'))
               if not caps >> bit & 1]
    if missing:
        who = ('not root (uid %d)' % os.geteuid() if os.geteuid()
               else 'root without')
        raise LabError(
            'the member lab creates a network namespace and a veth pair: '
            '%s %s; run as root (with CAP_NET_ADMIN and CAP_SYS_ADMIN)'
            % (who, ' and '.join(missing)))
    probe = '%sprobe-%d-%d' % (PREFIX, os.getpid(), _next_number())
    try:
        _ip('netns', 'add', probe)
    except LabError as exc:
        raise LabError('cannot create network namespaces here (`ip netns '
                       'add` failed; the member lab needs root with '
                       'CAP_NET_ADMIN and CAP_SYS_ADMIN, a writable %s and '
                       'a kernel with network namespaces): %s'
                       % (NETNS_DIR, exc)) from None
    _ip('netns', 'delete', probe, check=False)


def _next_number():
    with _counter_lock:
        return next(_counter)


def namespaces():
    """Names of the network namespaces ``ip netns`` knows."""
    return [line.split()[0] for line in _ip('netns', 'list').splitlines()
            if line.strip()]


def links():
    """Names of the network interfaces of the root namespace."""
    names = []
    for line in _ip('-o', 'link', 'show').splitlines():
        parts = line.split(':', 2)
        if len(parts) == 3:
            names.append(parts[1].strip().split('@', 1)[0])
    return names


# --------------------------------------------------------------------------
# choosing the /24
# --------------------------------------------------------------------------

def routes():
    """``[(network, route line)]`` of every route of every table (IPv4,
    and IPv6 as far as it can cover IPv4-mapped addresses), default
    routes left out."""
    found = []
    for family in ('-4', '-6'):
        for line in _ip(family, 'route', 'show', 'table', 'all').splitlines():
            tokens = line.split()
            if not tokens:
                continue
            dst = tokens[1] if (tokens[0] in _ROUTE_TYPES and
                                len(tokens) > 1) else tokens[0]
            if dst == 'default':
                continue
            try:
                network = ipaddress.ip_network(dst, strict=False)
            except ValueError:
                continue
            if network.prefixlen:
                found.append((network, line.strip()))
    return found


def _mapped(subnet):
    """``subnet`` as IPv4-mapped IPv6 (``::ffff:198.18.X.0/120``)."""
    return ipaddress.ip_network('::ffff:%s/%d' % (
        subnet.network_address, 96 + subnet.prefixlen))


def clashes(subnet, route_list):
    """The route lines of ``route_list`` that cover or overlap
    ``subnet``."""
    mapped = _mapped(subnet)
    return [line for network, line in route_list
            if network.overlaps(subnet if network.version == 4 else mapped)]


def lab_subnets():
    """``{namespace: subnet}`` of the labs (namespaces named ``mlb-...``)
    that run now, read from their ``lab0`` address."""
    found = {}
    for name in namespaces():
        if not name.startswith(PREFIX):
            continue
        out = _ip('-n', name, '-4', '-o', 'addr', 'show', 'dev', INNER_IF,
                  check=False)
        for line in out.splitlines():
            tokens = line.split()
            if 'inet' in tokens:
                address = tokens[tokens.index('inet') + 1]
                found[name] = ipaddress.ip_interface(address).network
    return found


def check_subnet(subnet, route_list=None, labs=None):
    """Raise ``LabError`` if ``subnet`` is not a /24 of :data:`LAB_RANGE`,
    or a route or another lab covers or overlaps it."""
    subnet = ipaddress.ip_network(subnet)
    if subnet.prefixlen != 24 or not subnet.subnet_of(LAB_RANGE):
        raise LabError('member lab subnet %s: must be a /24 inside %s'
                       % (subnet, LAB_RANGE))
    route_list = routes() if route_list is None else route_list
    labs = lab_subnets() if labs is None else labs
    used = [name for name, net in labs.items() if net.overlaps(subnet)]
    if used:
        raise LabError('member lab subnet %s is in use by the lab in '
                       'namespace %s' % (subnet, ', '.join(used)))
    hit = clashes(subnet, route_list)
    if hit:
        raise LabError('member lab subnet %s clashes with route(s) of this '
                       'host (a member there could shadow a real network): '
                       '%s' % (subnet, '; '.join(hit)))
    return subnet


def choose_subnet(requested=None):
    """``requested`` if free (else ``LabError``), or the first free /24 of
    :data:`LAB_RANGE`."""
    route_list, labs = routes(), lab_subnets()
    if requested is not None:
        return check_subnet(requested, route_list, labs)
    for subnet in LAB_RANGE.subnets(new_prefix=24):
        if (not clashes(subnet, route_list) and
                not any(net.overlaps(subnet) for net in labs.values())):
            return subnet
    raise LabError('no /24 of %s is free for a member lab: every one is '
                   'covered by a route or used by another lab (see `ip '
                   'route show table all`, `python -m tools.localstack.'
                   'netns list`)' % LAB_RANGE)


@contextlib.contextmanager
def _locked():
    """The machine-wide lock that keeps two labs from picking one /24."""
    with open(LOCK_PATH, 'a') as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# --------------------------------------------------------------------------
# entering a namespace from a thread
# --------------------------------------------------------------------------

def netns_path(name):
    return os.path.join(NETNS_DIR, name)


def _setns(fd):
    if hasattr(os, 'setns'):  # Python >= 3.12
        os.setns(fd, _CLONE_NEWNET)
        return
    if _LIBC is None or _LIBC.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno() if _LIBC is not None else 0
        raise OSError(err, 'setns(CLONE_NEWNET): %s' % os.strerror(err))


def run_in_netns(name, func, *args, **kwargs):
    """``func(*args, **kwargs)`` called in a new thread that first enters
    network namespace ``name`` (``/run/netns/<name>``); returns its result
    or raises its exception.  Sockets it creates stay in that namespace,
    processes it starts are born there; the rest of this process is not
    affected (setns for CLONE_NEWNET changes the calling thread only, and
    the thread ends)."""
    outcome = {}

    def target():
        try:
            fd = os.open(netns_path(name), os.O_RDONLY | os.O_CLOEXEC)
            try:
                _setns(fd)
            finally:
                os.close(fd)
            outcome['value'] = func(*args, **kwargs)
        except BaseException as exc:  # noqa: B902 - handed to the caller
            outcome['error'] = exc

    thread = threading.Thread(target=target, name='netns-' + name,
                              daemon=True)
    thread.start()
    thread.join()
    if 'error' in outcome:
        raise outcome['error']
    return outcome['value']


def netns_socket(name, family=socket.AF_INET, kind=socket.SOCK_STREAM):
    """A new socket that lives in network namespace ``name``."""
    return run_in_netns(name, socket.socket, family, kind)


# --------------------------------------------------------------------------
# MemberLab
# --------------------------------------------------------------------------

class MemberLab:
    """``MemberLab().start()`` ... ``.stop()``; a context manager.

    :param subnet: the /24 to use (refused with ``LabError`` if it is not
        in 198.18.0.0/15 or clashes); default: the first free one.
    :param detach: the lab outlives this Python (no atexit cleanup; the
        CLI's ``up``, stopped by ``down`` through :meth:`attach`).

    ``namespace`` and ``host_if`` are both ``mlb-<pid>-<n>``; ``subnet``
    the /24, ``host_address`` its ``.1`` (the root namespace's end),
    ``inner_address`` its ``.2``; ``address(i)`` the i-th member address
    (``.10`` + i), ``next_address()`` hands them out in turn.
    """

    def __init__(self, subnet=None, detach=False):
        self.requested = subnet
        self.detach = detach
        self.namespace = None
        self.subnet = None
        self._created = False
        self._next = itertools.count()
        self._lock = threading.Lock()

    # -- addresses -------------------------------------------------------

    @property
    def host_if(self):
        return self.namespace

    @property
    def host_address(self):
        return str(self.subnet.network_address + 1)

    @property
    def inner_address(self):
        return str(self.subnet.network_address + 2)

    @property
    def capacity(self):
        """How many distinct member addresses ``address(i)`` has."""
        return self.subnet.num_addresses - 1 - FIRST_MEMBER

    def address(self, index):
        """The ``index``-th member address (``.10`` + index)."""
        if self.subnet is None:
            raise LabError('the member lab is not started')
        if not 0 <= index < self.capacity:
            raise IndexError('member lab address index %d not in 0..%d'
                             % (index, self.capacity - 1))
        return str(self.subnet.network_address + FIRST_MEMBER + index)

    def next_address(self):
        """A member address not handed out before by this lab (after
        ``capacity`` of them they come round again: members then share an
        address on different ports)."""
        with self._lock:
            return self.address(next(self._next) % self.capacity)

    def __contains__(self, address):
        return (self.subnet is not None and
                ipaddress.ip_address(address) in self.subnet)

    # -- inside the namespace --------------------------------------------

    def run(self, func, *args, **kwargs):
        """``func`` in a thread inside the lab (see :func:`run_in_netns`)."""
        return run_in_netns(self.namespace, func, *args, **kwargs)

    def socket(self, family=socket.AF_INET, kind=socket.SOCK_STREAM):
        """A new, unbound socket inside the lab."""
        return netns_socket(self.namespace, family, kind)

    def free_port(self, address):
        """A TCP port free on ``address`` inside the lab right now."""
        with contextlib.closing(self.socket()) as sock:
            sock.bind((address, 0))
            return sock.getsockname()[1]

    def exec_argv(self):
        """Prefix of a command line that runs inside the lab."""
        return [ip_binary() or 'ip', 'netns', 'exec', self.namespace]

    # -- life cycle ------------------------------------------------------

    def _pick_name(self):
        taken = set(namespaces()) | set(links())
        while True:
            name = '%s%d-%d' % (PREFIX, os.getpid(), _next_number())
            if len(name) > 15:  # IFNAMSIZ - 1: the host end has this name
                raise LabError('no short enough lab name left: %s' % name)
            if name not in taken:
                return name

    def start(self):
        """Create the namespace, the veth pair, addresses and routes.
        Raises ``LabError`` (and leaves nothing behind) if that cannot be
        done here or the /24 clashes."""
        if self._created:
            return self
        preflight()
        with _locked():
            subnet = choose_subnet(self.requested)
            name = self._pick_name()
            self.namespace, self.subnet = name, subnet
            self._created = True
            try:
                self._build()
            except BaseException:
                self.stop()
                raise
        if not self.detach:
            atexit.register(self.stop)
        LOG.info('member lab %s: %s (host end %s on %s)', name, subnet,
                 self.host_address, name)
        return self

    def _build(self):
        ns, prefix = self.namespace, self.subnet.prefixlen
        _ip('netns', 'add', ns)
        _ip('link', 'add', ns, 'type', 'veth', 'peer', 'name', INNER_IF,
            'netns', ns)
        _ip('addr', 'add', '%s/%d' % (self.host_address, prefix), 'dev', ns)
        _ip('link', 'set', ns, 'up')
        _ip('-n', ns, 'link', 'set', 'lo', 'up')
        _ip('-n', ns, 'addr', 'add', '%s/%d' % (self.inner_address, prefix),
            'dev', INNER_IF)
        _ip('-n', ns, 'link', 'set', INNER_IF, 'up')
        # every address of the /24 is the namespace's own ...
        _ip('-n', ns, 'route', 'add', 'local', str(self.subnet), 'dev', 'lo')
        # ... but the host end, which the local table must send out
        _ip('-n', ns, 'route', 'add', '%s/32' % self.host_address, 'dev',
            INNER_IF, 'table', 'local', 'scope', 'link')
        _ip('-n', ns, 'route', 'add', 'default', 'via', self.host_address,
            'dev', INNER_IF)

    def running(self):
        """True if the namespace and the host end exist."""
        return (self.namespace is not None and
                os.path.exists(netns_path(self.namespace)) and
                self.namespace in links())

    def pids(self):
        """PIDs of the processes that run inside the lab."""
        out = _ip('netns', 'pids', self.namespace, check=False)
        return [int(p) for p in out.split() if p.isdigit()]

    def stop(self):
        """Delete the veth pair (and with it the host end's route) and the
        namespace.  Idempotent; processes still inside are not touched
        (their owners stop them), only reported."""
        if not self._created:
            return
        self._created = False
        atexit.unregister(self.stop)
        ns = self.namespace
        left = self.pids() if os.path.exists(netns_path(ns)) else []
        if left:
            LOG.warning('member lab %s: processes %s still run inside it',
                        ns, left)
        if ns in links():
            _ip('link', 'delete', ns, check=False)
        if os.path.exists(netns_path(ns)):
            _ip('netns', 'delete', ns, check=False)
        LOG.info('member lab %s (%s) removed', ns, self.subnet)

    # -- records (the CLI) -----------------------------------------------

    def describe(self):
        return {'namespace': self.namespace, 'subnet': str(self.subnet),
                'host_if': self.host_if, 'host_address': self.host_address,
                'inner_address': self.inner_address}

    @classmethod
    def attach(cls, record):
        """The lab ``record`` (``describe()``) names, for ``stop()``, if
        it is still the lab that was recorded: its namespace exists and
        holds the recorded inner address.  Else None."""
        lab = cls(detach=True)
        lab.namespace = record['namespace']
        lab.subnet = ipaddress.ip_network(record['subnet'])
        if lab_subnets().get(lab.namespace) != lab.subnet:
            return None
        lab._created = True
        return lab

    def __repr__(self):
        return '<MemberLab %s %s>' % (self.namespace, self.subnet)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m tools.localstack.netns',
        description='Member labs: network namespaces of member servers.')
    sub = parser.add_subparsers(dest='command', required=True)
    sub.add_parser('check', help='can a lab be created here? (exit 0/1)')
    sub.add_parser('list', help='the labs that exist (namespace, /24, '
                   'PIDs inside)')
    p = sub.add_parser('delete', help='remove a lab left behind')
    p.add_argument('namespace')
    args = parser.parse_args(argv)
    try:
        if args.command == 'check':
            preflight()
            print('member lab: ok (ip, CAP_NET_ADMIN, CAP_SYS_ADMIN, ip '
                  'netns add); a new lab would use %s' % choose_subnet())
        elif args.command == 'list':
            for name, subnet in sorted(lab_subnets().items()):
                lab = MemberLab.attach({'namespace': name,
                                        'subnet': str(subnet)})
                print('%-16s %-18s pids %s' % (
                    name, subnet, ' '.join(map(str, lab.pids())) or '-'))
        else:
            if not args.namespace.startswith(PREFIX):
                parser.error('%s is not a member lab (%s...)'
                             % (args.namespace, PREFIX))
            if args.namespace not in namespaces():
                print('no member lab %s' % args.namespace, file=sys.stderr)
                return 1
            lab = MemberLab(detach=True)
            lab.namespace, lab._created = args.namespace, True
            lab.stop()
    except LabError as exc:
        print('member lab: %s' % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format='%(asctime)s %(levelname)s %(message)s')
    sys.exit(main())
