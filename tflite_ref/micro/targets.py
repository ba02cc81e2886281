"""Struct sizes of TFLite Micro per target: what every tail allocation costs.

Two targets:

``host``
    The ``tflite-micro`` Python wheel on 64-bit Linux (x86-64, LP64), built with compression
    support (``python/tflite_micro/pypi_build.sh --//:with_compression=true``) and run through
    ``InterpreterWrapper`` (``python/tflite_micro/interpreter_wrapper.cc``), i.e. with the
    *recording* allocator. Sizes are ``sizeof``/``alignof`` of the TFLM headers on x86-64; they
    are checked live against the wheel's ``print_allocations()`` by ``tests/micro``.

``cortex-m``
    32-bit Arm built with ``arm-none-eabi-gcc`` 12.2 (AAPCS: 4-byte pointers, 8-byte-aligned
    64-bit types, and **short enums**, gcc's default for arm-none-eabi, which TFLM's
    ``cortex_m_generic_makefile.inc`` does not override), TFLM at commit ``90b983c2b3f1``, no
    ``USE_TFLM_COMPRESSION``, a plain ``MicroInterpreter(model, resolver, arena, size)``
    (``MicroAllocator::Create`` → ``SingleArenaBufferAllocator``, ``GreedyMemoryPlanner``,
    ``MicroAllocator``), reporting ``MicroInterpreter::arena_used_bytes()``. The sizes were
    compiled from the TFLM headers with that toolchain and reproduced a qemu-run 32-bit build to
    the byte (shared doc ``tflm-arena.md`` §6.2, §11.3). They are a table here, pinned by a test.

Every number is (size, alignment) in bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from tflite_ref.errors import UsageError

#: The wheel release the host tables were measured against (``pip show tflite-micro``).
WHEEL_VERSION = "0.dev20261023182759"
#: The TFLM source commit the kernels/allocator rules were read from.
TFLM_COMMIT = "90b983c2b3f1"

# Struct names, as in the TFLM sources.
STRUCTS = (
    "SingleArenaBufferAllocator",  # arena_allocator/single_arena_buffer_allocator.h
    "RecordingSingleArenaBufferAllocator",
    "GreedyMemoryPlanner",  # memory_planner/greedy_memory_planner.h
    "MicroAllocator",  # micro_allocator.h
    "RecordingMicroAllocator",
    "MicroBuiltinDataAllocator",  # micro_allocator.cc (anonymous namespace)
    "SubgraphAllocations",  # micro_allocator.h (+ compressed tensor list with compression)
    "TfLiteEvalTensor",  # c/common.h
    "NodeAndRegistration",  # micro_allocator.h: TfLiteNode + const TFLMRegistration*
    "TfLiteTensor",  # c/common.h under TF_LITE_STATIC_MEMORY
    "TfLiteAffineQuantization",
    "TfLiteTensorPtr",  # TfLiteTensor* (the interpreter's input/output arrays)
    "ScratchBufferHandle",  # micro_allocator.h
    "ScratchBufferRequest",  # internal::ScratchBufferRequest
    "AllocationInfo",  # micro_allocation_info.h (temp, during planning)
    "size_t",
    "MicroResourceVariables",  # micro_resource_variable.h
    "MicroResourceVariable",
)


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    allocator: str  # "recording" (the wheel) or "plain" (a firmware MicroInterpreter)
    tflm_version: str  # what the tables correspond to
    structs: Mapping[str, tuple[int, int]]
    column: str  # which column of the per-op tables (ops.py) applies
    pointer: int
    planner_bytes_per_buffer: int = 40  # GreedyMemoryPlanner::per_buffer_size(): all ints
    source: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    def size(self, struct: str) -> int:
        return self.structs[struct][0]

    def align(self, struct: str) -> int:
        return self.structs[struct][1]


_HOST_STRUCTS = {
    "SingleArenaBufferAllocator": (72, 8),
    "RecordingSingleArenaBufferAllocator": (104, 8),
    "GreedyMemoryPlanner": (72, 8),
    "MicroAllocator": (72, 8),
    "RecordingMicroAllocator": (272, 8),  # 248 without compression
    "MicroBuiltinDataAllocator": (16, 8),
    "SubgraphAllocations": (24, 8),  # 16 without compression
    "TfLiteEvalTensor": (24, 8),
    "NodeAndRegistration": (64, 8),
    "TfLiteTensor": (64, 8),
    "TfLiteAffineQuantization": (24, 8),
    "TfLiteTensorPtr": (8, 8),
    "ScratchBufferHandle": (8, 8),
    "ScratchBufferRequest": (16, 8),
    "AllocationInfo": (32, 8),
    "size_t": (8, 8),
    "MicroResourceVariables": (16, 8),
    "MicroResourceVariable": (40, 8),
}

_CORTEX_M_STRUCTS = {
    "SingleArenaBufferAllocator": (36, 4),
    "RecordingSingleArenaBufferAllocator": (52, 4),
    "GreedyMemoryPlanner": (44, 4),
    "MicroAllocator": (36, 4),
    "RecordingMicroAllocator": (124, 4),
    "MicroBuiltinDataAllocator": (8, 4),
    "SubgraphAllocations": (8, 4),
    "TfLiteEvalTensor": (12, 4),
    "NodeAndRegistration": (32, 4),
    "TfLiteTensor": (32, 4),  # 40 with -fno-short-enums
    "TfLiteAffineQuantization": (12, 4),
    "TfLiteTensorPtr": (4, 4),
    "ScratchBufferHandle": (4, 4),
    "ScratchBufferRequest": (12, 4),
    "AllocationInfo": (24, 4),
    "size_t": (4, 4),
    "MicroResourceVariables": (12, 4),
    "MicroResourceVariable": (20, 4),
}

HOST = Target(
    name="host",
    description="tflite-micro Python wheel, 64-bit Linux (recording allocator, compression on)",
    allocator="recording",
    tflm_version=f"tflite-micro wheel {WHEEL_VERSION}",
    structs=MappingProxyType(_HOST_STRUCTS),
    column="host",
    pointer=8,
    source="x86-64 sizeof/alignof of the TFLM headers; checked live against the wheel's "
           "print_allocations() by tests/micro",
)

CORTEX_M = Target(
    name="cortex-m",
    description="32-bit Arm Cortex-M, arm-none-eabi-gcc 12.2 (short enums), plain "
                "MicroInterpreter, no compression",
    allocator="plain",
    tflm_version=f"TFLM {TFLM_COMMIT} (tensorflow/tflite-micro)",
    structs=MappingProxyType(_CORTEX_M_STRUCTS),
    column="arm",
    pointer=4,
    source="arm-none-eabi-gcc 12.2, -fshort-enums (the default): probes compiled from the TFLM "
           "headers at 90b983c2b3f1; a 32-bit build run under qemu-arm matched to the byte "
           "(shared/docs/tflm-arena.md §6.2, §11.3)",
    notes=(
        "FULLY_CONNECTED builtin data is TFLM 90b983c2b3f1's 5-byte TfLiteFullyConnectedParams; "
        "the wheel's newer struct (32 B on x86-64) has no verified 32-bit size",
        "toolchains with 4-byte enums (armclang, IAR, -fno-short-enums) have larger "
        "TfLiteTensor (40 B) and params structs: not modelled",
    ),
)

TARGETS: Mapping[str, Target] = MappingProxyType({t.name: t for t in (HOST, CORTEX_M)})


def get_target(name: str | Target) -> Target:
    if isinstance(name, Target):
        return name
    try:
        return TARGETS[name]
    except KeyError:
        raise UsageError(f"unknown target {name!r}; choose one of {', '.join(TARGETS)}") from None


__all__ = [
    "CORTEX_M",
    "HOST",
    "STRUCTS",
    "TARGETS",
    "TFLM_COMMIT",
    "WHEEL_VERSION",
    "Target",
    "get_target",
]
