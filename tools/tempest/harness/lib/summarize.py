"""summarize.py SUBUNIT_FILE LISTED_TESTS_FILE OUT_PREFIX [key=value ...]

Reads the subunit v2 stream of a tempest run and writes
  OUT_PREFIX.txt   human readable summary
  OUT_PREFIX.json  machine readable summary
Counts: passed / failed / skipped (+ xfail / uxsuccess), plus tests that
were selected by the regex but never reported (e.g. their class setUp
failed), and the list of failed test ids with the last line of the error.
"""
import collections
import json
import re
import sys

import subunit
import testtools

subunit_path, listed_path, out_prefix = sys.argv[1:4]
meta = dict(a.split('=', 1) for a in sys.argv[4:])

ATTR = re.compile(r'\[[^\]]*\]$')


def strip(tid):
    return ATTR.sub('', tid)


results = {}


def on_test(test):
    results[test['id']] = test


stream = open(subunit_path, 'rb')
case = subunit.ByteStreamToStreamResult(stream, non_subunit_name='stdout')
result = testtools.StreamToDict(on_test)
result.startTestRun()
try:
    case.run(result)
finally:
    result.stopTestRun()

listed = []
try:
    with open(listed_path) as f:
        listed = [strip(line.strip()) for line in f
                  if line.strip().startswith(('octavia_tempest_plugin',
                                              'tempest'))]
except FileNotFoundError:
    pass

by_status = collections.defaultdict(list)
for tid, t in results.items():
    by_status[t['status']].append(tid)


def last_error_line(t):
    for name in ('traceback', 'reason'):
        d = t['details'].get(name)
        if d is not None:
            text = b''.join(d.iter_bytes()).decode('utf-8', 'replace')
            lines = [ln for ln in text.strip().splitlines() if ln.strip()]
            if lines:
                return lines[-1].strip()[:400]
    return ''


skip_reasons = collections.Counter()
for tid in by_status.get('skip', []):
    skip_reasons[last_error_line(results[tid]) or '(no reason)'] += 1

reported = {strip(t) for t in results}
failed = sorted(by_status.get('fail', []) + by_status.get('uxsuccess', []))
class_level = [f for f in failed
               if f.startswith(('setUpClass', 'tearDownClass'))]

# Per-test view: tests of a class whose setUpClass was skipped count as
# skipped; tests of a class whose setUpClass failed count as "blocked".
CLS = re.compile(r'^(setUpClass|tearDownClass) \((.*)\)$')
class_status = {}
for tid, t in results.items():
    m = CLS.match(tid)
    if m and m.group(1) == 'setUpClass':
        class_status[m.group(2)] = t['status']
per_test = collections.Counter()
blocked, not_reported = [], []
for tid in listed:
    if tid in reported:
        per_test[{'success': 'passed', 'skip': 'skipped'}.get(
            [t for k, t in results.items() if strip(k) == tid][0]['status'],
            'failed')] += 1
        continue
    cls = tid.rsplit('.', 1)[0]
    st = class_status.get(cls)
    if st == 'skip':
        per_test['skipped'] += 1
    elif st == 'fail':
        per_test['blocked'] += 1
        blocked.append(tid)
    else:
        per_test['not_reported'] += 1
        not_reported.append(tid)

summary = {
    'meta': meta,
    'selected': len(listed),
    'reported': len(results),
    'passed': len(by_status.get('success', [])),
    'failed': len(failed),
    'skipped': len(by_status.get('skip', [])),
    'xfail': len(by_status.get('xfail', [])),
    'class_level_failures': len(class_level),
    'not_reported': len(not_reported),
    'per_test': {k: per_test.get(k, 0) for k in
                 ('passed', 'failed', 'skipped', 'blocked', 'not_reported')},
    'blocked_by_class_setup_failure': len(blocked),
    'failed_tests': {f: last_error_line(results[f]) for f in failed},
    'not_reported_tests': not_reported,
    'blocked_tests': blocked,
    'skip_reasons': dict(skip_reasons.most_common()),
}
with open(out_prefix + '.json', 'w') as f:
    json.dump(summary, f, indent=2, sort_keys=True)

with open(out_prefix + '.txt', 'w') as f:
    w = f.write
    for k, v in meta.items():
        w('%-22s %s\n' % (k + ':', v))
    w('\n')
    pt = summary['per_test']
    w('== per selected test (%d selected by the regex) ==\n'
      % summary['selected'])
    w('passed:   %d\n' % pt['passed'])
    w('failed:   %d\n' % pt['failed'])
    w('skipped:  %d   (incl. tests of classes skipped as a whole)\n'
      % pt['skipped'])
    w('blocked:  %d   (never ran: their class setUpClass failed)\n'
      % pt['blocked'])
    w('missing:  %d   (selected, never reported, class not failed/skipped)\n'
      % pt['not_reported'])
    w('\n== raw tempest/subunit results (%d, class-level entries included) =='
      '\n' % summary['reported'])
    w('PASSED:   %d\n' % summary['passed'])
    w('FAILED:   %d  (of which class-level setUpClass/tearDownClass: %d)\n'
      % (summary['failed'], summary['class_level_failures']))
    w('SKIPPED:  %d\n' % summary['skipped'])
    if summary['xfail']:
        w('expected failures: %d\n' % summary['xfail'])
    w('\n== failed test ids ==\n')
    for tid in failed:
        w('%s\n    -> %s\n' % (tid, summary['failed_tests'][tid]))
    w('\n== skip reasons ==\n')
    for reason, n in skip_reasons.most_common():
        w('%4d  %s\n' % (n, reason))
    if not_reported:
        w('\n== selected but never reported (missing) ==\n')
        for tid in not_reported:
            w('%s\n' % tid)
    if blocked:
        w('\n== blocked by a failed setUpClass ==\n')
        for tid in blocked:
            w('%s\n' % tid)
with open(out_prefix + '-failed-ids.txt', 'w') as f:
    f.write(''.join('%s\n' % t for t in failed))
text = open(out_prefix + '.txt').read()
print(text.split('\n== skip reasons ==')[0])
