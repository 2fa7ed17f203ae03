"""seawall's logger, ``logging.getLogger("seawall")``, with logging imported on first use.

seawall logs only when something went wrong (a listener or predicate that raised, a failed
renewal after a fork): ``import seawall`` does not pay for importing logging.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import logging

__all__ = ["logger"]


def logger() -> logging.Logger:
    import logging

    return logging.getLogger("seawall")
