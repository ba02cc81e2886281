"""TFLite Micro predictions from a ``.tflite`` file: arena (head, tail, total, smallest working
arena), op support with reasons, the resolver, flash and MACs — as TFLM itself will behave.

    from tflite_ref import load
    from tflite_ref.micro import estimate
    est = estimate(load("model.tflite"), target="cortex-m")
"""

from __future__ import annotations

from tflite_ref.micro.estimate import (
                                       KERNELS,
                                       Arena,
                                       Flash,
                                       Hazard,
                                       MicroEstimate,
                                       OperatorReport,
                                       OrderSearch,
                                       PlanEntry,
                                       TailItem,
                                       Unsupported,
                                       estimate,
                                       flash_usage,
                                       resolver_snippet,
)
from tflite_ref.micro.targets import CORTEX_M, HOST, TARGETS, Target, get_target

__all__ = [
                                       "CORTEX_M",
                                       "HOST",
                                       "KERNELS",
                                       "TARGETS",
                                       "Arena",
                                       "Flash",
                                       "Hazard",
                                       "MicroEstimate",
                                       "OperatorReport",
                                       "OrderSearch",
                                       "PlanEntry",
                                       "TailItem",
                                       "Target",
                                       "Unsupported",
                                       "estimate",
                                       "flash_usage",
                                       "get_target",
                                       "resolver_snippet",
]
