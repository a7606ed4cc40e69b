"""AS3 object names for the F5 backend, built from Octavia ids only.

Tenant-supplied names and descriptions never reach a declaration; every
AS3 name below is a fixed prefix plus an Octavia id (a UUID), so nothing
a tenant types can name, or point at, another object.

* Tenant (a BIG-IP partition): one per (project id, VIP network id):
  ``mlb_<project>_<network>``. AS3 3.56 allows ``^[A-Za-z][0-9A-Za-z_.-]*$``
  up to 190 characters for tenant names (:data:`TENANT_MAX`); a project
  id (32 hex digits) and a network UUID make 73. A longer name, or ids
  with other characters, become ``mlb_h<sha256 of project NUL network>``
  (69 characters): deterministic, and collisions are out of reach.
* Application: ``lb_<loadbalancer_id>``, one per load balancer.
* Objects in it: ``vs_<listener>``, ``pool_<pool>``, ``mon_<hm>``,
  ``persist_<pool>``, ``policy_<listener>``, ``tls_<listener>``,
  ``cert_<listener>`` / ``cert_<listener>_sni<n>``, ``tcp_<listener>``,
  ``http_<listener>``.
"""

from __future__ import annotations

import hashlib
import re

from backends import exceptions

TENANT_MAX = 190
_NAME = re.compile(r'[A-Za-z][0-9A-Za-z_.-]*')
_ID = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]{0,97}[A-Za-z0-9_.]|[A-Za-z0-9]')


def checked_id(kind, value):
    """``value`` if it is a plain id usable inside an AS3 name."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise exceptions.BackendRejected(
            'f5: invalid %s id %r' % (kind, value))
    return value


def tenant(project_id, network_id):
    """The AS3 tenant holding the load balancers of a project on a network.
    """
    name = 'mlb_%s_%s' % (project_id, network_id)
    if len(name) <= TENANT_MAX and _NAME.fullmatch(name):
        return name
    digest = hashlib.sha256(('%s\0%s' % (project_id, network_id)).encode(
        'utf-8', 'surrogatepass')).hexdigest()
    return 'mlb_h' + digest


def vip_network(graph):
    """The load balancer's VIP network id (the tenant unit's second half)."""
    network = graph.get('vip_network_id')
    if not network:
        raise exceptions.BackendRejected(
            'f5: load balancer %s has no vip_network_id'
            % graph.get('loadbalancer_id'))
    return network


def tenant_of(graph):
    return tenant(graph.get('project_id') or '', vip_network(graph))


def application(loadbalancer_id):
    return 'lb_' + checked_id('loadbalancer', loadbalancer_id)


def obj(prefix, object_id, kind):
    return '%s_%s' % (prefix, checked_id(kind, object_id))
