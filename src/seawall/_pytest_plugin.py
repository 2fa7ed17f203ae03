"""seawall's pytest plugin (registered as the ``pytest11`` entry point ``seawall``).

The fixture ``simulated`` gives a test a :class:`seawall.testing.Simulation`: policies the
test builds run on its simulated time (see :func:`seawall.testing.simulated`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from seawall.testing import Simulation
from seawall.testing import simulated as _simulated

__all__ = ["simulated"]


@pytest.fixture
def simulated() -> Iterator[Simulation]:
    """A simulation on virtual time, seeded with 0; closed after the test."""
    with _simulated() as simulation:
        yield simulation
