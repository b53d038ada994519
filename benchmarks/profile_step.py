"""Where a pretraining step's time goes: torch.profiler over a few training steps of the IMDb
pretraining's shape (bert-mini, 16,000-piece vocabulary, 257-token chunks, 40% masked, batch 32,
MLM only, sin/cos positions, dropout 0), on synthetic batches of that shape.

    python benchmarks/profile_step.py                       # fp32
    python benchmarks/profile_step.py --precision bf16      # bf16 autocast
    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 python benchmarks/profile_step.py

Prints the time per step, then the operators by their own CPU time and the share of the matrix
products (mm, addmm, bmm) and of fused attention.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from annotated_bert.config import preset
from annotated_bert.model import BertForPreTraining
from bench_speed import ours_step, synthetic_batches  # benchmarks/ is on sys.path when run as a script


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=257)
    p.add_argument("--vocab-size", type=int, default=16000)
    p.add_argument("--mask-prob", type=float, default=0.4)
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--steps", type=int, default=3, help="profiled steps (after 3 warm-up steps)")
    args = p.parse_args()

    torch.manual_seed(0)
    B, T, V = args.batch_size, args.seq_len, args.vocab_size
    cfg = preset("bert-mini", vocab_size=V, pad_token_id=0, max_position_embeddings=max(512, T),
                 position_embedding_type="sinusoidal", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = BertForPreTraining(cfg).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, eps=1e-6, fused=True)
    batch, = synthetic_batches(1, B, T, V, mask_prob=args.mask_prob)
    del batch["nsp_labels"]  # MLM only, as the IMDb pretraining
    step = ours_step(model, opt, args.precision)

    for _ in range(3):
        step(batch)
    t = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            step(batch)
    dt = (time.perf_counter() - t) / args.steps
    events = prof.key_averages()
    print(events.table(sort_by="self_cpu_time_total", row_limit=15))
    total = sum(e.self_cpu_time_total for e in events)
    share = lambda pred: sum(e.self_cpu_time_total for e in events if pred(e.key)) / total
    print(f"{dt * 1000:.0f} ms per step ({B / dt:.1f} samples/s, profiler on); "
          f"matrix products {share(lambda k: k in ('aten::mm', 'aten::addmm', 'aten::bmm')):.0%}, "
          f"fused attention {share(lambda k: 'scaled_dot_product' in k):.0%} of the CPU time")


if __name__ == "__main__":
    main()
