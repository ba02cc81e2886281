"""Kernels: binary arithmetic: ADD, SUB, MUL, DIV, FLOOR_DIV, FLOOR_MOD, SQUARED_DIFFERENCE, MAXIMUM, MINIMUM, ADD_N, POW."""

from __future__ import annotations
