"""Helpers for testing code that uses seawall, without sleeping."""

from __future__ import annotations

from seawall._clock import FakeClock

__all__ = ["FakeClock"]
