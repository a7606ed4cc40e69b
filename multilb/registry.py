"""Finds plugin classes by name: appliance backends (``multilb.backends``)
and scheduler filters and weighers (``multilb.scheduler.filters`` and
``multilb.scheduler.weighers``).

The only module that imports stevedore. Loading a class never contacts an
appliance: the API process only reads class attributes (capabilities,
options) and the agent builds instances.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging

from stevedore import driver as stevedore_driver
from stevedore import exception as stevedore_exc
from stevedore import named as stevedore_named

from multilb import exceptions

LOG = logging.getLogger(__name__)

NAMESPACE = 'multilb.backends'
FILTERS_NAMESPACE = 'multilb.scheduler.filters'
WEIGHERS_NAMESPACE = 'multilb.scheduler.weighers'


def installed_backend_names():
    """Names of every installed backend entry point, sorted."""
    return installed_names(NAMESPACE)


def installed_names(namespace):
    """Names of every installed entry point of ``namespace``, sorted."""
    eps = importlib.metadata.entry_points(group=namespace)
    return sorted({ep.name for ep in eps})


@functools.lru_cache(maxsize=None)
def _load(name):
    return stevedore_driver.DriverManager(
        NAMESPACE, name, invoke_on_load=False).driver


def backend_class(name, section):
    """Return the backend class registered as ``name``.

    :raises ConfigError: naming ``section`` and the installed backends.
    """
    try:
        return _load(name)
    except stevedore_exc.NoMatches:
        raise exceptions.ConfigError(
            '[%s] backend: unknown backend %r; installed backends: %s' % (
                section, name,
                ', '.join(installed_backend_names()) or 'none')) from None
    except Exception as exc:  # a broken plugin: import error and the like
        LOG.exception('Backend %s failed to load', name)
        raise exceptions.ConfigError(
            '[%s] backend: backend %r is installed but failed to load: %s' % (
                section, name, exc)) from None


def installed_backend_classes():
    """Every installed backend class that loads, by name (for doc tools)."""
    found = {}
    for name in installed_backend_names():
        try:
            found[name] = _load(name)
        except Exception:
            LOG.exception('Backend %s failed to load', name)
    return found


def plugin_classes(namespace, names, option):
    """Load the classes registered as ``names`` in ``namespace``, in order.

    Used once per process by :class:`scheduler.manager.ClusterScheduler`
    (``multilb.scheduler.filters`` and ``multilb.scheduler.weighers``).

    :param names: entry-point names, in the order the caller runs them.
    :param option: the option that lists them, for messages, for example
        ``[multilb_scheduler] enabled_filters``.
    :returns: ``[(name, class), ...]`` in the order of ``names``.
    :raises ConfigError: a name is unknown or listed twice (the message
        names ``option`` and the installed names), or its plugin fails to
        import.
    """
    names = list(names)
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise exceptions.ConfigError('%s: listed more than once: %s' % (
            option, ', '.join(twice)))
    missing = set()

    def failed(_manager, entrypoint, exc):
        LOG.error('Plugin %s of %s failed to load: %s', entrypoint.name,
                  namespace, exc)
        raise exceptions.ConfigError(
            '%s: %r is installed but failed to load: %s' % (
                option, entrypoint.name, exc))

    manager = stevedore_named.NamedExtensionManager(
        namespace, names, name_order=True, invoke_on_load=False,
        on_load_failure_callback=failed,
        on_missing_entrypoints_callback=missing.update)
    if missing:
        raise exceptions.ConfigError(
            '%s: unknown name(s) %s; installed in %s: %s' % (
                option, ', '.join(sorted(missing)), namespace,
                ', '.join(installed_names(namespace)) or 'none'))
    return [(ext.name, ext.plugin) for ext in manager.extensions]
