"""The built references list everything the code registers.

Runs after ``sphinx-build`` in ``tox -e docs`` (it reads doc/build/html; it
is skipped when the HTML is not built). Not under tests/unit: the py3 run
does not collect it.

* every option of every group of ``multilb.conf.opts.list_opts()`` (the
  ``oslo.config.opts: multilb`` entry point) is in that group's part of
  reference/config.html;
* every command and subcommand of ``multilb-manage`` has its section in
  reference/manage.html.
"""

import html.parser
import pathlib

import pytest

from multilb.cmd import manage
from multilb.conf import opts as conf_opts

HTML = pathlib.Path(__file__).resolve().parents[2] / 'doc/build/html'
REFERENCE = HTML / 'reference'


class Ids(html.parser.HTMLParser):
    """The element ids of a page, in order, and the ids of its sections."""

    def __init__(self):
        super().__init__()
        self.ids = []
        self.sections = {}   # section id -> ids of elements inside it
        self.stack = []      # the ids of the open <section>s

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == 'section':
            self.stack.append(attrs.get('id'))
            self.sections.setdefault(attrs.get('id'), set())
        if 'id' in attrs:
            self.ids.append(attrs['id'])
            for section in self.stack:
                self.sections[section].add(attrs['id'])

    def handle_endtag(self, tag):
        if tag == 'section':
            self.stack.pop()


def _page(name):
    path = REFERENCE / name
    if not path.exists():
        pytest.skip('%s is not built: run tox -e docs (sphinx-build -b '
                    'html doc/source doc/build/html) first' % path)
    parser = Ids()
    parser.feed(path.read_text(encoding='utf-8'))
    return parser


def _group_parts(ids, groups):
    """Group name -> ids between its heading and the next group's.

    oslo_config.sphinxext gives a group's heading the group's name,
    lower-cased, as an id, and puts the group's options after it.
    """
    targets = {group.lower(): group for group in groups}
    parts, current = {}, None
    for element_id in ids:
        if element_id in targets:
            current = parts.setdefault(targets[element_id], set())
        elif current is not None:
            current.add(element_id)
    return parts


def _groups():
    for group, options in conf_opts.list_opts():
        name = getattr(group, 'name', group) or 'DEFAULT'
        yield name, sorted(opt.dest for opt in options)


GROUPS = dict(_groups())


@pytest.mark.parametrize('group', sorted(GROUPS))
def test_config_reference_lists_every_option(group):
    parts = _group_parts(_page('config.html').ids, GROUPS)
    assert group in parts, 'no [%s] in reference/config.html' % group
    # oslo_config.sphinxext gives each option the id "<group>.<option>".
    missing = [name for name in GROUPS[group]
               if '%s.%s' % (group.lower(), name.lower()) not in parts[group]]
    assert not missing, 'missing from [%s]: %s' % (group, missing)


def _commands(parser, path):
    yield path
    for action in parser._actions:
        for name, sub in getattr(action, '_name_parser_map', {}).items():
            yield from _commands(sub, path + [name])


def test_manage_reference_lists_every_command():
    sections = _page('manage.html').sections
    commands = list(_commands(manage.build_parser(), ['multilb-manage']))
    assert len(commands) > 10, commands
    missing = [' '.join(path) for path in commands
               if '-'.join(path) not in sections]
    assert not missing, 'missing from reference/manage.html: %s' % missing
