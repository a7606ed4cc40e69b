"""What an update intent records, so the agent waits for Octavia's commit.

The driver records an update inside Octavia's API transaction, before the
new values are committed; ``expect`` (the fields the update sets) makes the
worker wait until ``get_loadbalancer`` shows them. Regression tests for:
cleared fields (None) are waited for; a member batch that only changes
existing members is waited for; TLS material (``*_data``) is never stored.
"""


from octavia_lib.api.drivers import data_models as dm

from tests.unit import fixtures as fx
from tests.unit.fixtures import L_HTTP, L_TLS, LB, M1, M2, POOL_WEB
from tests.unit.fixtures import reported


CA_PEM = '-----BEGIN CERTIFICATE-----\nCLIENT-CA-BODY\n'
CRL_PEM = '-----BEGIN X509 CRL-----\nCRL-BODY\n'


def test_cleared_default_pool_waits_for_octavia_commit(env):
    env.create_active()
    env.driver.listener_update(
        fx.listener(L_HTTP, default_pool_id=POOL_WEB),
        dm.Listener(listener_id=L_HTTP, default_pool_id=None))

    env.process()   # Octavia has not committed: still default pool-web

    assert env.octavia.statuses == []
    assert len(env.pending()) == 1

    env.committed()['listeners'][0]['default_pool_id'] = None
    env.process()
    assert reported(env)[L_HTTP] == fx.ACTIVE
    assert env.appliance()['listeners'][0]['default_pool_id'] is None


def test_cleared_field_is_in_the_expectation(env):
    env.create_active()
    env.driver.loadbalancer_update(
        fx.full_lb(), dm.LoadBalancer(loadbalancer_id=LB, name='renamed',
                                      description=None))
    [intent] = env.pending()
    assert intent['expect'] == {'name': 'renamed', 'description': None}


def test_batch_changing_only_existing_members_waits_for_commit(env):
    env.create_active()
    env.driver.member_batch_update(POOL_WEB, [
        dm.Member(member_id=M1, pool_id=POOL_WEB, address='192.0.2.10',
                  protocol_port=8080, weight=3),
        dm.Member(member_id=M2, pool_id=POOL_WEB, address='192.0.2.11',
                  protocol_port=8080)])

    env.process()   # Octavia has not committed: M1 still has weight 1

    assert env.octavia.statuses == []
    assert len(env.pending()) == 1


def test_ca_and_crl_pem_are_never_stored(env):
    env.create_active()
    env.driver.listener_update(fx.listener(L_TLS), dm.Listener(
        listener_id=L_TLS, client_ca_tls_container_ref='ref-ca',
        client_ca_tls_container_data=CA_PEM,
        client_crl_container_ref='ref-crl',
        client_crl_container_data=CRL_PEM))
    env.driver.pool_update(fx.pool(POOL_WEB), dm.Pool(
        pool_id=POOL_WEB, ca_tls_container_ref='ref-ca',
        ca_tls_container_data=CA_PEM, crl_container_ref='ref-crl',
        crl_container_data=CRL_PEM))

    text = fx.all_stored_text(env.state)
    assert 'ref-ca' in text                # the refs are what to wait for
    assert 'CLIENT-CA-BODY' not in text    # actual: stored in 'expect'
    assert 'CRL-BODY' not in text
