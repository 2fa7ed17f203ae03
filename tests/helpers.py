"""What many test modules share, in one place (fixtures are in ``conftest.py``)."""

from __future__ import annotations


class Boom(Exception):
    """The failure test functions raise: an exception no library raises by itself."""
