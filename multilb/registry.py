"""Finds appliance backend classes by name (stevedore, ``multilb.backends``).

The only module that imports stevedore for backends. Loading a class never
contacts an appliance: the API process only reads class attributes
(capabilities, options) and the agent builds instances.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging

from stevedore import driver as stevedore_driver
from stevedore import exception as stevedore_exc

from multilb import exceptions

LOG = logging.getLogger(__name__)

NAMESPACE = 'multilb.backends'


def installed_backend_names():
    """Names of every installed backend entry point, sorted."""
    eps = importlib.metadata.entry_points(group=NAMESPACE)
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
