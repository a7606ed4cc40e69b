"""Where a new load balancer goes: nova-style filters and weighers.

:mod:`scheduler.manager` runs the plugins of :mod:`scheduler.filters` and
:mod:`scheduler.weighers` over :mod:`scheduler.cluster_state` snapshots.
"""
