"""The contract every appliance backend implements.

A backend drives ONE configured cluster of one vendor. multilb hands it the
desired state of one whole load balancer at a time (a *graph*, see below) and
expects the cluster to match it; the backend never reports statuses to
Octavia itself.

Who calls what:

* the API process (octavia-api) only reads class attributes and calls the
  classmethods (:meth:`get_config_options`, :meth:`check_config`,
  :meth:`check_supported`); it never builds an instance, never does I/O;
* the provider agent builds one instance per cluster it owns, calls
  :meth:`start`, then the apply/delete/observe methods from that cluster's
  worker threads (several at once, for different load balancers; never two
  at once for the same load balancer), and :meth:`stop` when it gives the
  cluster up.

The graph is a plain dict in octavia-lib's ``to_dict`` shape, normalised by
:mod:`multilb.graph`::

    {'loadbalancer_id', 'project_id', 'name', 'admin_state_up',
     'vip_address', 'vip_port_id', ..., 'flavor': {...},
     'listeners': [{'listener_id', 'protocol', 'protocol_port',
                    'default_pool_id', 'admin_state_up', ...,
                    'default_tls_container_data': {...} or None,
                    'l7policies': [{'l7policy_id', 'action', 'position',
                                    'redirect_pool_id', ...,
                                    'rules': [{'l7rule_id', ...}]}]}],
     'pools': [{'pool_id', 'protocol', 'lb_algorithm', ...,
                'members': [{'member_id', 'address', 'protocol_port', ...}],
                'healthmonitor': {...} or None}]}

Objects being deleted are already removed from it. TLS private keys in it
must stay in memory: never log, persist or send them anywhere but the
appliance.
"""

from __future__ import annotations

import abc
import typing

from octavia_lib.common import constants as lib_consts

from backends import exceptions
from backends import types

ALL_LISTENER_PROTOCOLS = frozenset(lib_consts.LISTENER_SUPPORTED_PROTOCOLS)
ALL_POOL_PROTOCOLS = frozenset(lib_consts.POOL_SUPPORTED_PROTOCOLS)
ALL_ALGORITHMS = frozenset(lib_consts.SUPPORTED_LB_ALGORITHMS)
ALL_HEALTH_MONITOR_TYPES = frozenset(lib_consts.SUPPORTED_HEALTH_MONITOR_TYPES)
ALL_SESSION_PERSISTENCE = frozenset(
    lib_consts.SUPPORTED_SP_TYPES)
ALL_L7_ACTIONS = frozenset(lib_consts.SUPPORTED_L7POLICY_ACTIONS)
ALL_L7_RULE_TYPES = frozenset(lib_consts.SUPPORTED_L7RULE_TYPES)

# (object type, field) -> class attribute holding the supported values
_CHECKS = {
    ('listener', 'protocol'): 'SUPPORTED_LISTENER_PROTOCOLS',
    ('pool', 'protocol'): 'SUPPORTED_POOL_PROTOCOLS',
    ('pool', 'lb_algorithm'): 'SUPPORTED_ALGORITHMS',
    ('healthmonitor', 'type'): 'SUPPORTED_HEALTH_MONITOR_TYPES',
    ('l7policy', 'action'): 'SUPPORTED_L7_ACTIONS',
    ('l7rule', 'type'): 'SUPPORTED_L7_RULE_TYPES',
}


def needs(object_type, fields):
    """``{(capability key, value)}`` that one object (or change) requires.

    Keys are ``<object type>.<field>``, as in
    :meth:`ApplianceBackend.capabilities`.
    """
    found = set()
    for (otype, field) in _CHECKS:
        value = fields.get(field)
        if otype == object_type and value is not None:
            found.add(('%s.%s' % (otype, field), value))
    persistence = fields.get('session_persistence')
    if object_type == 'pool' and persistence and persistence.get('type'):
        found.add(('pool.session_persistence', persistence['type']))
    return found


def refusal(check_supported, objects):
    """The refusal text of the first of ``objects`` (``((object type,
    fields), ...)``) that ``check_supported`` (a backend class's
    :meth:`ApplianceBackend.check_supported`) refuses, or None."""
    for object_type, fields in objects:
        try:
            check_supported(object_type, fields)
        except exceptions.UnsupportedFeature as exc:
            return str(exc)
    return None


_LABELS = {
    'protocol': 'protocol', 'lb_algorithm': 'algorithm', 'type': 'type',
    'action': 'action',
}


