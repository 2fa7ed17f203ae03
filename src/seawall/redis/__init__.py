"""Circuit breakers shared by every process and host, on Redis (``pip install seawall[redis]``).

``CircuitBreaker(name=..., shared=RedisState(url))`` in each process; operators flip the
whole fleet's breakers with ``python -m seawall breaker status|isolate|disable|reset NAME
--redis URL`` or the same methods of :class:`RedisState`.
"""

from __future__ import annotations

from seawall._shared import SharedState, SharedStatus
from seawall.redis._state import RedisState

__all__ = ["RedisState", "SharedState", "SharedStatus"]
