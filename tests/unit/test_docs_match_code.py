"""The hand-written documentation against the code it describes.

The option and ``multilb-manage`` reference pages are generated from the
code (``tox -e docs``); the guides are written by hand and drift. These
tests read the guides (``doc/source``, ``README.rst``,
``benchmarks/README.md``) and check what they state against the code:

* every option a page names as ``[section] name``, sets in a ``[section]``
  of an ini example, or lists as a definition-list term under a
  ``[section]`` heading exists in that section of
  :func:`multilb.conf.opts.list_opts`, with a value of its type;
* every default a page states for an option ("``name`` (default X)",
  "``name`` seconds (default X)", "``name`` (X s)", or "default X" / "at
  least X" in the definition of a term) is the option's default / minimum;
* every option of ``[multilb]``, ``[multilb_scheduler]``, the cluster
  sections, the VIP pool sections and the shipped backends is named in
  ``configuration.rst``;
* every ``multilb-manage`` command line is one of
  :func:`multilb.cmd.manage.build_parser`, with options it has, and the
  complete examples parse;
* every repository path a page names exists;
* no page, docstring or comment points at a file outside the repository.
"""

from __future__ import annotations

import argparse
import glob
import os
import pathlib
import re
import shlex

import pytest

from backends.caddy import backend as caddy_backend
from backends.f5 import backend as f5_backend
from backends.fake import backend as fake_backend
from multilb.cmd import manage
from multilb.conf import clusters as cluster_conf
from multilb.conf import core
from multilb.conf import opts as conf_opts
from multilb.conf import scheduler as scheduler_conf
from multilb.conf import vip_pools as pool_conf

REPO = pathlib.Path(__file__).resolve().parents[2]
DOC = REPO / 'doc' / 'source'
PAGES = sorted(
    [p for p in DOC.rglob('*.rst') if '_ext' not in p.parts]
    + [REPO / 'README.rst', REPO / 'benchmarks' / 'README.md'])
CONFIGURATION = DOC / 'configuration.rst'

# -- the code's side ---------------------------------------------------------

OPTIONS = {group: {opt.name: opt for opt in opts}
           for group, opts in conf_opts.list_opts()}
ALL_NAMES = {name for opts in OPTIONS.values() for name in opts}


def group_of(section):
    """The list_opts() group documenting ``[section]``, or None when the
    section is not multilb's (Octavia's own, oslo.log's)."""
    if section.startswith(cluster_conf.SECTION_PREFIX):
        return cluster_conf.SECTION_PREFIX + 'example'
    if section.startswith(pool_conf.SECTION_PREFIX):
        return pool_conf.SECTION_PREFIX + 'example'
    return section if section in OPTIONS else None


def _subparsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return {}


PARSER = manage.build_parser()
COMMANDS = {obj: _subparsers(sub) for obj, sub in
            _subparsers(PARSER).items()}
GLOBAL_FLAGS = {s for a in PARSER._actions for s in a.option_strings}
GLOBAL_WITH_VALUE = {s for a in PARSER._actions for s in a.option_strings
                     if a.nargs != 0}


def flags_of(parser):
    return {s for a in parser._actions for s in a.option_strings}


# -- reading the pages -------------------------------------------------------

def rel(path):
    return str(pathlib.Path(path).relative_to(REPO))


def squash(text):
    return ' '.join(text.split())


def literals(path, text):
    """Inline literals: ``x`` in reST, `x` in Markdown (whitespace
    squashed: a literal may wrap)."""
    if str(path).endswith('.md'):
        found = re.findall(r'(?<!`)`([^`\n][^`]*?)`(?!`)', text)
    else:
        found = re.findall(r'``(.+?)``', text, re.S)
    return [squash(f) for f in found]


