"""multilb/octavia.py: what a failed status update means for delivery.

The real ``DriverLibrary.update_loadbalancer_status`` runs; only its
socket call (``_send``) is replaced, raising what the real one raises.
"""

import pytest
from octavia_lib.api.drivers import driver_lib
from octavia_lib.api.drivers import exceptions as driver_exc

from multilb import octavia as octavia_mod

STATUS = {'loadbalancers': [{'id': 'lb-1', 'provisioning_status': 'ACTIVE'}]}


def client_raising(monkeypatch, exc):
    library = object.__new__(driver_lib.DriverLibrary)
    library.status_socket = '/nonexistent/status.sock'

    def send(socket_path, data):
        raise exc
    monkeypatch.setattr(library, '_send', send)
    return octavia_mod.OctaviaClient(library=library)


def test_no_answer_in_time_is_busy_not_merely_unreachable(monkeypatch):
    client = client_raising(monkeypatch, driver_exc.DriverAgentTimeout(
        fault_string='The driver agent did not respond in 30 seconds.'))
    with pytest.raises(octavia_mod.OctaviaBusy, match='did not respond'):
        client.update_status(STATUS)


@pytest.mark.parametrize('exc', [
    FileNotFoundError(2, 'No such file or directory'),
    BlockingIOError(11, 'Resource temporarily unavailable'),
    ConnectionRefusedError(111, 'Connection refused')])
def test_nothing_taken_is_unreachable(monkeypatch, exc):
    client = client_raising(monkeypatch, exc)
    with pytest.raises(octavia_mod.OctaviaUnavailable) as raised:
        client.update_status(STATUS)
    assert not isinstance(raised.value, octavia_mod.OctaviaBusy)
