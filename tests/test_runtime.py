"""annotated_bert.runtime: the bf16 check, the allocator, the stop flag, range checks and the
command-line wrapper."""

import argparse
import os
import signal

import pytest
import torch

from annotated_bert import runtime
from annotated_bert.data import DataError


@pytest.mark.parametrize("flags, native", [
    ("flags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_vnni", False),   # AVX-512 without BF16
    ("flags\t\t: fpu avx512f avx512_bf16 avx512_vnni", True),            # AMD Zen 4, Intel Cooper Lake
    ("flags\t\t: fpu avx512f amx_bf16 amx_tile", True),                  # Intel Sapphire Rapids
    ("Features\t: fp asimd sve bf16 i8mm", True),                        # Arm with the BF16 extension
    ("Features\t: fp asimd evtstrm aes", False),
    ("processor\t: 0", None),                                            # nothing to tell from
])
def test_native_bf16_is_read_from_cpuinfo(tmp_path, flags, native):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nvendor_id\t: X\n{flags}\n\nprocessor\t: 1\n{flags}\n")
    assert runtime.cpu_has_native_bf16(str(cpuinfo)) is native
    warning = runtime.precision_warning(torch.device("cpu"), "bf16", str(cpuinfo))
    assert (warning is not None) == (native is False)
    if warning:
        assert "--precision fp32" in warning
    assert runtime.precision_warning(torch.device("cpu"), "fp32", str(cpuinfo)) is None
    assert runtime.cpu_has_native_bf16(str(tmp_path / "absent")) is None


def test_bf16_on_an_emulating_cpu_warns_when_the_device_is_set_up(monkeypatch, capsys):
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda cpuinfo="": False)
    assert runtime.setup_device("cpu", "bf16") == torch.device("cpu")
    assert "without bfloat16 instructions" in capsys.readouterr().err
    runtime.setup_device("cpu", "fp32")
    assert capsys.readouterr().err == ""


def test_a_missing_gpu_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DataError, match="no CUDA GPU is available; use --device cpu"):
        runtime.setup_device("cuda")
    assert runtime.setup_device("auto") == torch.device("cpu")


def test_autocast_is_bf16_only_when_asked():
    with runtime.autocast("cpu", "bf16"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with runtime.autocast("cpu", "fp32"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_single_process_helpers():
    assert runtime.is_main() and runtime.rank_and_world() == (0, 1)
    assert runtime.all_reduce_sum([1.5, 2.0], torch.device("cpu")) == [1.5, 2.0]
    model = torch.nn.Linear(2, 2)
    assert runtime.distributed(model, torch.device("cpu")) is model


def test_the_allocator_is_configured_by_the_command_line_only(monkeypatch):
    """glibc gets its thresholds from run_cli (the entry point of every command), never on import:
    a notebook or a program that imports the library keeps its own allocator settings."""
    import platform
    import subprocess
    import sys
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        assert runtime.configure_allocator() is False
        return
    probe = ("import ctypes; calls = []; real = ctypes.CDLL\n"
             "class Recorder:\n"
             "    def __init__(self, *a, **k): self.libc = real(*a, **k)\n"
             "    def mallopt(self, *a): calls.append(a); return self.libc.mallopt(*a)\n"
             "ctypes.CDLL = Recorder\n"
             "import annotated_bert.train, annotated_bert.finetune, annotated_bert.predict, annotated_bert.runtime as r\n"
             "print(len(calls)); r.run_cli(lambda: 0, ()); print(calls)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "0"                                               # importing touched nothing
    assert out[1] == str([(runtime.M_MMAP_THRESHOLD, 32 << 20), (runtime.M_TRIM_THRESHOLD, 2**31 - 1)])


def test_run_cli_turns_bad_input_into_one_line(capsys):
    def fail():
        raise DataError("the file has no text column; pass --text-column NAME")
    assert runtime.run_cli(fail, (DataError,)) == 2
    assert capsys.readouterr().err == "error: the file has no text column; pass --text-column NAME\n"
    with pytest.raises(KeyError):  # anything else is a bug: its traceback is kept
        runtime.run_cli(lambda: {}["x"], (DataError,))


def test_stop_flag_budget_and_ctrl_c(capsys):
    cpu = torch.device("cpu")
    previous = signal.getsignal(signal.SIGINT)
    with runtime.StopFlag(budget_s=10.0) as stop:
        assert stop.check(9.9, cpu) == (False, False)
        assert stop.check(10.0, cpu) == (False, True)
        os.kill(os.getpid(), signal.SIGINT)          # the first Ctrl-C asks for a stop after this step
        assert stop.check(0.0, cpu) == (True, False)
        assert "saving a checkpoint after this step" in capsys.readouterr().err
        with pytest.raises(KeyboardInterrupt):       # the second quits at once
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is previous
    with runtime.StopFlag() as no_budget:
        assert no_budget.check(1e9, cpu) == (False, False)


def test_ranges_and_help_formatter(capsys):
    p = argparse.ArgumentParser(formatter_class=runtime.HelpFormatter)
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    p.add_argument("--dropout", type=float, default=None, help="dropout (default: the preset's)")
    p.add_argument("--quiet", action="store_true", help="no bars")
    text = p.format_help()
    assert "peak learning rate (default: 0.001)" in text
    assert "(default: None)" not in text and "(default: False)" not in text and text.count("default:") == 2
    ranges = {"lr": runtime.POSITIVE, "dropout": runtime.PROBABILITY}
    runtime.check_ranges(p, p.parse_args(["--lr", "0.1"]), ranges)             # unset --dropout passes
    with pytest.raises(SystemExit) as e:
        runtime.check_ranges(p, p.parse_args(["--dropout", "1"]), ranges)
    assert e.value.code == 2 and "--dropout must be in [0, 1), got 1.0" in capsys.readouterr().err