def literal_blocks(path, text):
    """``(is_ini, [lines])`` of every literal block: reST ``::`` and
    ``.. code-block::`` blocks, Markdown fences."""
    lines = text.split('\n')
    blocks = []
    if str(path).endswith('.md'):
        fence = None
        for line in lines:
            if line.startswith('```'):
                if fence is None:
                    fence = (line[3:].strip() == 'ini', [])
                else:
                    blocks.append(fence)
                    fence = None
            elif fence is not None:
                fence[1].append(line)
        return blocks
    i = 0
    while i < len(lines):
        line = lines[i]
        opener = re.match(r'^(\s*)\.\. code-block::\s*(\S*)', line)
        if opener or line.rstrip().endswith('::') and not re.match(
                r'^\s*\.\. ', line):
            indent = len(line) - len(line.lstrip())
            is_ini = bool(opener) and opener.group(2) == 'ini'
            body = []
            i += 1
            while i < len(lines) and (not lines[i].strip() or (
                    len(lines[i]) - len(lines[i].lstrip()) > indent)):
                body.append(lines[i])
                i += 1
            if opener:
                body = [b for b in body if not re.match(r'^\s+:\w+:', b)]
            blocks.append((is_ini, body))
            continue
        i += 1
    return blocks


def headings(lines):
    """``{line index: (level, title)}`` of reST section titles."""
    styles, found = [], {}
    for i in range(1, len(lines)):
        under = lines[i]
        title = lines[i - 1].strip()
        if not title or not re.match(r'^([=\-~^"+*#`])\1{2,}\s*$', under):
            continue
        if len(under.rstrip()) < len(title) or re.match(
                r'^([=\-~^"+*#`])\1{2,}\s*$', lines[i - 1]):
            continue
        over = i >= 2 and lines[i - 2].strip() == under.strip()
        style = (under[0], over)
        if style not in styles:
            styles.append(style)
        found[i - 1] = (styles.index(style), title)
    return found


def definitions(text):
    """``(section, [names], body)`` of every definition-list term made of
    option literals under a heading that names a ``[section]``."""
    lines = text.split('\n')
    titles = headings(lines)
    context = []          # [(level, section or None)]
    found = []
    for i, line in enumerate(lines):
        if i in titles:
            level, title = titles[i]
            context = [c for c in context if c[0] < level]
            named = re.search(r'``\[([^\]]+)\]``', title)
            context.append((level, named.group(1) if named else None))
            continue
        term = re.match(r'^``[a-z0-9_]+``(?:,\s*``[a-z0-9_]+``)*\s*$',
                        line)
        section = next((s for _l, s in reversed(context) if s), None)
        if not term or section is None or i + 1 >= len(lines):
            continue
        body = []
        for follow in lines[i + 1:]:
            if follow.strip() and not follow.startswith(' '):
                break
            body.append(follow)
        if body and body[0].strip():
            found.append((section, re.findall(r'``([a-z0-9_]+)``', line),
                          squash(' '.join(body))))
    return found


# -- values ------------------------------------------------------------------

_VALUE = (r'(?P<value>-?\d+(?:\.\d+)?(?![\d.]*\w)|``[^`]+``|none|empty'
          r'|one day)')


def parse_value(text):
    """A value as a page writes it -> Python, or ValueError."""
    if text.startswith('``'):
        text = text[2:-2]
        if text in ('true', 'false'):
            return text == 'true'
        return text
    if text in ('none', 'empty'):
        return None
    if text == 'one day':
        return 86400.0
    return float(text)


def same_default(opt, written):
    """An option several backends share (``endpoints``...) has each
    backend's default: any of them is a true claim."""
    shared = getattr(opt, 'backend_defaults', None)
    if shared and len(shared) > 1:
        return any(_same_default(default, written)
                   for default in shared.values())
    return _same_default(opt.default, written)


def _same_default(default, written):
    if written is None:
        return default in (None, '', [])
    if isinstance(default, list):
        return [squash(v) for v in str(written).split(',')] == default
    if isinstance(default, bool) or isinstance(written, bool):
        return default is written
    if isinstance(default, (int, float)) and not isinstance(written, str):
        return float(default) == written
    return str(default) == str(written)


