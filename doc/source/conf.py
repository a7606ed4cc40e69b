"""Sphinx configuration of the multilb documentation (``tox -e docs``).

The build needs nothing from the network: the builtin alabaster theme, no
intersphinx. The option reference is generated from the code by
``oslo_config.sphinxext`` (entry point ``oslo.config.opts: multilb``, so
multilb must be installed, as ``tox -e docs`` does), the ``multilb-manage``
reference from its argparse parser by the local ``_ext/argparse_doc.py``,
and the release notes page from ``releasenotes/notes`` by
``reno.sphinxext`` (which reads the notes from git: committed notes only).
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '_ext'))

project = 'multilb'
copyright = 'multilb developers'
author = 'multilb developers'

try:
    import pbr.version
    release = pbr.version.VersionInfo('multilb').release_string()
    version = pbr.version.VersionInfo('multilb').version_string()
except Exception:  # not installed: the build still works, unversioned
    release = version = ''

extensions = [
    'oslo_config.sphinxext',
    'argparse_doc',
    # admin/release-notes: the notes of releasenotes/notes, read from git
    'reno.sphinxext',
]

root_doc = 'index'
exclude_patterns = ['_build', '_ext', '**/__pycache__']
templates_path = []
html_static_path = []

html_theme = 'alabaster'
html_title = 'multilb %s' % release if release else 'multilb'
pygments_style = 'sphinx'
