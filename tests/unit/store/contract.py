"""The behaviour every KVStore engine must have, as one reusable test class.

A test module subclasses :class:`KVStoreContract` and provides a ``kv``
fixture that yields an empty store; the same tests then run against sqlite
(tests/unit/store/test_sqlite.py) and etcd
(tests/functional/test_store_engines.py).
"""

from __future__ import annotations

import json
import multiprocessing
import threading

import pytest

from multilb import store
from multilb.store import base

LIMIT = 40
WORKERS = 4
ATTEMPTS_PER_WORKER = 25


def reserve_slot(kv: base.KVStore, key: str, limit: int) -> bool:
    """Take one slot of ``limit`` with a compare-and-swap loop.

    This is how multilb reserves capacity on a cluster.
    """
    while True:
        current = kv.get(key)
        used = int(current.value) if current else 0
        if used >= limit:
            return False
        version = current.version if current else None
        if kv.commit(checks={key: version}, puts={key: str(used + 1)}):
            return True


def _reserve_many(kv: base.KVStore, key: str, start: threading.Barrier,
                  results: list) -> None:
    start.wait(timeout=30)
    try:
        results.append(sum(reserve_slot(kv, key, LIMIT)
                           for _ in range(ATTEMPTS_PER_WORKER)))
    except BaseException as exc:  # report it to the test, in any process
        results.append(exc)


def _reserve_in_child(kv: base.KVStore, key: str, start, pipe) -> None:
    results: list = []
    _reserve_many(kv, key, start, results)
    result = results[0]
    pipe.send(result if isinstance(result, int) else repr(result))
    pipe.close()


def _receive(pipe, timeout: float = 120) -> object:
    if not pipe.poll(timeout):
        return 'no answer within %ss' % timeout
    try:
        return pipe.recv()
    except EOFError:
        return 'the child died without answering'


