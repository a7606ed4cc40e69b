"""Fixtures of the multilb package tests (see tests/unit/fixtures.py)."""

from tests.unit.fixtures import clock  # noqa: F401
from tests.unit.fixtures import env  # noqa: F401
from tests.unit.fixtures import executor  # noqa: F401
from tests.unit.fixtures import isolated  # noqa: F401
from tests.unit.fixtures import make  # noqa: F401
from tests.unit.fixtures import settings  # noqa: F401
