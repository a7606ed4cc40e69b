"""The agent's line to Octavia: ``DriverLibrary``, built lazily, once.

``DriverLibrary()`` blocks for about two minutes when the driver agent's
sockets are missing, so it is only ever built here, in the provider agent,
and never in the API process.
"""

from __future__ import annotations

import logging
import os
import threading

from octavia_lib.api.drivers import driver_lib
from octavia_lib.api.drivers import exceptions as driver_exc
from oslo_config import cfg

from multilb import graph as graphs

LOG = logging.getLogger(__name__)

_SOCKETS = {
    'status_socket': ('status_socket_path', driver_lib.DEFAULT_STATUS_SOCKET),
    'stats_socket': ('stats_socket_path', driver_lib.DEFAULT_STATS_SOCKET),
    'get_socket': ('get_socket_path', driver_lib.DEFAULT_GET_SOCKET)}


class OctaviaUnavailable(Exception):
    """The driver agent could not be reached; try again later."""


class OctaviaBusy(OctaviaUnavailable):
    """The driver agent took the request and did not answer within the
    driver library's timeout (30 s): overloaded, or waiting for its
    database. Its handler may still carry the request out."""


class StatusRejected(Exception):
    """The driver agent processed a status update and refused a record."""


def register_socket_opts(conf):
    """Register ``[driver_agent]``'s socket path options on a private
    ``ConfigOpts`` (``multilb-manage store rebuild``), so that
    :func:`socket_paths` reads the configured paths there; Octavia
    registers them itself on its processes' ``cfg.CONF``."""
    opts = [cfg.StrOpt(option, default=default)
            for option, default in _SOCKETS.values()]
    try:
        conf.register_opts(opts, group='driver_agent')
    except cfg.DuplicateOptError:
        pass    # already registered (with other help texts): read those


def socket_paths(conf=cfg.CONF):
    """The driver agent's socket paths, as Octavia's own config sets them."""
    paths = {}
    for arg, (option, default) in _SOCKETS.items():
        try:
            paths[arg] = getattr(conf.driver_agent, option)
        except (cfg.NoSuchOptError, cfg.NoSuchGroupError):
            paths[arg] = default
    return paths


class OctaviaClient:
    """Thread-safe wrapper: plain-dict graphs in, status dicts out."""

    def __init__(self, library=None, paths=None):
        """:param paths: the socket paths (:func:`socket_paths`); default:
            those of ``cfg.CONF`` (Octavia's configuration in the agent)."""
        self._library = library
        self._paths = paths
        self._lock = threading.Lock()

    def _lib(self):
        with self._lock:
            if self._library is None:
                paths = self._paths or socket_paths()
                # DriverLibrary() retries for ~2 minutes while a socket file
                # is missing; fail fast instead and let the caller back off.
                missing = [p for p in paths.values() if not os.path.exists(p)]
                if missing:
                    raise OctaviaUnavailable(
                        'driver agent socket(s) missing: %s' %
                        ', '.join(missing))
                try:
                    self._library = driver_lib.DriverLibrary(**paths)
                except driver_exc.DriverAgentNotFound as exc:
                    raise OctaviaUnavailable(str(exc)) from None
            return self._library

    def get_loadbalancer(self, lb_id):
        """The committed graph of ``lb_id`` (:mod:`multilb.graph`) or None."""
        try:
            found = self._lib().get_loadbalancer(lb_id)
        except (driver_exc.DriverError, driver_exc.DriverAgentTimeout,
                OSError) as exc:
            raise OctaviaUnavailable('get_loadbalancer(%s): %s' % (
                lb_id, getattr(exc, 'fault_string', None) or exc)) from None
        return graphs.from_octavia(found) if found else None

    def update_status(self, status):
        """Deliver one status dict.

        :raises OctaviaBusy: sent, but no answer in time; the driver
            agent may still write it.
        :raises OctaviaUnavailable: nothing was processed; retry.
        :raises StatusRejected: the agent refused a record.
        """
        try:
            self._lib().update_loadbalancer_status(status)
        except driver_exc.UpdateStatusError as exc:
            if getattr(exc, 'status_object', None):
                raise StatusRejected('%s %s: %s' % (
                    exc.status_object, exc.status_object_id,
                    exc.fault_string)) from None
            # DriverLibrary wraps whatever its socket call raised; its own
            # timeout (the request went out, no answer) is the context.
            if isinstance(exc.__context__, driver_exc.DriverAgentTimeout):
                raise OctaviaBusy(str(exc.fault_string)) from None
            raise OctaviaUnavailable(str(exc.fault_string)) from None
        except OSError as exc:
            raise OctaviaUnavailable(str(exc)) from None

    def update_statistics(self, statistics):
        try:
            self._lib().update_listener_statistics(statistics)
        except (driver_exc.UpdateStatisticsError, OSError) as exc:
            raise OctaviaUnavailable(
                str(getattr(exc, 'fault_string', None) or exc)) from None
