"""Sphinx directive ``argparse-tree``: a command reference from argparse.

::

    .. argparse-tree:: multilb.cmd.manage:build_parser
       :prog: multilb-manage

imports ``module:function``, calls it to get the real
:class:`argparse.ArgumentParser` and walks it and its subparsers
recursively. Every command (the program itself, then each subcommand at any
depth, in the parser's order) becomes a section titled with its full command
line (``multilb-manage cluster list``). It holds the help its parent gives it
and its description as paragraphs, then argparse's own ``format_help()``
output (usage, arguments, epilog; 79 columns wide) as a literal block. Its id
is the command line joined with dashes (``multilb-manage-cluster-list``):
unique and stable. ``:prog:`` replaces the program name the parser has.
"""

import argparse
import importlib
import os
import unittest.mock

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util.docutils import SphinxDirective

# argparse's HelpFormatter wraps at $COLUMNS - 2; no colours (Python 3.14).
HELP_ENV = {'COLUMNS': '81', 'NO_COLOR': '1'}


def load_parser(spec):
    """``package.module:function`` -> the parser the function returns."""
    module_name, _, attr = spec.partition(':')
    if not attr:
        raise ValueError('expected module:function, got %r' % spec)
    return getattr(importlib.import_module(module_name), attr)()


def walk(parser, path, help_text=None):
    """Yield (command words, parser, help its parent gave it), depth first."""
    yield path, parser, help_text
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {a.dest: a.help for a in action._choices_actions}
        seen = set()
        for name, sub in action.choices.items():
            if id(sub) in seen:  # an alias of a command already shown
                continue
            seen.add(id(sub))
            yield from walk(sub, path + [name], helps.get(name))


class ArgparseTreeDirective(SphinxDirective):
    required_arguments = 1
    option_spec = {'prog': directives.unchanged_required}

    def run(self):
        try:
            parser = load_parser(self.arguments[0])
        except Exception as exc:
            raise self.error('argparse-tree: cannot build the parser %s: '
                             '%s' % (self.arguments[0], exc))
        prog = self.options.get('prog') or parser.prog
        root = []
        parents = {}
        with unittest.mock.patch.dict(os.environ, HELP_ENV):
            for path, sub, help_text in walk(parser, [prog]):
                # Subparsers got their prog from the parser's own name.
                sub.prog = ' '.join(path)
                section = self._section(path, sub, help_text)
                if len(path) == 1:
                    root.append(section)
                else:
                    parents[tuple(path[:-1])] += section
                parents[tuple(path)] = section
        return root

    def _section(self, path, parser, help_text):
        section_id = nodes.make_id('-'.join(path))
        section = nodes.section(ids=[section_id])
        section += nodes.title(text=' '.join(path))
        for text in dict.fromkeys([help_text, parser.description]):
            if text:
                text = text[0].upper() + text[1:].rstrip('.') + '.'
                section += nodes.paragraph(text=text)
        # The description is the paragraph above; the block shows the rest.
        description, parser.description = parser.description, None
        try:
            usage = parser.format_help().rstrip()
        finally:
            parser.description = description
        section += nodes.literal_block(usage, usage, language='none')
        self.state.document.note_implicit_target(section, section)
        return section


def setup(app):
    app.add_directive('argparse-tree', ArgparseTreeDirective)
    return {'version': '1.0', 'parallel_read_safe': True,
            'parallel_write_safe': True}
