"""Options of the installed backends share ``[cluster_defaults]``: a name
two backends use must have one type (multilb/conf/clusters.py registers
the first one for both)."""

from multilb import registry


def test_backends_sharing_an_option_name_give_it_one_type():
    seen, clashes = {}, []
    for name, backend_class in sorted(
            registry.installed_backend_classes().items()):
        for opt in backend_class.get_config_options():
            kind = (type(opt).__name__, type(opt.type).__name__)
            first = seen.setdefault(opt.dest, (name, kind))
            if first[1] != kind:
                clashes.append('%s: %s %s, %s %s' % (
                    opt.dest, first[0], first[1], name, kind))
    assert clashes == []
    assert len(registry.installed_backend_classes()) >= 3
