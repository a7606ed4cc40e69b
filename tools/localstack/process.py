"""Start, watch and stop the service processes of a local stack.

A :class:`Service` is one process that *we* started.  It remembers the PID
together with the process start time from ``/proc/<pid>/stat``, so that a
recycled PID is never mistaken for our process: every signal is sent only
after checking that the start time still matches.  ``stop()`` also takes
care of the children the service forked itself (the Octavia driver agent
forks listeners and provider agents): they are stopped if they outlive
their parent.

Services run in their own session (Ctrl-C in the terminal does not reach
them; the owner stops them in order).  Unless ``detach=True``, the kernel
sends them SIGTERM when the Python thread that started them dies
(``PR_SET_PDEATHSIG``), so a killed pytest run does not leave daemons
behind.  The CLI (``python -m tools.localstack up``) uses ``detach=True``.
"""

import ctypes
import http.client
import logging
import os
import signal
import subprocess
import time

LOG = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
try:
    _LIBC = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - not Linux
    _LIBC = None


# --------------------------------------------------------------------------
# /proc helpers
# --------------------------------------------------------------------------

def proc_stat(pid):
    """Return ``(state, ppid, starttime)`` of ``pid`` or None if it is gone."""
    try:
        with open(f'/proc/{pid}/stat', 'rb') as f:
            data = f.read().decode('ascii', 'replace')
    except OSError:
        return None
    # comm (field 2) is in parentheses and may contain spaces or ')'.
    fields = data[data.rindex(')') + 2:].split()
    return fields[0], int(fields[1]), int(fields[19])


def proc_cmdline(pid):
    """Return the command line of ``pid`` as one string ('' if gone).

    NULs become spaces, so titles set with setproctitle read naturally.
    """
    try:
        with open(f'/proc/{pid}/cmdline', 'rb') as f:
            raw = f.read()
    except OSError:
        return ''
    return raw.replace(b'\0', b' ').decode('utf-8', 'replace').strip()


def pid_alive(pid, starttime=None):
    """True if ``pid`` runs (not a zombie) and, if given, started at
    ``starttime``."""
    st = proc_stat(pid)
    if st is None or st[0] in ('Z', 'X'):
        return False
    return starttime is None or st[2] == starttime


def children(pid):
    """Direct children of ``pid`` as a list of ``(pid, starttime)``."""
    result = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        st = proc_stat(int(entry))
        if st is not None and st[1] == pid:
            result.append((int(entry), st[2]))
    return result


def descendants(pid):
    """All descendants of ``pid`` (children first) as ``(pid, starttime)``."""
    result, todo = [], [pid]
    while todo:
        for child in children(todo.pop()):
            result.append(child)
            todo.append(child[0])
    return result


def processes_mentioning(text):
    """PIDs of live processes whose command line contains ``text``."""
    pids = []
    for entry in os.listdir('/proc'):
        if entry.isdigit() and int(entry) != os.getpid():
            if text in proc_cmdline(int(entry)) and pid_alive(int(entry)):
                pids.append(int(entry))
    return pids


def _signal_pid(pid, starttime, sig):
    """Send ``sig`` to ``pid`` only if it is still the same process."""
    if not pid_alive(pid, starttime):
        return False
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


# --------------------------------------------------------------------------
# readiness
# --------------------------------------------------------------------------

def tail(path, lines=20):
    """Last ``lines`` lines of a log file ('' if unreadable)."""
    try:
        with open(path, 'rb') as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            data = f.read().decode('utf-8', 'replace')
    except (OSError, TypeError):
        return ''
    return '\n'.join(data.splitlines()[-lines:])


def wait_until(predicate, timeout, what, log_path=None, watch=()):
    """Call ``predicate()`` every 0.1 s until it returns true.

    Returns the seconds waited.  An ``OSError`` or ``HTTPException`` from
    the predicate (e.g. connection refused) counts as "not yet".  Raises
    ``TimeoutError`` after ``timeout`` seconds, and ``RuntimeError`` at
    once if one of the :class:`Service` objects in ``watch`` has exited.
    """
    logs = [log_path] if log_path else [p for s in watch
                                        for p in [s.log_path] + s.other_logs]
    see = ', '.join(str(p) for p in logs if p) or 'the service log'
    t0 = time.monotonic()
    while True:
        try:
            if predicate():
                waited = time.monotonic() - t0
                LOG.debug('%s ready after %.2fs', what, waited)
                return waited
        except (OSError, http.client.HTTPException):
            pass
        for svc in watch:
            if not svc.alive():
                tails = ''.join(f'\n--- {p}:\n{tail(p, 15)}'
                                for p in [svc.log_path] + svc.other_logs)
                raise RuntimeError(
                    f'{what}: {svc.name} (pid {svc.pid}) exited with status '
                    f'{svc.returncode} before it was ready{tails}')
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f'{what} not ready after {timeout}s; see {see}')
        time.sleep(0.1)


