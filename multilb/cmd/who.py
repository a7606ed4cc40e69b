"""Who made an operator's change: recorded with drains, undrains and moves
(``changed_by`` of ``cluster show``, ``by`` of a move in ``lb show``)."""

from __future__ import annotations

import getpass
import os
import socket

PROG = 'multilb-manage'


def _user():
    try:
        return getpass.getuser()
    except Exception:  # noqa: B902 - no login name: KeyError, OSError...
        return 'uid-%d' % os.getuid() if hasattr(os, 'getuid') else '?'


def _host():
    try:
        return socket.gethostname() or '?'
    except OSError:
        return '?'


def changed_by():
    """``multilb-manage (user@host)``: the command, the OS user that ran
    it and the host it ran on."""
    return '%s (%s@%s)' % (PROG, _user(), _host())