class ApplianceBackend(abc.ABC):
    """Adapter for one appliance cluster. See the module docstring."""

    SUPPORTED_LISTENER_PROTOCOLS: typing.ClassVar[frozenset] = frozenset()
    """Listener protocols (octavia-lib constants) the backend can serve."""
    SUPPORTED_POOL_PROTOCOLS: typing.ClassVar[frozenset] = frozenset()
    SUPPORTED_ALGORITHMS: typing.ClassVar[frozenset] = frozenset()
    SUPPORTED_HEALTH_MONITOR_TYPES: typing.ClassVar[frozenset] = frozenset()
    SUPPORTED_SESSION_PERSISTENCE: typing.ClassVar[frozenset] = frozenset()
    SUPPORTED_L7_ACTIONS: typing.ClassVar[frozenset] = frozenset()
    SUPPORTED_L7_RULE_TYPES: typing.ClassVar[frozenset] = frozenset()
    BINDS_ADDRESSES: typing.ClassVar[bool] = False
    """True if the appliance binds each listener's address and port itself
    (a VIP:port can then be served by one listener only in a routing
    domain, and multilb reserves it at the API). False for backends that
    bind nothing (fake) or where the network does it."""
    OBSERVES_HEALTH: typing.ClassVar[bool] = False
    """True if the cluster carries traffic and observes it: multilb then
    reports the operating status of load balancers, listeners, pools and
    members as Octavia's amphora driver does with a real data plane
    (ONLINE once applied, rolled up from :meth:`member_health`). False
    (no data plane to observe): multilb leaves those operating statuses as
    the Octavia API set them (OFFLINE; members NO_MONITOR or OFFLINE), as
    the amphora driver does with no-op backends, and never calls
    :meth:`member_health`. Health monitors and L7 policies and rules are
    ONLINE when enabled and OFFLINE when disabled either way. Instances
    answer through :meth:`observes_health`."""

    PARALLEL_APPLIES: typing.ClassVar[typing.Optional[int]] = None
    """How many load balancers of a cluster the agent should apply at
    once, when the cluster's ``workers`` option does not say; None:
    ``[multilb] workers_per_cluster``. A backend whose applies mostly wait
    (queued for a device that takes one declaration at a time, and
    coalesces what waits) asks for more."""

    def __init__(self, cluster):
        """:param cluster: a :class:`multilb.conf.clusters.ClusterConfig`."""
        self.cluster = cluster
        self.breaker = None
        """The cluster's :class:`backends.transport.ClusterBreaker`, set by
        the agent before :meth:`start`. Every call to the cluster goes
        through it (REST backends: pass it to each ``Transport``); while it
        is open those calls raise :class:`BackendUnavailable` at once."""

    # -- class-level: used by the API process, no I/O ----------------------

    @classmethod
    def get_config_options(cls) -> list:
        """oslo.config options this backend reads from ``[cluster:<name>]``.

        They are registered in every section of a cluster that uses this
        backend and in ``[cluster_defaults]``. Mark credentials
        ``secret=True``.
        """
        return []

    @classmethod
    def check_config(cls, options: typing.Mapping) -> None:
        """Check the resolved backend options of one cluster.

        :raises multilb.exceptions.ConfigError: ``'<option>: <problem>'``.
        """

    @classmethod
    def management_addresses(cls, options: typing.Mapping) -> set:
        """``{(ip, port or None)}``: where the cluster's admin plane is.

        Every address returned is refused as a member, monitor address or
        VIP of any load balancer, and a listener may not bind its port on
        it. Return IP literals (the API process does no DNS); endpoints
        given as host names are covered by ``[multilb] management_cidrs``.
        """
        return set()

    @classmethod
    def bound_addresses(cls, options: typing.Mapping,
                        vips: typing.Sequence[str]) -> list:
        """The addresses the cluster binds a load balancer's listeners to.

        :param vips: the load balancer's VIP and additional VIP addresses.
        :returns: ``[]`` unless :attr:`BINDS_ADDRESSES`; else ``vips``
            (backends with a fixed listen address return that).
        """
        return [v for v in vips if v] if cls.BINDS_ADDRESSES else []

    @classmethod
    def capabilities(cls) -> dict:
        """``{'<object type>.<field>': frozenset(values)}`` it serves.

        What the scheduler's capabilities filter compares a request's
        :func:`needs` with.
        """
        found = {'%s.%s' % key: frozenset(getattr(cls, attr))
                 for key, attr in _CHECKS.items()}
        found['pool.session_persistence'] = frozenset(
            cls.SUPPORTED_SESSION_PERSISTENCE)
        return found

    @classmethod
    def check_supported(cls, object_type: str, fields: typing.Mapping) -> None:
        """Refuse an object (create) or a change (update) this backend lacks.

        Called by the driver, in the API request, with the fields the user
        set (unset fields are absent).

        :param object_type: ``listener``, ``pool``, ``member``,
            ``healthmonitor``, ``l7policy`` or ``l7rule``.
        :raises UnsupportedFeature: naming the value and what is supported.
        """
        for (otype, field), attr in _CHECKS.items():
            value = fields.get(field)
            if otype != object_type or value is None:
                continue
            supported = getattr(cls, attr)
            if value not in supported:
                raise exceptions.UnsupportedFeature(
                    '%s %s %s is not supported; supported: %s' % (
                        object_type, _LABELS[field], value,
                        ', '.join(sorted(supported)) or 'none'))
        persistence = fields.get('session_persistence')
        if object_type == 'pool' and persistence:
            kind = persistence.get('type')
            if kind not in cls.SUPPORTED_SESSION_PERSISTENCE:
                raise exceptions.UnsupportedFeature(
                    'pool session persistence %s is not supported; '
                    'supported: %s' % (kind, ', '.join(
                        sorted(cls.SUPPORTED_SESSION_PERSISTENCE)) or 'none'))

    # -- instance: used by the provider agent -------------------------------

    def start(self) -> None:
        """Prepare sessions. Called once before any other instance method.

        Must not fail because the cluster is down: report that from
        :meth:`probe` or the apply methods.
        """

    def stop(self) -> None:
        """Release sessions. Must not raise."""

    @abc.abstractmethod
    def apply_loadbalancer(self, graph: dict) -> None:
        """Make the cluster serve exactly ``graph`` for this load balancer.

        Idempotent: applying the same graph twice has the effect of applying
        it once. Objects of the load balancer absent from the graph must be
        removed from the cluster. Must not touch other load balancers.

        :raises BackendUnavailable: transient; the agent retries.
        :raises BackendRejected: permanent; the agent reports ERROR.
        """

    @abc.abstractmethod
    def delete_loadbalancer(self, loadbalancer_id: str) -> None:
        """Remove everything of this load balancer from the cluster.

        A load balancer that is already absent is a success.

        :raises BackendUnavailable: transient; the agent retries.
        :raises BackendRejected: permanent; the agent reports ERROR.
        """

    @abc.abstractmethod
    def probe(self) -> types.ClusterHealth:
        """Check that the cluster answers. Never raises.

        Called every ``health_interval`` by the agent; must be cheap and
        bounded in time (a hung node must be noticed in seconds: use short
        timeouts and no retries). ``reachable=False`` (no node answers)
        opens the cluster's circuit breaker at once.
        """

    @abc.abstractmethod
    def list_loadbalancer_ids(self) -> set:
        """Ids of every load balancer the cluster holds (orphan sweeps).

        :raises BackendUnavailable: when the cluster cannot be asked.
        """

    def verify_loadbalancer(self, graph: dict) -> None:
        """Check that every node of the cluster serves ``graph`` as
        :meth:`apply_loadbalancer` left it, asking each node directly.

        Called by the agent after applying a load balancer to the target
        of a move (:mod:`multilb.moves`), before the source stops serving
        it: a node that missed the apply (down, behind) must fail this.
        Must not change anything on the cluster. The default trusts the
        apply (for appliances that acknowledge a change only once every
        node serves it); backends whose applies tolerate a node missing
        them must override it.

        :raises BackendUnavailable: a node does not serve it (yet), or
            cannot be asked; the message names the node and what differs.
        """

    def observes_health(self) -> bool:
        """Whether this cluster observes its data plane (see
        :attr:`OBSERVES_HEALTH`). Read by the agent once per operation and
        health round; a backend may answer from its options."""
        return self.OBSERVES_HEALTH

    def member_health(self, graphs: typing.Mapping[str, dict]) -> dict:
        """What the cluster's health checks say of monitored members.

        Called by the agent's monitor thread of the cluster every
        ``member_health_interval`` (never concurrently with itself; applies
        may run meanwhile) with the graph of every load balancer the agent
        applied to the cluster, keyed by load balancer id.

        :returns: ``{member_id: True}`` for a member whose checks pass,
            ``False`` for one whose checks fail. Members the cluster has no
            verdict on yet (no monitor, check not run yet, node silent) are
            left out: multilb keeps their last known status. The default
            knows nothing.
        :raises BackendUnavailable: when no node of the cluster answers.
        """
        return {}

    def collect_statistics(self) -> dict:
        """Listener traffic since the previous call.

        Called by the agent's monitor thread every ``statistics_interval``
        (never concurrently with itself). Counters are *increments* since
        the previous call (the first call of a new instance may return
        what the appliance counted before, or nothing); multilb adds them
        to the totals it keeps in its state store, so totals stay monotonic
        whatever the appliance does with its own counters (reboots, config
        reloads). The backend must not count the same traffic twice.

        :returns: ``{listener_id: ListenerStats}`` where
            ``active_connections`` is the current value and the four other
            fields are increments. Listeners without traffic may be left
            out. The default reports nothing.
        :raises BackendUnavailable: when no node of the cluster answers.
        """
        return {}
