"""Fixtures of the backend contract suite: each backend is one parameter.

``device`` (one per backend, shared by the tests of the module) is the
started appliance (devices.py); ``make_backend(**options)`` builds a
started backend instance of a new cluster over it, as the agent does
(the backend's option defaults, ``check_config``, a ``ClusterBreaker``
set before ``start``), emptying the appliance first; ``backend`` is one
with the device's options. A backend whose module does not exist yet is
skipped (an existing module that fails to import fails the tests).
"""

import importlib.util
import itertools

import pytest

from backends import transport
from multilb.conf import clusters as cluster_conf
from tests.compliance.backends import devices

NAMES = sorted(devices.DEVICES)
_clusters = itertools.count()


def _present(name):
    module = devices.CLASSES[name][0]
    try:
        found = importlib.util.find_spec(module)
    except ModuleNotFoundError:      # its package is missing too
        found = None
    if found is None:
        pytest.skip('%s does not exist (yet)' % module)


@pytest.fixture(scope='module', params=NAMES)
def device(request, tmp_path_factory):
    _present(request.param)
    handle = devices.DEVICES[request.param](
        tmp_path_factory.mktemp(request.param))
    handle.start()
    yield handle
    handle.stop()


@pytest.fixture(params=NAMES)
def backend_class(request):
    """The class alone (API side: no instance, no appliance)."""
    _present(request.param)
    return devices.backend_class(request.param)


def options_of(backend_class, **values):
    found = {opt.dest: opt.default
             for opt in backend_class.get_config_options()}
    found.update(values)
    return found


@pytest.fixture
def make_backend(device):
    started = []
    name = 'compliance-%d' % next(_clusters)
    device.reset(name)

    def make(**options):
        cls = device.backend_class
        values = options_of(cls, **dict(device.options(), **options))
        cls.check_config(values)
        config = cluster_conf.ClusterConfig(
            name=name, backend=device.name, max_loadbalancers=0,
            description='', backend_class=cls, options=values)
        instance = cls(config)
        instance.breaker = transport.ClusterBreaker(name)
        instance.start()
        started.append(instance)
        return instance

    yield make
    for instance in started:
        instance.stop()


@pytest.fixture
def backend(make_backend):
    return make_backend()
