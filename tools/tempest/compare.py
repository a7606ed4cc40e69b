"""Per-test times of two tempest runs, side by side.

    <harness venv>/bin/python tools/tempest/compare.py \\
        RESULTS_DIR_UNDER_TEST RESULTS_DIR_REFERENCE [--factor 2 --slack 1]

Each argument is a ``results/<stamp>-<provider>/`` directory written by the
harness (tools/tempest/harness). Prints the outcome counts and whole run
times of both, then every test that passed in both and took more than
``factor`` × its reference time + ``slack`` seconds under test, slowest
first, and the ten largest ratios. Exit status 0 whatever the figures: this
measures, it does not judge. Needs python-subunit (the harness venv has it).
"""

import argparse
import collections
import os
import re
import sys

import subunit
import testtools

_ATTR = re.compile(r'\[[^\]]*\]$')


def load(results_dir):
    """``({test id: (status, seconds)}, timing text)`` of one run."""
    tests = {}

    def on_test(test):
        start, stop = test['timestamps']
        seconds = (stop - start).total_seconds() if start and stop else 0.0
        tests[_ATTR.sub('', test['id'])] = (test['status'], seconds)

    path = os.path.join(results_dir, 'tempest', 'results.subunit')
    with open(path, 'rb') as stream:
        case = subunit.ByteStreamToStreamResult(stream,
                                                non_subunit_name='stdout')
        result = testtools.StreamToDict(on_test)
        result.startTestRun()
        try:
            case.run(result)
        finally:
            result.stopTestRun()
    timing = ''
    timing_path = os.path.join(results_dir, 'timing.txt')
    if os.path.exists(timing_path):
        with open(timing_path) as f:
            timing = ' '.join(f.read().split())
    return tests, timing


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('under_test')
    parser.add_argument('reference')
    parser.add_argument('--factor', type=float, default=2.0)
    parser.add_argument('--slack', type=float, default=1.0)
    args = parser.parse_args(argv)

    runs = {}
    for label, path in (('under test', args.under_test),
                        ('reference', args.reference)):
        tests, timing = load(path)
        runs[label] = tests
        counts = collections.Counter(s for s, _t in tests.values())
        busy = sum(t for s, t in tests.values())
        print('%-10s %s' % (label, os.path.basename(path.rstrip('/'))))
        print('           %s' % ', '.join('%s %d' % kv
                                          for kv in sorted(counts.items())))
        print('           sum of test times %.0f s; %s' % (busy, timing))

    mine, ref = runs['under test'], runs['reference']
    both = sorted(t for t in mine if t in ref
                  and mine[t][0] == ref[t][0] == 'success')
    slow = [(mine[t][1], ref[t][1], t) for t in both
            if mine[t][1] > args.factor * ref[t][1] + args.slack]
    print('\n%d tests passed in both; %d took more than %.1fx + %.1f s of '
          'their reference time:' % (
              len(both), len(slow), args.factor, args.slack))
    for took, base, tid in sorted(slow, reverse=True):
        print('  %7.1f s vs %6.1f s  %s' % (took, base, tid))
    ratios = sorted(((mine[t][1] / max(ref[t][1], 0.001), mine[t][1],
                      ref[t][1], t) for t in both), reverse=True)[:10]
    print('\nlargest ratios:')
    for ratio, took, base, tid in ratios:
        print('  %5.2fx  %7.1f s vs %6.1f s  %s' % (ratio, took, base, tid))
    return 0


if __name__ == '__main__':
    sys.exit(main())
