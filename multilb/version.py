"""multilb's version, as its package metadata says (pbr writes it)."""

import importlib.metadata


def version_string():
    """The installed multilb's version, or ``unknown`` when multilb runs
    from a bare source tree."""
    try:
        return importlib.metadata.version('multilb')
    except importlib.metadata.PackageNotFoundError:
        return 'unknown'
