"""Logging in scanpy's style, without touching the root logger."""

from __future__ import annotations

from scanpy import logging as logg

__all__ = ["logg"]