def default_claims(text):
    """``(name, section or None, value text)``: "``name`` (default X)",
    "``name`` seconds (default X)", "``name`` (X s)", "``name``
    (probe period, X s)", anywhere on a page."""
    flat = squash(text)
    pattern = re.compile(
        r'``(?:\[(?P<section>[^\]`]+)\] )?(?P<name>[a-z][a-z0-9_]*)``'
        r'(?P<gap>[^()`:;.]{0,40}?)\s*\('
        r'(?:(?P<default>default:? )' + _VALUE +
        r'|(?:[^()`]*, )?' + _VALUE.replace('value', 'bare') +
        r'(?: s)?\))')
    for m in pattern.finditer(flat):
        value = m.group('value') or m.group('bare')
        if not m.group('default') and m.group('gap').strip() not in (
                '', 'seconds', 's'):
            # "``name`` some words (X)": only the tables and the
            # "(probe period, X s)" forms say a bare value is the default
            if not re.fullmatch(r'[a-z ]{3,40}', m.group('gap').strip()):
                continue
        yield m.group('name'), m.group('section'), value


def _check_claim(where, name, section, value, problems):
    if section is not None and group_of(section) is not None:
        opt = OPTIONS[group_of(section)].get(name)
    else:
        opt = next((o[name] for o in OPTIONS.values() if name in o), None)
    if opt is None:
        return
    try:
        written = parse_value(value)
    except ValueError:
        return
    if not same_default(opt, written):
        problems.append('%s says the default of %s is %s; the code has %r'
                        % (rel(where), name, value, opt.default))


# -- option names, sections, defaults ----------------------------------------

def section_name_problems(path, text):
    """``[section] name``, in a literal or in the text (also across a line
    break): ``name`` must be an option of that section."""
    problems = []
    for literal in literals(path, text) + [squash(text)]:
        for m in re.finditer(r'\[([a-z_]+(?::[^\]\s`]+)?)\] ([a-z][a-z0-9_]*)'
                             r'(?![a-z0-9_<\-/])', literal):
            section, name = m.groups()
            group = group_of(section)
            if group is None or name in ('section', 'sections'):
                continue
            if name not in OPTIONS[group]:
                problems.append('%s: [%s] %s is not an option of that '
                                'section' % (rel(path), section, name))
    return problems


def _ini_lines(path, text):
    """``(section, name, value)`` of every ``name = value`` line under a
    ``[section]`` line of a literal block."""
    for is_ini, block in literal_blocks(path, text):
        section = None
        for line in block:
            stripped = line.strip()
            head = re.match(r'^\[([^\]]+)\]$', stripped)
            if head:
                section, is_ini = head.group(1), True
                continue
            pair = re.match(r'^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$',
                            stripped)
            if is_ini and section is not None and pair:
                yield (section,) + pair.groups()


def ini_problems(path, text):
    """Ini examples: every option set in a multilb section exists there,
    and its value (unless a placeholder) is one of its type."""
    problems = []
    for section, name, value in _ini_lines(path, text):
        group = group_of(section)
        if group is None:
            continue
        opt = OPTIONS[group].get(name)
        if opt is None:
            problems.append('%s: ini example sets %s in [%s]: no such '
                            'option there' % (rel(path), name, section))
        elif value and not re.search(r'<|\.\.\.|\bX\b', value):
            try:
                opt.type(value)
            except ValueError as exc:
                problems.append('%s: ini example [%s] %s = %s: %s' % (
                    rel(path), section, name, value, exc))
    return problems


def definition_problems(path, text):
    """Definition-list terms under a ``[section]`` heading: options of that
    section, with the default and minimum their definition states."""
    problems = []
    for section, names, body in definitions(text):
        group = group_of(section)
        for name in names if group is not None else ():
            opt = OPTIONS[group].get(name)
            if opt is None:
                problems.append('%s: [%s] %s is documented but is not an '
                                'option of that section' % (rel(path),
                                                            section, name))
                continue
            claim = re.search(r'\b[Dd]efault:? ' + _VALUE, body)
            if claim:
                _check_claim(path, name, section, claim.group('value'),
                             problems)
            least = re.search(r'\bat least (-?\d+(?:\.\d+)?)', body)
            minimum = getattr(opt.type, 'min', None)
            if least and minimum != float(least.group(1)):
                problems.append('%s: [%s] %s: at least %s; the code\'s '
                                'minimum is %r' % (rel(path), section, name,
                                                   least.group(1), minimum))
    return problems


