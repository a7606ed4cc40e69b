"""Flavor and availability-zone metadata: one jsonschema each, and the checks.

The schemas are the single source of both what
``openstack loadbalancer provider capability list multilb`` shows (the
``description`` of each property) and what ``validate_flavor`` /
``validate_availability_zone`` accept. Beyond the schema, names and tags
are checked against the configured clusters, so that a profile that could
never place a load balancer is refused when it is created.

The only module of multilb that imports jsonschema.
"""

from __future__ import annotations

import jsonschema

_NAMES = {'type': 'array', 'items': {'type': 'string', 'minLength': 1},
          'minItems': 1, 'uniqueItems': True}

_IGNORED = ('Accepted and ignored: an amphora-driver key, allowed so that '
            'generic Octavia tooling and tests keep working.')


def _ignored(*types):
    """An amphora key multilb accepts and ignores: whatever Octavia's own
    tooling sends for it, null included (tempest's AZ profiles carry
    ``compute_zone: null`` when no zone is configured)."""
    return {'type': list(types) + ['null'], 'description': _IGNORED}


FLAVOR_SCHEMA = {
    'type': 'object',
    'additionalProperties': False,
    'properties': {
        'clusters': dict(_NAMES, description=(
            'List of cluster names: load balancers of this flavor are only '
            'placed on these clusters.')),
        'cluster_tags': dict(_NAMES, description=(
            'List of tags: load balancers of this flavor are only placed on '
            'clusters that carry every one of them.')),
        'backend': {'type': 'string', 'minLength': 1, 'description': (
            'Backend type (for example: fake): only clusters driven by it.')},
        'placement': {'type': 'string', 'enum': ['spread', 'pack'],
                      'description': (
                          'spread (default): prefer the cluster with the '
                          'most free capacity; pack: fill clusters up '
                          'before using emptier ones.')},
        'shard_size': {'type': 'integer', 'minimum': 1, 'description': (
            'Number of clusters each project is confined to (shuffle '
            'sharding) for this flavor; overrides [multilb_scheduler] '
            'shard_size.')},
        'loadbalancer_topology': _ignored('string'),
        'compute_flavor': _ignored('string'),
        'amp_image_tag': _ignored('string'),
    },
}

AVAILABILITY_ZONE_SCHEMA = {
    'type': 'object',
    'additionalProperties': False,
    'properties': {
        'clusters': dict(_NAMES, description=(
            'List of cluster names that serve this availability zone.')),
        'cluster_tags': dict(_NAMES, description=(
            'List of tags: clusters that carry every one of them serve this '
            'availability zone.')),
        'compute_zone': _ignored('string'),
        'volume_zone': _ignored('string'),
        'management_network': _ignored('string'),
        'valid_vip_networks': _ignored('array'),
    },
}


class InvalidMetadata(ValueError):
    """The metadata is refused; the message says what and what is valid."""


def descriptions(schema):
    """``{key: description}`` for ``get_supported_*_metadata``."""
    return {key: prop['description']
            for key, prop in sorted(schema['properties'].items())}


def _schema_error(kind, schema, metadata):
    if not isinstance(metadata, dict):
        return '%s metadata must be a JSON object, got %s' % (
            kind, type(metadata).__name__)
    valid = _valid_keys(schema)
    unknown = sorted(set(metadata) - set(schema['properties']))
    if unknown:
        return 'unknown %s metadata key(s): %s; valid keys: %s' % (
            kind, ', '.join(unknown), valid)
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft7Validator(schema).iter_errors(metadata))
    if error is None:
        return None
    key = error.path[0] if error.path else None
    where = ("'%s'" % key) if key is not None else kind + ' metadata'
    return '%s: %s; %s' % (where, error.message, _expected(schema, key))


def _valid_keys(schema):
    props = schema['properties']
    used = sorted(k for k, p in props.items() if p['description'] != _IGNORED)
    ignored = sorted(set(props) - set(used))
    return '%s (accepted and ignored: %s)' % (', '.join(used),
                                              ', '.join(ignored))


def _expected(schema, key):
    prop = schema['properties'].get(key)
    if prop is None:
        return 'valid keys: %s' % _valid_keys(schema)
    if 'enum' in prop:
        return 'allowed values: %s' % ', '.join(prop['enum'])
    kind = prop.get('type', 'value')
    if isinstance(kind, list):
        return 'expected %s' % ' or '.join(
            'null' if k == 'null' else 'a ' + ('list' if k == 'array' else k)
            for k in kind)
    if kind == 'array':
        return 'expected a non-empty list of distinct strings'
    if kind == 'integer':
        return 'expected an integer >= %d' % prop.get('minimum', 0)
    return 'expected a %s' % kind


def _select(kind, metadata, clusters):
    """Check names/tags/backend against ``clusters``; the selected names."""
    selected = dict(clusters)
    names = metadata.get('clusters')
    if names:
        unknown = sorted(set(names) - set(clusters))
        if unknown:
            raise InvalidMetadata(
                "%s metadata 'clusters': unknown cluster(s) %s; configured "
                "clusters: %s" % (kind, ', '.join(unknown),
                                  ', '.join(sorted(clusters)) or 'none'))
        selected = {n: c for n, c in selected.items() if n in names}
    tags = metadata.get('cluster_tags')
    if tags:
        known = set().union(*(c.tags for c in clusters.values())) \
            if clusters else set()
        missing = sorted(set(tags) - known)
        if missing:
            raise InvalidMetadata(
                "%s metadata 'cluster_tags': no cluster has tag(s) %s; tags "
                "in use: %s" % (kind, ', '.join(missing),
                                ', '.join(sorted(known)) or 'none'))
        selected = {n: c for n, c in selected.items()
                    if set(tags) <= c.tags}
    backend = metadata.get('backend')
    if backend:
        in_use = sorted({c.backend for c in clusters.values()})
        if backend not in in_use:
            raise InvalidMetadata(
                "%s metadata 'backend': no cluster uses backend %r; backends "
                "in use: %s" % (kind, backend, ', '.join(in_use) or 'none'))
        selected = {n: c for n, c in selected.items()
                    if c.backend == backend}
    if not selected:
        raise InvalidMetadata(
            '%s metadata selects no cluster: no configured cluster matches '
            'all of %s' % (kind, ', '.join(
                '%s=%s' % (k, metadata[k]) for k in
                ('clusters', 'cluster_tags', 'backend') if metadata.get(k))))
    return sorted(selected)


def validate_flavor(metadata, clusters):
    """Check flavor metadata against the schema and the configured clusters.

    :param clusters: ``{name: ClusterConfig}`` of the valid enabled clusters.
    :returns: the names of the clusters the flavor selects.
    :raises InvalidMetadata: naming the key or value and what is valid.
    """
    error = _schema_error('flavor', FLAVOR_SCHEMA, metadata)
    if error:
        raise InvalidMetadata(error)
    return _select('flavor', metadata, clusters)


def validate_availability_zone(metadata, clusters):
    """As :func:`validate_flavor`, for availability-zone metadata."""
    error = _schema_error('availability zone', AVAILABILITY_ZONE_SCHEMA,
                          metadata)
    if error:
        raise InvalidMetadata(error)
    return _select('availability zone', metadata, clusters)
