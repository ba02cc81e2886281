"""Kernels: FULLY_CONNECTED, BATCH_MATMUL."""

from __future__ import annotations