def option_problems(path, text):
    problems = (section_name_problems(path, text) + ini_problems(path, text)
                + definition_problems(path, text))
    # "``name`` (default X)" anywhere
    for name, section, value in default_claims(text):
        _check_claim(path, name, section, value, problems)
    return sorted(set(problems))


@pytest.mark.parametrize('path', PAGES, ids=rel)
def test_options_named_by_the_docs_exist_with_their_defaults(path):
    assert option_problems(path, path.read_text()) == []


def test_configuration_guide_names_every_shipped_option():
    text = CONFIGURATION.read_text()
    named = set(re.findall(r'``([a-z][a-z0-9_]*)``', text))
    shipped = (core.opts + scheduler_conf.opts + cluster_conf.opts
               + pool_conf.opts
               + list(caddy_backend.CaddyBackend.get_config_options())
               + list(fake_backend.FakeBackend.get_config_options())
               + list(f5_backend.F5Backend.get_config_options()))
    missing = sorted(opt.name for opt in shipped if opt.name not in named)
    assert missing == [], 'configuration.rst does not name: %s' % missing


def test_configuration_guide_documents_options_under_sections():
    # The rule above must see the guide's definition lists at all.
    found = definitions(CONFIGURATION.read_text())
    sections = {group_of(section) for section, _names, _body in found}
    assert {'multilb', 'multilb_scheduler', 'cluster_defaults',
            'vip_pool:example'} <= sections
    assert sum(len(names) for _s, names, _b in found) >= len(core.opts)


# -- multilb-manage ----------------------------------------------------------

def command_lines(path, text):
    """Every ``multilb-manage ...`` written on a page (from a literal, an
    example block, or a console line), and every literal that starts
    with a command object (``cluster drain NAME``)."""
    found = []
    for literal in literals(path, text):
        if 'multilb-manage' in literal:
            found.append((False, literal[literal.index('multilb-manage'):]))
        elif re.match(r'^(%s) [a-z]' % '|'.join(map(re.escape, COMMANDS)),
                      literal):
            found.append((False, 'multilb-manage ' + literal))
    objects = re.compile(r'^\s+[a-z][a-z-]* ')
    for _is_ini, block in literal_blocks(path, text):
        joined = re.sub(r'\\\n\s*', ' ', '\n'.join(block))
        synopsis = False
        for line in joined.split('\n'):
            if synopsis and objects.match(line):
                # a synopsis: "multilb-manage [--config-file PATH]..."
                # then one command per indented line
                found.append((False, 'multilb-manage ' + line.strip()))
                continue
            synopsis = False
            if 'multilb-manage' not in line or line.strip().startswith('#'):
                continue
            command = line[line.index('multilb-manage'):].strip()
            if command.startswith('multilb-manage: error'):
                continue
            synopsis = bool(re.match(
                r'^\s*multilb-manage( \[--[^\]]*\](\.\.\.)?)*\s*$', line))
            complete = bool(re.match(r'^\s*(\$ |\| |.*\| xargs )', line))
            found.append((complete, command))
    return found


