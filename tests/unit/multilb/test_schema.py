"""The state store's key layout version (multilb/schema.py): recorded
once, checked, migrated by ``store upgrade``. A real sqlite store."""

import json

import pytest

from multilb import exceptions
from multilb import keys
from multilb import schema
from multilb import store


@pytest.fixture
def kv(tmp_path):
    return store.get_kv_store('sqlite:///%s' % (tmp_path / 'state.db'))


def test_recorded_once_on_a_store_without_one(kv):
    assert schema.read(kv) is None
    assert schema.record(kv) == keys.SCHEMA_VERSION
    first = schema.read(kv)
    assert first['version'] == keys.SCHEMA_VERSION
    assert schema.record(kv) == keys.SCHEMA_VERSION
    assert schema.read(kv) == first      # not rewritten


@pytest.mark.parametrize('version, words', [
    (keys.SCHEMA_VERSION + 1, 'newer than this multilb reads'),
    (0, 'older than this multilb reads (%d): stop the agents of the older '
        'multilb and run multilb-manage store upgrade' % keys.SCHEMA_VERSION),
    ('one', "version 'one', older than"),
])
def test_another_version_is_refused_naming_what_to_do(kv, version, words):
    kv.commit(puts={keys.schema_key(): json.dumps({'version': version})})
    with pytest.raises(exceptions.StoreSchemaError) as raised:
        schema.record(kv)
    assert words in str(raised.value)
    assert schema.read(kv)['version'] == version     # left as it was


def test_upgrade_runs_each_migration_once_in_order(kv, monkeypatch):
    done = []
    monkeypatch.setattr(keys, 'SCHEMA_VERSION', 3)
    monkeypatch.setattr(schema, 'MIGRATIONS', {
        1: lambda kv: done.append(1), 2: lambda kv: done.append(2)})
    kv.commit(puts={keys.schema_key(): json.dumps({'version': 1})})
    assert schema.upgrade(kv) == (1, ['1 -> 2', '2 -> 3'])
    assert done == [1, 2]
    assert schema.read(kv)['version'] == 3
    assert schema.upgrade(kv) == (3, [])
    assert done == [1, 2]


def test_upgrade_of_a_store_without_a_version_records_it(kv):
    assert schema.upgrade(kv) == (None, [])
    assert schema.read(kv)['version'] == keys.SCHEMA_VERSION


def test_upgrade_refuses_a_newer_store(kv):
    kv.commit(puts={keys.schema_key(): json.dumps(
        {'version': keys.SCHEMA_VERSION + 1})})
    with pytest.raises(exceptions.StoreSchemaError):
        schema.upgrade(kv)
    assert schema.read(kv)['version'] == keys.SCHEMA_VERSION + 1
