"""Logging in scanpy's style, without touching the root logger.

``scanpy`` takes seconds to import, so its logging module is imported on the first log call, not when
``sc_llm`` is imported (``sc-llm --help`` and ``import sc_llm`` stay fast).
"""

from __future__ import annotations

from typing import Any

__all__ = ["logg"]


class _ScanpyLogging:
    """Forward ``logg.info`` / ``logg.debug`` / ... to ``scanpy.logging``, importing it on first use."""

    def __getattr__(self, name: str) -> Any:
        from scanpy import logging

        return getattr(logging, name)


logg = _ScanpyLogging()
