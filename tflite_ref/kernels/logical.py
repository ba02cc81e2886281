"""Kernels: comparisons and selection: LESS ... NOT_EQUAL, LOGICAL_*, SELECT, SELECT_V2, WHERE."""

from __future__ import annotations
