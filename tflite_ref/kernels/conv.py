"""Kernels: CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV."""

from __future__ import annotations
