"""MultiLBProviderDriver: the Octavia API side of multilb.

Octavia calls these methods inside its API request and its open database
transaction. Each one validates, records the intent durably in the state
store (on create: schedules the load balancer and reserves capacity) and
returns within milliseconds. The provider agent (:mod:`multilb.agent`) does
the appliance work and reports statuses. Nothing here talks to an
appliance, builds a ``DriverLibrary``, reports a status or starts a thread.
"""

from __future__ import annotations

import functools
import logging

from octavia_lib.api.drivers import data_models
from octavia_lib.api.drivers import exceptions as lib_exc
from octavia_lib.api.drivers import provider_base

from backends import exceptions as backend_exc
from multilb import admission
from multilb import departed
from multilb import exceptions
from multilb import flavors
from multilb import graph as graphs
from multilb import moves
from multilb import placement
from multilb import runtime

LOG = logging.getLogger(__name__)

_SCALARS = (str, int, float, bool)


def _edge(method):
    """Turn multilb errors into octavia-lib errors with both fault strings."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (lib_exc.DriverError, lib_exc.NotImplementedError,
                lib_exc.UnsupportedOptionError, lib_exc.Conflict):
            raise
        except exceptions.StoreUnavailable as exc:
            LOG.error('%s failed: state store unavailable: %s',
                      method.__name__, exc)
            raise lib_exc.DriverError(
                user_fault_string='The load balancer service cannot record '
                                  'this request right now; nothing was '
                                  'changed. Please retry later.',
                operator_fault_string='multilb state store unavailable: %s'
                                      % exc) from None
        except exceptions.ConfigError as exc:
            LOG.error('%s failed: configuration error: %s',
                      method.__name__, exc)
            raise lib_exc.DriverError(
                user_fault_string='The load balancer service is '
                                  'misconfigured; nothing was changed. '
                                  'Please contact your cloud operator.',
                operator_fault_string='multilb configuration error: %s'
                                      % exc) from None
        except Exception:
            LOG.exception('%s failed unexpectedly', method.__name__)
            raise lib_exc.DriverError(
                user_fault_string='The load balancer service failed to '
                                  'record this request; nothing was '
                                  'changed.',
                operator_fault_string='multilb %s failed unexpectedly; see '
                                      'the octavia-api log' %
                                      method.__name__) from None
    return wrapper


def _fields(obj):
    """The fields of an Octavia object that are set (Unset dropped)."""
    return {k: v for k, v in graphs.to_plain(obj).items() if v is not None} \
        if obj is not None else {}


def _flat(value):
    """True for values an update may be compared on after commit."""
    if value is None or isinstance(value, _SCALARS):
        return True
    if isinstance(value, list):
        return all(isinstance(v, _SCALARS) for v in value)
    if isinstance(value, dict):
        return all(v is None or isinstance(v, _SCALARS)
                   for v in value.values())
    return False


def _expect(new_obj, id_field, ignore=()):
    """The fields an update sets, as the agent will find them once committed.

    Unset fields are left out; cleared fields (None) are kept. TLS material
    (every ``*_data`` field) and nested objects are never recorded: the
    matching ``*_ref`` fields are enough to recognise the commit. Fields in
    ``ignore`` are ones Octavia does not store as given.
    """
    found = {}
    for key, value in vars(new_obj).items():
        if (key.startswith('_') or key == id_field or key.endswith('_data')
                or key in ignore
                or isinstance(value, data_models.UnsetType)):
            continue
        value = graphs.to_plain(value)
        if _flat(value):
            found[key] = value
    return found


class MultiLBProviderDriver(provider_base.ProviderDriver):
    """Octavia provider driver over a fleet of appliance clusters."""

    def __init__(self):
        super().__init__()
        # Octavia builds one of these per API request, and the first one at
        # octavia-api start-up: validate the cluster configuration then (once
        # per process, no I/O) so a broken [cluster:*] section is reported
        # at start-up while the valid clusters keep serving.
        runtime.get()

    # -- helpers -----------------------------------------------------------

    @staticmethod
    def _cluster_of(rt, lb_id, record, deleting=False):
        """The cluster holding ``lb_id``. A cluster that left the
        configuration (:mod:`multilb.departed`) only takes deletes of its
        load balancers; one disabled by a configuration error takes
        nothing until the operator fixes it."""
        if record is None:
            raise lib_exc.DriverError(
                user_fault_string='Load balancer %s is unknown to the '
                                  'multilb provider.' % lb_id,
                operator_fault_string='multilb has no placement record for '
                                      'load balancer %s' % lb_id)
        name = record['cluster']
        cluster = rt.clusters.clusters.get(name)
        if cluster is None and name not in rt.clusters.errors:
            if deleting:
                return departed.config(name)
            raise lib_exc.DriverError(
                user_fault_string='The appliance cluster of load balancer %s '
                                  'has been retired: the load balancer can '
                                  'only be deleted; nothing was changed.'
                                  % lb_id,
                operator_fault_string='load balancer %s is on cluster %s, '
                                      'which is not in [multilb] '
                                      'enabled_clusters: only deleting the '
                                      'load balancer is possible' % (
                                          lb_id, name))
        if cluster is None:
            why = rt.clusters.errors[name]
            raise lib_exc.DriverError(
                user_fault_string='The appliance cluster of load balancer %s '
                                  'is out of service; nothing was changed. '
                                  'Please contact your cloud operator.'
                                  % lb_id,
                operator_fault_string='load balancer %s is on cluster %s, '
                                      'which is not usable: %s' % (
                                          lb_id, name, why))
        return cluster

    @staticmethod
    def _check(cluster, otype, fields):
        try:
            cluster.backend_class.check_supported(otype, fields)
        except backend_exc.UnsupportedFeature as exc:
            message = 'cluster %s (backend %s): %s' % (
                cluster.name, cluster.backend, exc)
            raise lib_exc.UnsupportedOptionError(
                user_fault_string=message,
                operator_fault_string=message) from None

    def _lb_of(self, rt, object_id, otype):
        found = rt.state.lookup(object_id)
        if found is None:
            raise lib_exc.DriverError(
                user_fault_string='The %s %s is unknown to the multilb '
                                  'provider.' % (otype, object_id),
                operator_fault_string='multilb has no index entry for %s %s'
                                      % (otype, object_id))
        return found[0]

    def _record(self, otype, op, object_id, lb_id=None, parent=None,
                fields=None, reserve=None, **extra):
        """Validate and durably record one operation on an existing LB.

        :param reserve: ``f(rt, cluster, record) -> (checks, puts, keys)``:
            reservations made in the same commit (``keys`` go into the
            intent as ``binds``).
        """
        rt = runtime.get().checked()
        if lb_id is None:
            lb_id = self._lb_of(rt, parent, 'parent object')
        record = rt.state.get_lb(lb_id)
        cluster = self._cluster_of(
            rt, lb_id, record,
            deleting=(otype, op) == ('loadbalancer', 'delete'))
        if fields is not None:
            self._check(cluster, otype, fields)
            if otype == 'member':
                admission.check_addresses(rt, fields, cluster)
        intent = {'op': op, 'type': otype, 'id': object_id,
                  'project': record.get('project_id') or ''}
        if parent:
            intent['parent'] = parent
        intent.update(extra)
        for _attempt in range(placement.ATTEMPTS):
            checks, puts, keys = (reserve(rt, cluster, record) if reserve
                                  else ({}, {}, []))
            if keys:
                intent['binds'] = keys
            if rt.state.add_intent(lb_id, cluster.name, intent,
                                   reserve=(checks, puts)):
                break
        else:
            raise RuntimeError('reservations for %s %s kept changing' % (
                otype, object_id))
        LOG.info('Recorded %s of %s %s on load balancer %s (cluster %s)',
                 op, otype, object_id, lb_id, cluster.name)

    # -- load balancers ----------------------------------------------------

    @_edge
    def create_vip_port(self, loadbalancer_id, project_id, vip_dictionary,
                        additional_vip_dicts=None):
        return admission.create_vip_port(
            runtime.get().checked(), loadbalancer_id, project_id,
            vip_dictionary or {}, additional_vip_dicts or [])

    @_edge
    def loadbalancer_create(self, loadbalancer):
        rt = runtime.get().checked()
        lb = graphs.from_octavia(loadbalancer)
        lb_id = lb['loadbalancer_id']
        if rt.state.get_lb(lb_id) is not None:
            return  # already placed: a retried call
        fields = {}
        try:
            pool, fields = admission.pool_vip(rt, lb)
            admission.check_addresses(rt, lb)
            self._place(rt, lb, fields,
                        admission.allowed_clusters(rt, lb, pool))
        except BaseException:
            admission.give_back(rt, lb, fields)
            raise

    @staticmethod
    def _place(rt, lb, fields, allowed):
        lb_id = lb['loadbalancer_id']
        try:
            rt.placer.place(lb, record_extra=fields, allowed=allowed,
                            reserve=admission.placement_reserver(rt, lb))
        except exceptions.NoValidCluster as exc:
            user, operator = placement.no_valid_cluster_message(rt, exc)
            LOG.error('No cluster can take load balancer %s: %s', lb_id,
                      operator)
            if exc.last_filter == 'CapabilitiesFilter':
                raise lib_exc.UnsupportedOptionError(
                    user_fault_string='no appliance cluster supports this '
                                      'load balancer: %s' %
                                      placement.unsupported_message(exc),
                    operator_fault_string=operator) from None
            raise lib_exc.DriverError(
                user_fault_string=user,
                operator_fault_string='no cluster for load balancer %s: %s'
                                      % (lb_id, operator)) from None
        except RuntimeError as exc:
            raise lib_exc.DriverError(
                user_fault_string='The load balancer service is too busy to '
                                  'place this load balancer; nothing was '
                                  'changed. Please retry.',
                operator_fault_string=str(exc)) from None

    @_edge
    def loadbalancer_update(self, old_loadbalancer, new_loadbalancer):
        lb_id = old_loadbalancer.loadbalancer_id
        self._record('loadbalancer', 'update', lb_id, lb_id=lb_id,
                     expect=_expect(new_loadbalancer, 'loadbalancer_id'))

    @_edge
    def loadbalancer_delete(self, loadbalancer, cascade=False):
        lb = graphs.from_octavia(loadbalancer)
        lb_id = lb['loadbalancer_id']
        tree = {oid: otype for oid, otype in graphs.object_ids(lb).items()
                if oid != lb_id}
        self._record('loadbalancer', 'delete', lb_id, lb_id=lb_id,
                     tree=tree, cascade=bool(cascade))

    @_edge
    def loadbalancer_failover(self, loadbalancer_id):
        """In place; or, when the load balancer's cluster is draining,
        retired or broken, a move make-before-break (:mod:`multilb.moves`)
        whose target applies the failover once it serves the load
        balancer (if no cluster can take it, in place)."""
        lb_id = loadbalancer_id
        if not self._failover_elsewhere(runtime.get().checked(), lb_id):
            self._record('loadbalancer', 'failover', lb_id, lb_id=lb_id)

    @staticmethod
    def _failover_elsewhere(rt, lb_id):
        record = rt.state.get_lb(lb_id)
        if record is None or record['cluster'] not in rt.clusters.clusters:
            return False
        why = placement.leave_reason(rt, record['cluster'])
        if why is None:
            return False
        try:
            target = placement.move_target(rt, record)
            moves.Moves(rt.state).start(
                lb_id, target,
                rt.clusters.clusters[target].max_loadbalancers,
                'failover', reason='failover: %s' % why,
                extra_intents=({'op': 'failover', 'type': 'loadbalancer',
                                'id': lb_id},))
        except (exceptions.NoValidCluster, ValueError) as exc:
            LOG.warning('Failover of load balancer %s: %s, but it cannot '
                        'move (%s); failing it over in place', lb_id, why,
                        exc)
            return False
        LOG.info('Failover of load balancer %s: %s; moving it to cluster '
                 '%s', lb_id, why, target)
        return True

    # -- listeners -----------------------------------------------------------

    @_edge
    def listener_create(self, listener):
        rt = runtime.get().checked()
        lb_id = listener.loadbalancer_id
        cluster = self._cluster_of(rt, lb_id, rt.state.get_lb(lb_id))
        if cluster.max_listeners:
            carried = rt.state.cluster_listeners(cluster.name)
            if carried >= cluster.max_listeners:
                raise lib_exc.DriverError(
                    user_fault_string='The appliance cluster of load '
                                      'balancer %s has no room for another '
                                      'listener; nothing was changed. '
                                      'Please contact your cloud operator.'
                                      % lb_id,
                    operator_fault_string='cluster %s carries %d of %d '
                                          'listeners' % (
                                              cluster.name, carried,
                                              cluster.max_listeners))
        fields = _fields(listener)
        self._record('listener', 'create', listener.listener_id,
                     lb_id=lb_id, fields=fields,
                     reserve=lambda rt, cluster, record:
                     admission.listener_reservation(rt, cluster, record,
                                                    fields))

    @_edge
    def listener_update(self, old_listener, new_listener):
        self._record('listener', 'update', old_listener.listener_id,
                     lb_id=old_listener.loadbalancer_id,
                     fields=_fields(new_listener),
                     expect=_expect(new_listener, 'listener_id'))

    @_edge
    def listener_delete(self, listener):
        self._record('listener', 'delete', listener.listener_id,
                     lb_id=listener.loadbalancer_id)

    # -- pools ---------------------------------------------------------------

    @_edge
    def pool_create(self, pool):
        listener_id = pool.listener_id or None
        self._record('pool', 'create', pool.pool_id,
                     lb_id=pool.loadbalancer_id, fields=_fields(pool),
                     **({'parent': listener_id} if listener_id else {}))

    @_edge
    def pool_update(self, old_pool, new_pool):
        self._record('pool', 'update', old_pool.pool_id,
                     lb_id=old_pool.loadbalancer_id, fields=_fields(new_pool),
                     expect=_expect(new_pool, 'pool_id'))

    @_edge
    def pool_delete(self, pool):
        self._record('pool', 'delete', pool.pool_id,
                     lb_id=pool.loadbalancer_id)

    # -- members -------------------------------------------------------------

    @_edge
    def member_create(self, member):
        self._record('member', 'create', member.member_id,
                     parent=member.pool_id, fields=_fields(member))

    @_edge
    def member_update(self, old_member, new_member):
        self._record('member', 'update', old_member.member_id,
                     parent=old_member.pool_id, fields=_fields(new_member),
                     expect=_expect(new_member, 'member_id'))

    @_edge
    def member_delete(self, member):
        self._record('member', 'delete', member.member_id,
                     parent=member.pool_id)

    @_edge
    def member_batch_update(self, pool_id, members):
        rt = runtime.get().checked()
        lb_id = self._lb_of(rt, pool_id, 'pool')
        record = rt.state.get_lb(lb_id)
        cluster = self._cluster_of(rt, lb_id, record)
        listed, expect = [], {}
        known = record.get('pools', {}).get(pool_id, [])
        for member in members:
            self._check(cluster, 'member', _fields(member))
            admission.check_addresses(rt, _fields(member), cluster)
            listed.append(member.member_id)
            if member.member_id in known:
                # Octavia never writes a batch-updated member's vnic_type
                expect[member.member_id] = _expect(member, 'member_id',
                                                   ignore=('vnic_type',))
        deleted = sorted(set(known) - set(listed))
        rt.state.add_intent(lb_id, cluster.name, {
            'op': 'batch', 'type': 'pool', 'id': pool_id,
            'project': record.get('project_id') or '',
            'members': listed, 'deleted': deleted, 'expect': expect})
        LOG.info('Recorded member batch update of pool %s on load balancer '
                 '%s (cluster %s): %d members, %d removed', pool_id, lb_id,
                 cluster.name, len(listed), len(deleted))

    # -- health monitors ---------------------------------------------------

    @_edge
    def health_monitor_create(self, healthmonitor):
        self._record('healthmonitor', 'create', healthmonitor.healthmonitor_id,
                     parent=healthmonitor.pool_id,
                     fields=_fields(healthmonitor))

    @_edge
    def health_monitor_update(self, old_healthmonitor, new_healthmonitor):
        self._record('healthmonitor', 'update',
                     old_healthmonitor.healthmonitor_id,
                     parent=old_healthmonitor.pool_id,
                     fields=_fields(new_healthmonitor),
                     expect=_expect(new_healthmonitor, 'healthmonitor_id'))

    @_edge
    def health_monitor_delete(self, healthmonitor):
        self._record('healthmonitor', 'delete', healthmonitor.healthmonitor_id,
                     parent=healthmonitor.pool_id)

    # -- L7 policies and rules -------------------------------------------

    @_edge
    def l7policy_create(self, l7policy):
        self._record('l7policy', 'create', l7policy.l7policy_id,
                     parent=l7policy.listener_id, fields=_fields(l7policy))

    @_edge
    def l7policy_update(self, old_l7policy, new_l7policy):
        self._record('l7policy', 'update', old_l7policy.l7policy_id,
                     parent=old_l7policy.listener_id,
                     fields=_fields(new_l7policy),
                     expect=_expect(new_l7policy, 'l7policy_id'))

    @_edge
    def l7policy_delete(self, l7policy):
        self._record('l7policy', 'delete', l7policy.l7policy_id,
                     parent=l7policy.listener_id)

    @_edge
    def l7rule_create(self, l7rule):
        self._record('l7rule', 'create', l7rule.l7rule_id,
                     parent=l7rule.l7policy_id, fields=_fields(l7rule))

    @_edge
    def l7rule_update(self, old_l7rule, new_l7rule):
        self._record('l7rule', 'update', old_l7rule.l7rule_id,
                     parent=old_l7rule.l7policy_id,
                     fields=_fields(new_l7rule),
                     expect=_expect(new_l7rule, 'l7rule_id'))

    @_edge
    def l7rule_delete(self, l7rule):
        self._record('l7rule', 'delete', l7rule.l7rule_id,
                     parent=l7rule.l7policy_id)

    # -- flavors and availability zones --------------------------------

    def get_supported_flavor_metadata(self):
        return flavors.descriptions(flavors.FLAVOR_SCHEMA)

    @_edge
    def validate_flavor(self, flavor_metadata):
        self._validate(flavors.validate_flavor, flavor_metadata)

    def get_supported_availability_zone_metadata(self):
        return flavors.descriptions(flavors.AVAILABILITY_ZONE_SCHEMA)

    @_edge
    def validate_availability_zone(self, availability_zone_metadata):
        self._validate(flavors.validate_availability_zone,
                       availability_zone_metadata)

    @staticmethod
    def _validate(check, metadata):
        try:
            check(metadata, runtime.get().clusters.clusters)
        except flavors.InvalidMetadata as exc:
            raise lib_exc.UnsupportedOptionError(
                user_fault_string=str(exc),
                operator_fault_string=str(exc)) from None
