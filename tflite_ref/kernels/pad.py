"""Kernels: PAD, PADV2, MIRROR_PAD."""

from __future__ import annotations