class KVStoreContract:
    """Tests shared by all engines; needs a ``kv`` fixture (empty store)."""

    # -- get / put -------------------------------------------------------

    def test_get_missing_returns_none(self, kv):
        assert kv.get('lb/missing') is None

    def test_put_then_get(self, kv):
        assert kv.commit(puts={'lb/abc': '{"cluster": "c1"}'})
        entry = kv.get('lb/abc')
        assert entry.key == 'lb/abc'
        assert entry.value == '{"cluster": "c1"}'
        assert isinstance(entry.version, int) and entry.version > 0

    def test_commit_writes_several_keys_and_deletes(self, kv):
        kv.commit(puts={'a/1': 'one', 'a/2': 'two'})
        assert kv.commit(puts={'a/3': 'three'}, deletes=['a/1'])
        assert [e.key for e in kv.get_prefix('a/')] == ['a/2', 'a/3']

    def test_empty_commit_succeeds(self, kv):
        assert kv.commit() is True
        assert kv.commit(checks={}, puts={}, deletes=[]) is True

    # -- versions --------------------------------------------------------

    def test_version_changes_on_every_write(self, kv):
        kv.commit(puts={'k': 'same'})
        first = kv.get('k').version
        kv.commit(puts={'k': 'same'})
        second = kv.get('k').version
        kv.commit(puts={'k': 'other'})
        assert len({first, second, kv.get('k').version}) == 3

    def test_versions_differ_between_commits(self, kv):
        kv.commit(puts={'a': '1'})
        kv.commit(puts={'b': '1'})
        assert kv.get('a').version != kv.get('b').version

    def test_version_not_reused_after_delete_and_create(self, kv):
        kv.commit(puts={'k': 'v'})
        old = kv.get('k').version
        kv.commit(deletes=['k'])
        kv.commit(puts={'k': 'v'})
        assert kv.get('k').version != old
        assert not kv.commit(checks={'k': old}, puts={'k': 'stale'})

    def test_get_prefix_versions_match_get(self, kv):
        kv.commit(puts={'p/a': '1'})
        kv.commit(puts={'p/b': '2'})
        assert kv.get_prefix('p/') == [kv.get('p/a'), kv.get('p/b')]

    # -- compare-and-swap ------------------------------------------------

    def test_current_version_check_applies_everything(self, kv):
        kv.commit(puts={'k': 'v1', 'gone': 'x'})
        version = kv.get('k').version
        assert kv.commit(checks={'k': version}, puts={'k': 'v2', 'n': 'new'},
                         deletes=['gone'])
        assert kv.get('k').value == 'v2'
        assert kv.get('n').value == 'new'
        assert kv.get('gone') is None

    def test_stale_version_applies_nothing(self, kv):
        kv.commit(puts={'k': 'v1', 'other': 'keep'})
        stale = kv.get('k').version
        kv.commit(puts={'k': 'v2'})
        before = kv.get_prefix('')
        assert kv.commit(checks={'k': stale},
                         puts={'k': 'v3', 'new': 'x'},
                         deletes=['other']) is False
        assert kv.get_prefix('') == before

    def test_one_failing_check_of_several_applies_nothing(self, kv):
        kv.commit(puts={'a': '1', 'b': '1'})
        good = kv.get('a').version
        assert not kv.commit(checks={'a': good, 'b': None}, puts={'a': '2'})
        assert kv.get('a').value == '1'

    def test_check_absent_fails_if_key_exists(self, kv):
        kv.commit(puts={'k': 'v'})
        assert kv.commit(checks={'k': None}, puts={'k': 'new'}) is False
        assert kv.get('k').value == 'v'

    def test_check_absent_succeeds_for_missing_key(self, kv):
        assert kv.commit(checks={'k': None}, puts={'k': 'v'}) is True
        assert kv.get('k').value == 'v'

    def test_check_absent_succeeds_after_delete(self, kv):
        kv.commit(puts={'k': 'v'})
        kv.commit(deletes=['k'])
        assert kv.commit(checks={'k': None}, puts={'k': 'again'})

    def test_version_check_fails_for_missing_key(self, kv):
        kv.commit(puts={'k': 'v'})
        version = kv.get('k').version
        kv.commit(deletes=['k'])
        assert kv.commit(checks={'k': version}, puts={'k': 'x'}) is False
        assert kv.get('k') is None

    def test_checks_without_writes_change_nothing(self, kv):
        kv.commit(puts={'k': 'v'})
        entry = kv.get('k')
        assert kv.commit(checks={'k': entry.version}) is True
        assert kv.commit(checks={'k': None}) is False
        assert kv.get('k') == entry

    def test_delete_of_absent_key_is_fine(self, kv):
        assert kv.commit(deletes=['nothing/here']) is True
        assert kv.commit(puts={'k': 'v'}, deletes=['nothing/here']) is True
        assert kv.get('k').value == 'v'

    # -- argument checks (same on every engine) ----------------------------

    @pytest.mark.parametrize('version', [0, -1, True, '3', 1.0])
    def test_invalid_check_version_is_refused(self, kv, version):
        with pytest.raises(ValueError):
            kv.commit(checks={'k': version}, puts={'k': 'v'})

    def test_key_both_put_and_deleted_is_refused(self, kv):
        with pytest.raises(ValueError):
            kv.commit(puts={'k': 'v'}, deletes=['k'])

    def test_non_text_value_is_refused(self, kv):
        with pytest.raises(TypeError):
            kv.commit(puts={'k': b'bytes'})
        with pytest.raises(TypeError):
            kv.commit(puts={'k': 1})

    def test_single_string_as_deletes_is_refused(self, kv):
        with pytest.raises(TypeError):
            kv.commit(deletes='lb/abc')

    @pytest.mark.parametrize('key', ['', 'lb/é', 'lb/\n', 'tab\t'])
    def test_invalid_keys_are_refused(self, kv, key):
        with pytest.raises(ValueError):
            kv.get(key)
        with pytest.raises(ValueError):
            kv.commit(puts={key: 'v'})

    def test_commit_size_limit(self, kv):
        limit = store.MAX_COMMIT_OPS
        puts = {'many/%04d' % i: str(i) for i in range(limit)}
        assert kv.commit(puts=puts)
        assert len(kv.get_prefix('many/')) == limit
        with pytest.raises(ValueError):
            kv.commit(puts={'x': '1'}, deletes=list(puts))

    # -- prefixes --------------------------------------------------------

    def test_get_prefix_is_sorted_and_exact(self, kv):
        kv.commit(puts={'a/z': '1', 'ab': '2', 'a/b/c': '3', 'a': '4',
                        'a/': '5', 'a0': '6', 'b/a': '7', 'a/a': '8'})
        assert [e.key for e in kv.get_prefix('a/')] == [
            'a/', 'a/a', 'a/b/c', 'a/z']

    def test_get_prefix_empty_returns_everything_sorted(self, kv):
        kv.commit(puts={'b': '1', 'a': '2', 'c/d': '3'})
        assert [e.key for e in kv.get_prefix('')] == ['a', 'b', 'c/d']

    def test_get_prefix_without_match(self, kv):
        kv.commit(puts={'a/1': 'x'})
        assert kv.get_prefix('b/') == []

    def test_get_prefix_with_percent_and_underscore(self, kv):
        kv.commit(puts={'p%/1': 'a', 'pX/1': 'b', 'p_/1': 'c', 'pY/1': 'd',
                        'p%x': 'e', 'p\\/1': 'f'})
        assert [e.key for e in kv.get_prefix('p%')] == ['p%/1', 'p%x']
        assert [e.key for e in kv.get_prefix('p_/')] == ['p_/1']
        assert [e.key for e in kv.get_prefix('p\\')] == ['p\\/1']

    def test_get_prefix_at_end_of_ascii(self, kv):
        kv.commit(puts={'z~': '1', 'z~~': '2', 'z}': '3'})
        assert [e.key for e in kv.get_prefix('z~')] == ['z~', 'z~~']

    # -- values ----------------------------------------------------------

    def test_values_round_trip(self, kv):
        document = {'name': 'lb-ünïcødé ✓ 负载均衡', 'emoji': '🚀',
                    'nested': {'list': [1, 2.5, None, True]}}
        values = {
            'v/json': json.dumps(document, ensure_ascii=False),
            'v/json-ascii': json.dumps(document),
            'v/empty': '',
            'v/spaces': '  padded  \n',
            'v/big': 'x' * 200_000,
            'v/quotes': '\'"%_\\',
        }
        for index in range(50):
            values['v/many/%02d' % index] = json.dumps({'index': index})
        assert kv.commit(puts=values)
        stored = {e.key: e.value for e in kv.get_prefix('v/')}
        assert stored == values
        assert json.loads(kv.get('v/json').value) == document

    # -- lifecycle -------------------------------------------------------

    def test_close_is_idempotent_and_store_reopens(self, kv):
        kv.commit(puts={'k': 'v'})
        kv.close()
        kv.close()
        assert kv.get('k').value == 'v'

    # -- concurrency -----------------------------------------------------

    def test_reserve_capacity_from_threads(self, kv):
        start = threading.Barrier(WORKERS)
        results: list = []
        threads = [threading.Thread(target=_reserve_many,
                                    args=(kv, 'cap/threads', start, results))
                   for _ in range(WORKERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert len(results) == WORKERS, results
        assert all(isinstance(r, int) for r in results), results
        assert sum(results) == LIMIT
        assert kv.get('cap/threads').value == str(LIMIT)

    def test_reserve_capacity_from_processes(self, kv):
        ctx = multiprocessing.get_context('fork')
        key = 'cap/processes'
        kv.get(key)  # the parent holds a connection when it forks
        start = ctx.Barrier(WORKERS)
        pipes, processes = [], []
        for _ in range(WORKERS):
            receiver, sender = ctx.Pipe(duplex=False)
            process = ctx.Process(target=_reserve_in_child,
                                  args=(kv, key, start, sender))
            process.start()
            sender.close()
            pipes.append(receiver)
            processes.append(process)
        try:
            results = [_receive(pipe) for pipe in pipes]
        finally:
            for process in processes:
                process.join(timeout=10)
                if process.is_alive():
                    process.kill()
                    process.join()
        assert all(isinstance(r, int) for r in results), results
        assert sum(results) == LIMIT
        assert kv.get(key).value == str(LIMIT)
        # The parent's own connection still works after the children's.
        assert kv.commit(puts={'after/fork': 'ok'})
