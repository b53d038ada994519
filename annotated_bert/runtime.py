"""What every run shares, apart from the model and the data: the device and the processes, bf16
autocast, the memory allocator, the command line's help and range checks, the stop flag (Ctrl-C
and the time budget) and the wrapper that turns bad input into one line.

Distributed runs follow PyTorch's `torchrun` conventions: `WORLD_SIZE`, `RANK` and `LOCAL_RANK`
in the environment, one process per device (gloo on CPU, nccl on GPU). Every function here also
works in a plain single process, where it does what its single-process meaning is.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import os
import platform
import signal
import sys
from collections.abc import Callable, Sequence

import torch
import torch.distributed as dist

from annotated_bert.data import DataError

EXIT_INTERRUPTED = 130  # the shell's code for a program stopped by Ctrl-C


# ------------------------------------------------------------------------------ processes

def is_main() -> bool:
    """True in the process that prints, logs and writes files (rank 0, or the only one)."""
    return not dist.is_initialized() or dist.get_rank() == 0


def rank_and_world() -> tuple[int, int]:
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


def say(*args, **kwargs) -> None:
    """print, in the main process only."""
    if is_main():
        print(*args, **kwargs)


def setup_device(arg: str = "auto", precision: str = "fp32") -> torch.device:
    """The device to run on ("auto": CUDA when there is one, else the CPU); under torchrun also
    join the process group. Warns when `precision` is bf16 on a CPU that only emulates it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if arg == "auto":
        arg = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(arg)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DataError("--device cuda was asked for but no CUDA GPU is available; use --device cpu")
        if world > 1:
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if (warning := precision_warning(device, precision)) and is_main():
        print(warning, file=sys.stderr)
    return device


