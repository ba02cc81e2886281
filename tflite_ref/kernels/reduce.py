"""Kernels: MEAN, SUM, REDUCE_MAX, REDUCE_MIN, REDUCE_PROD, ARG_MAX, ARG_MIN, CUMSUM, TOPK_V2."""

from __future__ import annotations