def command_problems(path, text):
    problems = []
    where = rel(path)
    for complete, command in command_lines(path, text):
        try:
            tokens = shlex.split(command)
        except ValueError:
            tokens = command.split()
        tokens = tokens[1:]
        words = [t.strip('[]') for t in tokens if t not in ('...', '|')]
        words = [w for w in words if w and not w.startswith('...')]
        # the global options, then the object and the action
        i = 0
        while i < len(words) and words[i].startswith('-'):
            flag = words[i].split('=', 1)[0]
            if flag not in GLOBAL_FLAGS:
                problems.append('%s: multilb-manage has no global option %s '
                                '(%s)' % (where, flag, command))
            i += 2 if flag in GLOBAL_WITH_VALUE and '=' not in words[i] \
                else 1
        rest = words[i:]
        if not rest or not re.match(r'^[a-z][a-z-]*$', rest[0]):
            continue
        if rest[0] not in COMMANDS:
            problems.append('%s: multilb-manage has no command %s (%s)' % (
                where, rest[0], command))
            continue
        if len(rest) < 2 or not re.match(r'^[a-z][a-z-]*$', rest[1]):
            continue
        actions = COMMANDS[rest[0]]
        if rest[1] not in actions:
            problems.append('%s: multilb-manage %s has no action %s (%s)' % (
                where, rest[0], rest[1], command))
            continue
        flags = flags_of(actions[rest[1]])
        for word in rest[2:]:
            if word.startswith('--') and word.split('=', 1)[0] not in flags:
                problems.append('%s: multilb-manage %s %s has no option %s '
                                '(%s)' % (where, rest[0], rest[1], word,
                                          command))
        if complete and not re.search(r'[\[\]<>]|\.\.\.', command):
            try:
                PARSER.parse_args(tokens)
            except SystemExit:
                problems.append('%s: this command does not parse: %s' % (
                    where, command))
    return sorted(set(problems))


@pytest.mark.parametrize('path', PAGES, ids=rel)
def test_multilb_manage_commands_in_the_docs_exist(path, capsys):
    problems = command_problems(path, path.read_text())
    capsys.readouterr()      # argparse's own complaints, already reported
    assert problems == []


def test_the_manage_guide_shows_every_command():
    text = (DOC / 'admin' / 'manage.rst').read_text()
    shown = {command for _c, command in command_lines(
        DOC / 'admin' / 'manage.rst', text)}
    flat = ' '.join(shown)
    missing = ['%s %s' % (obj, action)
               for obj, actions in sorted(COMMANDS.items())
               for action in sorted(actions)
               if not re.search(r'\b%s %s\b' % (re.escape(obj), action),
                                flat)]
    assert missing == []


# -- repository paths --------------------------------------------------------

_TOP = ('multilb', 'backends', 'scheduler', 'tools', 'tests', 'benchmarks',
        'doc', 'etc')
BUILT = ('doc/build',)    # written by tox -e docs, not in the repository


def path_problems(path, text):
    problems = []
    for literal in literals(path, text):
        for word in literal.split():
            word = word.rstrip('.,;:)')
            if re.match(r'^(%s)/[\w.*/-]*$' % '|'.join(_TOP), word):
                if word.startswith(BUILT):
                    continue
                if not glob.glob(str(REPO / word)):
                    problems.append('%s: %s does not exist' % (
                        rel(path), word))
            elif re.match(r'^test_[\w*]+\.py$', word):
                if not glob.glob(str(REPO / 'tests' / '**' / word),
                                 recursive=True):
                    problems.append('%s: no test file %s' % (rel(path),
                                                             word))
    return problems


@pytest.mark.parametrize('path', PAGES, ids=rel)
def test_repository_paths_in_the_docs_exist(path):
    assert path_problems(path, path.read_text()) == []


# -- nothing points outside the repository -----------------------------------

# Built so that this file does not match itself.
OUTSIDE = re.compile('|'.join([
    re.escape('LIBRARIES' + '.md'), re.escape('ARCHITECTURE' + '.md'),
    re.escape('../' + 'shared'), re.escape('shared' + '/reference'),
    re.escape('/work/' + 'shared'), '\u00a7',
    r'\bcontract ' + '\u00a7',
]))
SCANNED = ('README.rst', 'setup.cfg', 'tox.ini', 'doc',
           'benchmarks', 'multilb', 'backends', 'scheduler', 'tools',
           'tests', 'etc')
SKIPPED_DIRS = {'.tox', 'build', '__pycache__', '.git', '.quickstart',
                '.localstack'}


def scanned_files():
    for top in SCANNED:
        root = REPO / top
        if root.is_file():
            yield root
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in SKIPPED_DIRS]
            for name in filenames:
                yield pathlib.Path(dirpath) / name


def test_nothing_points_outside_the_repository():
    found = []
    for path in scanned_files():
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        for number, line in enumerate(text.split('\n'), 1):
            if OUTSIDE.search(line):
                found.append('%s:%d: %s' % (rel(path), number,
                                            line.strip()))
    assert found == []
