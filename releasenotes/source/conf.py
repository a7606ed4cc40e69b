"""Sphinx configuration of the multilb release notes (``tox -e
releasenotes``).

The notes are YAML files under ``releasenotes/notes`` (``reno new SLUG``
creates one); ``reno.sphinxext`` reads them from the git history, so a
note shows once it is committed. Nothing is fetched at build time: the
builtin alabaster theme, no intersphinx.
"""

project = 'multilb release notes'
copyright = 'multilb developers'
author = 'multilb developers'

# reno names the versions itself (from the git tags).
release = version = ''

extensions = [
    'reno.sphinxext',
]

root_doc = 'index'
exclude_patterns = ['_build', '**/__pycache__']
templates_path = []
html_static_path = []

html_theme = 'alabaster'
html_title = 'multilb release notes'
pygments_style = 'sphinx'