def all_reduce_sum(values: Sequence[float], device: torch.device) -> list[float]:
    """The element-wise sum of `values` over all processes (the values themselves in one process)."""
    if not dist.is_initialized():
        return list(values)
    t = torch.tensor(list(values), dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def sum_over_processes(values: dict[str, list[float]]) -> dict[str, list[float]]:
    """Each key's element-wise sum over all processes, for dicts whose keys may differ between them
    (a process whose share of the validation set is empty has no metrics at all)."""
    if not dist.is_initialized():
        return {k: list(v) for k, v in values.items()}
    parts = [None] * dist.get_world_size()
    dist.all_gather_object(parts, values)
    total: dict[str, list[float]] = {}
    for part in parts:
        for k, v in part.items():
            total[k] = [a + b for a, b in zip(total.get(k, [0.0] * len(v)), v)]
    return total


def distributed(model: torch.nn.Module, device: torch.device, find_unused_parameters: bool = False):
    """`model` wrapped for data-parallel training when there are several processes (gradients
    averaged across them in backward), else `model` itself. No buffer needs syncing: the only one,
    the sin/cos position table, is fixed."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return model
    return torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None, broadcast_buffers=False,
        find_unused_parameters=find_unused_parameters)


# ------------------------------------------------------------------------------ precision

def autocast(device: torch.device | str, precision: str):
    """bf16: matrix products in bfloat16 under torch.autocast (weights and optimizer stay fp32)."""
    if precision == "bf16":
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool | None:
    """Whether the CPU computes bfloat16 in hardware (x86: AVX-512 BF16 or AMX; Arm: the BF16
    extension), read from Linux's /proc/cpuinfo; None where that cannot be told."""
    try:
        with open(cpuinfo) as f:
            line = next((line for line in f if line.startswith(("flags", "Features"))), None)  # the first core's
    except OSError:
        return None
    if line is None:
        return None
    return bool(set(line.split(":", 1)[-1].split()) & {"avx512_bf16", "amx_bf16", "bf16"})


def precision_warning(device: torch.device, precision: str, cpuinfo: str = "/proc/cpuinfo") -> str | None:
    """A warning for bf16 autocast on a CPU that only emulates bfloat16 (there it is slower, not faster)."""
    if precision != "bf16" or device.type != "cpu" or cpu_has_native_bf16(cpuinfo) is not False:
        return None
    return ("warning: --precision bf16 on a CPU without bfloat16 instructions (none of avx512_bf16, amx_bf16, "
            "bf16 in /proc/cpuinfo): PyTorch emulates it, which was measured 3x slower than fp32 on such a "
            "CPU; use --precision fp32 here")


# ------------------------------------------------------------------------------ allocator

# glibc's mallopt parameters (malloc.h): serve allocations up to 32 MiB from the heap instead of
# fresh mmap'ed pages, and keep up to 2 GiB of freed memory at the heap's top (mallopt takes an int).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD, TRIM_THRESHOLD = 32 << 20, 2**31 - 1


def configure_allocator() -> bool:
    """Keep freed activation buffers for the next training step (glibc only; a no-op elsewhere).

    glibc's malloc serves every buffer over its mmap threshold (128 KiB at first, adapting up to
    32 MiB) with pages fresh from the kernel, and returns them on free; a training step allocates
    and frees the same large activations every time, so each step faults them in again (system
    time). Raising the mmap and trim thresholds keeps them in the heap, as tcmalloc does. Called by
    the command-line entry points only, never on import: a notebook or a host program keeps its
    own allocator settings. Returns whether the settings were applied."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    except (OSError, AttributeError):
        return False


# ------------------------------------------------------------------------------ stopping

class StopFlag:
    """When to stop early: Ctrl-C (SIGINT), or the time budget spent. Every process must stop at
    the same step, so `check` sums both flags over the processes (one collective per step).

    The first Ctrl-C asks for a stop after the current step (the loop then saves a checkpoint);
    a second one quits at once. Use as a context manager: the previous handler is restored on exit.
    """

    def __init__(self, budget_s: float | None = None):
        self.budget_s = budget_s
        self.requested = False
        self._previous = None

    def _on_sigint(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if is_main():
            print("\ninterrupted: saving a checkpoint after this step (Ctrl-C again to quit now)", file=sys.stderr)

    def __enter__(self) -> StopFlag:
        self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc) -> None:
        signal.signal(signal.SIGINT, self._previous)

    def check(self, elapsed_s: float, device: torch.device) -> tuple[bool, bool]:
        """(interrupted, out_of_time), agreed on by every process."""
        flags = [float(self.requested), float(self.budget_s is not None and elapsed_s >= self.budget_s)]
        interrupted, out_of_time = (x > 0 for x in all_reduce_sum(flags, device))
        return interrupted, out_of_time


# ------------------------------------------------------------------------------ command line

class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """`--help` with each option's default, except where there is none to show (None, or False for a
    switch) or the help text already says what happens by default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False) or "default:" in (action.help or "").lower():
            return action.help or ""
        return super()._get_help_string(action)


def at_least(low: float):
    return (lambda x: x >= low), f"at least {low}"


POSITIVE = (lambda x: x > 0), "positive"
PROBABILITY = (lambda x: 0 <= x < 1), "in [0, 1)"


def check_ranges(p: argparse.ArgumentParser, args: argparse.Namespace, ranges: dict) -> None:
    """Usage and exit 2 (argparse's `p.error`) for the first flag outside its range; unset flags pass.
    `ranges` maps a flag's dest to (test, what it must be)."""
    for name, (ok, what) in ranges.items():
        value = getattr(args, name)
        if value is not None and not ok(value):
            p.error(f"--{name.replace('_', '-')} must be {what}, got {value}")


def run_cli(command: Callable[[], int], errors: tuple[type[BaseException], ...]) -> int:
    """Run a command-line program's body: `errors` (bad input: a missing file, a damaged checkpoint,
    a wrong flag combination found late) print one line `error: ...` and exit with 2. Under torchrun
    every process waits for the others before leaving the process group."""
    configure_allocator()
    try:
        code = command()
        if dist.is_initialized():
            dist.barrier()  # rank 0 may still be saving: no rank leaves the group before it is done
        return code
    except errors as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
