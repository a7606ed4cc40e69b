"""Errors a backend raises; the agent maps them to Octavia statuses.

BackendError
 ├── BackendUnavailable   transient: cannot reach / overloaded; retried until
 │                        [multilb] apply_retry_timeout, then ERROR
 ├── BackendRejected      permanent: the appliance refused this configuration;
 │                        the objects it names (``object_ids``; else the
 │                        operation's targets) go to ERROR at once and are
 │                        held out of later applies of their load balancer
 └── UnsupportedFeature   the request uses something this backend cannot do;
                          raised by ``check_supported`` in the API process
"""


class BackendError(Exception):
    """Base class. ``str(exc)`` is shown to operators, never to tenants."""


class BackendUnavailable(BackendError):
    """The cluster could not be reached or asked us to come back later."""


class BackendRejected(BackendError):
    """The cluster refused the configuration; retrying will not help.

    :param object_ids: the objects of the graph the cluster refused, when
        the backend can tell (an L7 rule whose regex it cannot compile, a
        member address it cannot route). multilb then applies the rest of
        the load balancer without them. Empty: multilb holds out the
        objects the operation created or changed.
    """

    def __init__(self, *args, object_ids=()):
        super().__init__(*args)
        self.object_ids = tuple(object_ids)


class UnsupportedFeature(BackendError):
    """The request uses a protocol, algorithm or feature the backend lacks.

    ``str(exc)`` names what is unsupported and what is supported; it is safe
    to show to tenants.
    """
