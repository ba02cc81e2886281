"""Kernels: unary math: EXP, LOG, SQRT, RSQRT, SQUARE, ABS, NEG, FLOOR, CEIL, ROUND, SIN, COS, SIGN."""

from __future__ import annotations
