"""Session-wide real fleet (see fleet.py) and member lab shared by the
functional tests."""

import pytest

from tests.functional import fleet as fleet_mod
from tools.localstack import netns


@pytest.fixture(scope='session')
def fleet(tmp_path_factory):
    workdir = tmp_path_factory.mktemp('fleet', numbered=True)
    started = fleet_mod.Fleet(
        workdir, {'alpha': 100, 'beta': 100},
        cluster_options={'alpha': {'tags': 'gold, ssd'},
                         'beta': {'tags': 'silver'}}).start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope='session')
def member_lab():
    """The network namespace where member servers live (netns.MemberLab):
    one per session, created on first use, removed at the end.  Fails
    with what is missing (root, iproute2) where a lab cannot be made."""
    lab = netns.MemberLab()
    try:
        lab.start()
    except netns.LabError as exc:
        pytest.fail('no member lab: %s' % exc, pytrace=False)
    try:
        yield lab
    finally:
        lab.stop()


@pytest.fixture
def conn(fleet):
    return fleet.connection()


@pytest.fixture(autouse=True)
def _no_faults(request):
    if 'fleet' in request.fixturenames:
        fleet = request.getfixturevalue('fleet')
        fleet.set_faults()
        yield
        fleet.set_faults()
    else:
        yield
