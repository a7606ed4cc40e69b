"""Errors a backend raises; the agent maps them to Octavia statuses.

BackendError
 ├── BackendUnavailable   transient: cannot reach / overloaded; retried until
 │                        [multilb] apply_retry_timeout, then ERROR
 ├── BackendRejected      permanent: the appliance refused this configuration;
 │                        the object goes to ERROR at once
 └── UnsupportedFeature   the request uses something this backend cannot do;
                          raised by ``check_supported`` in the API process
"""


class BackendError(Exception):
    """Base class. ``str(exc)`` is shown to operators, never to tenants."""


class BackendUnavailable(BackendError):
    """The cluster could not be reached or asked us to come back later."""


class BackendRejected(BackendError):
    """The cluster refused the configuration; retrying will not help."""


class UnsupportedFeature(BackendError):
    """The request uses a protocol, algorithm or feature the backend lacks.

    ``str(exc)`` names what is unsupported and what is supported; it is safe
    to show to tenants.
    """