# --------------------------------------------------------------------------
# Service
# --------------------------------------------------------------------------

class Service:
    """One process started by us (or re-attached by PID, see ``attach``).

    Attributes: ``name``, ``pid``, ``starttime``, ``log_path`` (its
    stdout+stderr), ``other_logs`` (log files it writes itself), ``argv``.
    """

    def __init__(self, name, pid, starttime, log_path=None, popen=None,
                 argv=None, other_logs=()):
        self.name = name
        self.pid = pid
        self.starttime = starttime
        self.log_path = log_path
        self.other_logs = list(other_logs)
        self.argv = argv
        self._popen = popen

    @classmethod
    def spawn(cls, name, argv, log_path, env=None, cwd=None, detach=False,
              other_logs=()):
        """Start ``argv`` with stdout+stderr appended to ``log_path``."""
        parent = os.getpid()

        def preexec():
            if _LIBC is not None:
                _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
            if os.getppid() != parent:  # parent died before prctl
                os.kill(os.getpid(), signal.SIGTERM)

        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        with open(log_path, 'ab') as log:
            popen = subprocess.Popen(
                [str(a) for a in argv], stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env=env, cwd=cwd, close_fds=True,
                start_new_session=True,
                preexec_fn=None if detach else preexec)
        st = proc_stat(popen.pid)
        svc = cls(name, popen.pid, st[2] if st else None, log_path, popen,
                  [str(a) for a in argv], other_logs)
        LOG.info('started %s pid %d (log %s)', name, popen.pid, log_path)
        return svc

    @classmethod
    def attach(cls, name, pid, starttime, log_path=None):
        """A Service for a process started by another Python process (the
        CLI's ``down``).  It can be signalled but not reaped by us."""
        return cls(name, pid, starttime, log_path)

    @property
    def returncode(self):
        return self._popen.poll() if self._popen else None

    def alive(self):
        """True while the process runs."""
        if self._popen is not None:
            return self._popen.poll() is None
        return pid_alive(self.pid, self.starttime)

    def kill(self, sig=signal.SIGKILL):
        """Send ``sig`` to the process itself (never to a group)."""
        if self._popen is not None:
            if self._popen.poll() is None:
                self._popen.send_signal(sig)
        else:
            _signal_pid(self.pid, self.starttime, sig)

    def _wait(self, timeout):
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def stop(self, timeout=10):
        """SIGTERM, wait ``timeout`` s, then SIGKILL; reap; then stop any
        of its descendants that outlived it.  Idempotent."""
        if not self.alive():
            self._reap()
            return self.returncode
        offspring = descendants(self.pid)
        t0 = time.monotonic()
        self.kill(signal.SIGTERM)
        if not self._wait(timeout):
            LOG.warning('%s (pid %d) ignored SIGTERM for %ss; killing it',
                        self.name, self.pid, timeout)
            self.kill(signal.SIGKILL)
            self._wait(10)
        self._reap()
        _stop_orphans(self.name, offspring)
        LOG.info('stopped %s pid %d in %.2fs (status %s)', self.name,
                 self.pid, time.monotonic() - t0, self.returncode)
        return self.returncode

    def _reap(self):
        if self._popen is not None:
            try:
                self._popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                LOG.error('%s (pid %d) could not be reaped', self.name,
                          self.pid)

    def describe(self):
        """JSON-serialisable identity (what ``attach`` needs)."""
        return {'name': self.name, 'pid': self.pid,
                'starttime': self.starttime, 'log_path': self.log_path}

    def __repr__(self):
        return f'<Service {self.name} pid={self.pid} alive={self.alive()}>'


def _stop_orphans(name, offspring, grace=3):
    """TERM, then KILL, the processes in ``offspring`` that still run."""
    deadline = time.monotonic() + grace
    while any(pid_alive(*p) for p in offspring):
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    left = [p for p in offspring if pid_alive(*p)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not left:
            return
        LOG.warning('children of %s still running: %s; sending %s', name,
                    [p[0] for p in left], sig.name)
        for p in left:
            _signal_pid(p[0], p[1], sig)
        deadline = time.monotonic() + 5
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = [p for p in left if pid_alive(*p)]
