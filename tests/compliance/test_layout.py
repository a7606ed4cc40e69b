"""Rules of the codebase that a reviewer would otherwise check by hand.

* Product code imports nothing from ``octavia`` (only ``octavia_lib``):
  Octavia's internals change between releases and broke the vendor drivers
  that used them.
* Each third-party library has one home module, so tests fake one seam.
* The top-level packages ``backends`` and ``scheduler`` are ours (PyPI has
  unrelated distributions with those names).
* Every ``multilb.backends`` entry point loads and implements the contract.
"""

import ast
import importlib.metadata
import pathlib

import pytest

from backends import base

ROOT = pathlib.Path(__file__).resolve().parents[2]
PRODUCT = ('multilb', 'backends', 'scheduler')

# library -> the only product modules allowed to import it
HOMES = {
    'etcd3gw': {'multilb/store/etcd_client.py'},
    'tooz': {'multilb/coordination.py'},
    'stevedore': {'multilb/registry.py'},
    'jsonschema': {'multilb/flavors.py'},
    'pybreaker': {'backends/transport.py'},
    'urllib3': {'backends/transport.py'},
    # Appliance HTTP goes through backends/transport.py; etcd3gw takes a
    # requests.Session that the etcd client module builds itself, so that
    # trust_env=False keeps REQUESTS_CA_BUNDLE from overriding ca_cert.
    'requests': {'backends/transport.py', 'multilb/store/etcd_client.py'},
}


def _imports():
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob('*.py')):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    names = [node.module or '']
                else:
                    continue
                for name in names:
                    yield path.relative_to(ROOT).as_posix(), name


def test_product_code_imports_only_octavia_lib_from_octavia():
    offenders = [(path, name) for path, name in _imports()
                 if name == 'octavia' or name.startswith('octavia.')]
    assert offenders == []


@pytest.mark.parametrize('library', sorted(HOMES))
def test_each_third_party_library_has_one_home(library):
    users = {path for path, name in _imports()
             if name == library or name.startswith(library + '.')}
    assert users <= HOMES[library], users - HOMES[library]


@pytest.mark.parametrize('package', ['backends', 'scheduler'])
def test_top_level_packages_come_from_this_tree(package):
    module = __import__(package)
    assert pathlib.Path(module.__file__).resolve().parent == ROOT / package


def test_every_backend_entry_point_implements_the_contract():
    eps = importlib.metadata.entry_points(group='multilb.backends')
    assert {ep.name for ep in eps} >= {'fake'}
    for ep in eps:
        backend_class = ep.load()
        assert issubclass(backend_class, base.ApplianceBackend), ep.name
        assert not getattr(backend_class, '__abstractmethods__', None), \
            (ep.name, backend_class.__abstractmethods__)
        for opt in backend_class.get_config_options():
            assert opt.help, (ep.name, opt.name)
        assert backend_class.SUPPORTED_LISTENER_PROTOCOLS, ep.name
