"""Group commit of load balancer changes to one Caddy node (batch.py)."""

import threading
import time

import pytest

from backends.caddy import batch
from backends import exceptions


class FakeNode:
    """The two config objects a batch writes, with Caddy's all-or-nothing
    load: a write containing a server marked ``bad`` is rejected whole."""

    def __init__(self, delay=0.0):
        self.servers, self.certificates = {}, []
        self.writes = []
        self.delay = delay
        self.down = False

    def _check(self):
        if self.down:
            raise exceptions.BackendUnavailable('node down')

    def get_servers(self):
        self._check()
        return dict(self.servers)

    def get_certificates(self):
        self._check()
        return list(self.certificates)

    def replace_servers(self, servers):
        time.sleep(self.delay)
        if any(s.get('bad') for s in servers.values()):
            raise exceptions.BackendRejected('loading new config: bad')
        self.writes.append(('servers', sorted(servers)))
        self.servers = dict(servers)

    def replace_certificates(self, entries):
        self.writes.append(('certificates',
                            sorted(e['@id'] for e in entries)))
        self.certificates = list(entries)


def server(lb, n=1, **extra):
    return {'%s--l%d' % (lb, n): dict({'listen': [':%d' % n]}, **extra)}


def test_one_change_is_at_most_three_writes_in_order():
    node = FakeNode()
    node.servers = server('other')
    node.certificates = [{'@id': 'lb1--pem-old'}]
    batcher = batch.NodeBatcher(node)
    batcher.apply('lb1', server('lb1'), {'lb1--pem-new': {
        '@id': 'lb1--pem-new'}})
    assert node.writes == [
        ('certificates', ['lb1--pem-new', 'lb1--pem-old']),   # add first
        ('servers', ['lb1--l1', 'other--l1']),
        ('certificates', ['lb1--pem-new'])]                   # drop after
    # the same change again: the node already matches, nothing is written
    batcher.apply('lb1', server('lb1'), {'lb1--pem-new': {
        '@id': 'lb1--pem-new'}})
    assert len(node.writes) == 3
    # a delete keeps the other load balancer as it was
    batcher.apply('lb1', {}, {})
    assert node.servers == server('other') and node.certificates == []


def test_concurrent_changes_share_writes():
    node = FakeNode(delay=0.05)
    batcher = batch.NodeBatcher(node)
    threads = [threading.Thread(target=batcher.apply,
                                args=('lb%d' % n, server('lb%d' % n), {}))
               for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(node.servers) == sorted('lb%d--l1' % n for n in range(12))
    assert batcher.writes == len(node.writes) < 12
    assert batcher.batches < 12


def test_a_bad_change_fails_alone():
    node = FakeNode(delay=0.05)
    batcher = batch.NodeBatcher(node)
    errors = {}

    def apply(lb, **extra):
        try:
            batcher.apply(lb, server(lb, **extra), {})
        except exceptions.BackendError as exc:
            errors[lb] = exc
    threads = [threading.Thread(target=apply, args=('lb%d' % n,))
               for n in range(5)]
    threads.append(threading.Thread(target=apply, args=('evil',),
                                    kwargs={'bad': True}))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(errors) == {'evil'}
    assert isinstance(errors['evil'], exceptions.BackendRejected)
    assert sorted(node.servers) == sorted('lb%d--l1' % n for n in range(5))


def test_an_unreachable_node_fails_the_whole_batch():
    node = FakeNode()
    node.down = True
    batcher = batch.NodeBatcher(node)
    with pytest.raises(exceptions.BackendUnavailable):
        batcher.apply('lb1', server('lb1'), {})
    node.down = False
    batcher.apply('lb1', server('lb1'), {})     # the lead was handed back
    assert sorted(node.servers) == ['lb1--l1']
