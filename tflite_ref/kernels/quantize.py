"""Kernels: QUANTIZE, DEQUANTIZE, CAST."""

from __future__ import annotations
