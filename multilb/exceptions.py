"""multilb's own exceptions.

MultiLBError
 ├── ConfigError          a [multilb] or [cluster:<name>] option is wrong
 ├── StoreUnavailable     the state store (etcd / sqlite) cannot be reached
 ├── Fenced               this agent no longer owns the cluster it works on
 └── NoValidCluster       no enabled cluster can take a new load balancer

Backend failures live in :mod:`backends.exceptions`; the driver turns all of
these into octavia-lib exceptions with a user and an operator message.
"""


class MultiLBError(Exception):
    """Base class of multilb errors."""


class ConfigError(MultiLBError):
    """A configuration value is missing or invalid.

    The message names the section and the option, and what is allowed.
    """


class StoreSchemaError(ConfigError):
    """The state store holds a key layout (schema version) this multilb
    does not read: written by a newer multilb, or older and not migrated
    (``multilb-manage store upgrade``)."""


class StoreUnavailable(MultiLBError):
    """The state store could not be reached or answered with an error."""


class Fenced(MultiLBError):
    """Another agent took the cluster over (:mod:`multilb.fencing`): this
    agent must not write to the cluster nor complete work on it."""


class Moved(MultiLBError):
    """The load balancer moved to another cluster while this cluster's
    worker was processing it (:mod:`multilb.moves`): nothing was recorded;
    its pending work is forwarded to the new cluster, which reports it."""


class NoValidCluster(MultiLBError):
    """No cluster passed the scheduler for a new load balancer.

    :param reasons: ``[(filter name, cluster name, why), ...]`` for every
        cluster a filter dropped, in filter order.
    :param last_filter: name of the filter that removed the last candidates.
    """

    def __init__(self, message, reasons=None, last_filter=None):
        super().__init__(message)
        self.reasons = reasons or []
        self.last_filter = last_filter
