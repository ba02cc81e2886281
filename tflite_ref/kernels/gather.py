"""Kernels: GATHER, GATHER_ND."""

from __future__ import annotations
