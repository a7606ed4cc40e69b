"""Golden files: a translation compared with the JSON kept beside its test.

``MULTILB_REGEN_GOLDEN=1`` rewrites the files from the current output
(review the diff before committing it).
"""

import json
import os

REGEN = os.environ.get('MULTILB_REGEN_GOLDEN') == '1'


def assert_matches(directory, name, actual):
    """``actual`` equals ``directory/<name>.json`` (rewritten first when
    regenerating)."""
    path = directory / (name + '.json')
    if REGEN:
        directory.mkdir(exist_ok=True)
        path.write_text(json.dumps(actual, indent=2, sort_keys=True) + '\n')
    assert path.exists(), 'no golden file: run with MULTILB_REGEN_GOLDEN=1'
    assert actual == json.loads(path.read_text())
