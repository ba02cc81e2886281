"""Kernels: SOFTMAX, LOG_SOFTMAX, LOGISTIC, TANH, RELU family, LEAKY_RELU, PRELU, HARD_SWISH, ELU, GELU, L2_NORMALIZATION."""

from __future__ import annotations
