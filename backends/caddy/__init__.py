"""Caddy 2 appliances, driven only through Caddy's JSON admin REST API.

:mod:`backends.caddy.client` is the admin API of one node; the backend
(one cluster = several active/active nodes sharing the VIPs through
SO_REUSEPORT or ECMP) builds on it.
"""
