"""Training-step speed: annotated_bert's BertForPreTraining against Hugging Face's, configured
identically, timed in one process on the same batches.

    python benchmarks/bench_speed.py                 # both configurations below
    python benchmarks/bench_speed.py --only seed --repeats 5
    python benchmarks/bench_speed.py --only mini --precision bf16   # both models under bf16 autocast
    python benchmarks/bench_speed.py --only mini --precision bf16 --dropout 0   # no dropout anywhere

A step is what the training loop does: forward (MLM + NSP losses), backward, gradient clipping,
AdamW step (ours: `annotated_bert.training.train_step` itself). Both models get the same config (widths, layers, heads, vocabulary, learned
positions, dropout 0.1 or --dropout, exact GELU, fp32 or --precision bf16 autocast), the same
batch and the same optimizer; Hugging Face runs with its default attention (SDPA). Steps
alternate between the two models in rounds so that machine noise hits both alike; the median
round is reported.

Configurations:
- seed:  the walkthrough's model (width 64, 1 layer, 4 heads, feed-forward 36), batch 12,
         sequence 55 (L = 27), the vocabulary of the first 1,000 IMDb reviews; real batches from
         IMDBBertDataset on the embedded sample.
- mini:  4 layers, hidden 256, 4 heads, feed-forward 1024, batch 32, sequence 128, vocabulary
         30,522 (BERT's); synthetic full-length batches with 15% of positions masked.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from annotated_bert.config import BertConfig
from annotated_bert.model import BertForPreTraining
from annotated_bert.training import Schedule, train_step



def seed_batches(n: int, vocab_size_out: list) -> list[dict]:
    """Batches of 12 from the first 1,000 IMDb reviews (the embedded sample) with L = 27 (sequence 55)."""
    from annotated_bert.data import DEFAULT_DATA
    from annotated_bert.pretraining import IMDBBertDataset

    ds = IMDBBertDataset(DEFAULT_DATA, 0, 1000, context_length=27, verbose=False)
    vocab_size_out.append(len(ds.vocab))
    return [ds.batch(torch.arange(i * 12, (i + 1) * 12)) for i in range(n)]


def synthetic_batches(n: int, B: int, T: int, V: int, mask_prob: float = 0.15) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        ids = torch.randint(5, V, (B, T), generator=g)
        masked = torch.rand(B, T, generator=g) < mask_prob
        masked[:, 0] = False
        out.append({"input_ids": ids, "token_type_ids": (torch.arange(T) >= T // 2).long().expand(B, T).contiguous(),
                    "attention_mask": torch.ones(B, T, dtype=torch.long),
                    "mlm_labels": torch.where(masked, ids, -100), "nsp_labels": torch.randint(0, 2, (B,), generator=g)})
    return out


def make_models(cfg: BertConfig):
    import transformers

    torch.manual_seed(0)
    ours = BertForPreTraining(cfg).train()
    fields = {k: v for k, v in cfg.to_dict().items() if k not in ("position_embedding_type", "attn_implementation")}
    hf_cfg = transformers.BertConfig(**fields, position_embedding_type="absolute")
    theirs = transformers.BertForPreTraining(hf_cfg).train()
    return ours, theirs


def autocast(precision: str):
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")


def ours_step(model, opt, precision: str):
    """The library's own `train_step`, the one `python -m annotated_bert.train` runs (learning-rate
    schedule, forward, backward, clipping, AdamW, and the batch's metrics read back)."""
    schedule = Schedule(peak_lr=1e-4, total_steps=10**9, warmup=0.0)

    def step(b):
        train_step(model, b, opt, schedule, 0, precision=precision)
    return step


def hf_step(model, opt, precision: str):
    def step(b):
        with autocast(precision):
            out = model(input_ids=b["input_ids"], token_type_ids=b["token_type_ids"],
                        attention_mask=b["attention_mask"], labels=b["mlm_labels"],
                        next_sentence_label=1 - b["nsp_labels"])  # HF: 0 = "is next"
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return step


def time_steps(step, batches, n_steps: int) -> float:
    t = time.perf_counter()
    for i in range(n_steps):
        step(batches[i % len(batches)])
    return time.perf_counter() - t


def bench(name: str, cfg: BertConfig, batches: list[dict], steps: int, repeats: int, precision: str) -> dict:
    ours, theirs = make_models(cfg)
    adam = lambda m: torch.optim.AdamW(m.parameters(), lr=1e-4, eps=1e-6, weight_decay=0.01, fused=True)
    runs = {"annotated_bert": ours_step(ours, adam(ours), precision),
            "hugging_face": hf_step(theirs, adam(theirs), precision)}
    B = batches[0]["input_ids"].shape[0]
    for step in runs.values():                       # warm up allocators and kernels
        time_steps(step, batches, max(3, steps // 5))
    rounds = {k: [] for k in runs}
    for _ in range(repeats):
        for k, step in runs.items():
            rounds[k].append(steps * B / time_steps(step, batches, steps))
    ours_sps, hf_sps = (statistics.median(rounds[k]) for k in runs)
    T = batches[0]["input_ids"].shape[1]
    return {"config": name, "layers": cfg.num_hidden_layers, "hidden": cfg.hidden_size, "heads": cfg.num_attention_heads,
            "ffn": cfg.intermediate_size, "vocab": cfg.vocab_size, "batch": B, "seq": T,
            "annotated_bert_samples_per_s": ours_sps, "hf_samples_per_s": hf_sps, "ratio": ours_sps / hf_sps,
            "precision": precision, "dropout": cfg.hidden_dropout_prob, "rounds": rounds,
            "threads": torch.get_num_threads(), "torch": torch.__version__}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=("seed", "mini"), help="run one configuration")
    p.add_argument("--steps", type=int, default=None, help="steps per timed round (default: 60 seed, 4 mini)")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds per model; the median is reported")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="bf16: run both models' forward passes under bfloat16 autocast")
    p.add_argument("--dropout", type=float, default=0.1,
                   help="hidden and attention dropout of both models (attention dropout forces the unfused kernel)")
    p.add_argument("--json", help="also write the results to this JSON file")
    args = p.parse_args(argv)
    try:
        import transformers  # noqa: F401
    except ImportError:
        print("error: this benchmark compares against Hugging Face: pip install transformers", file=sys.stderr)
        return 2
    results = []
    if args.only in (None, "seed"):
        V = []
        batches = seed_batches(40, V)
        cfg = BertConfig(vocab_size=V[0], hidden_size=64, num_hidden_layers=1, num_attention_heads=4,
                         intermediate_size=36, pad_token_id=1, position_embedding_type="learned",
                         hidden_dropout_prob=args.dropout, attention_probs_dropout_prob=args.dropout)
        results.append(bench("seed", cfg, batches, args.steps or 60, args.repeats, args.precision))
    if args.only in (None, "mini"):
        cfg = BertConfig(vocab_size=30522, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                         intermediate_size=1024, position_embedding_type="learned",
                         hidden_dropout_prob=args.dropout, attention_probs_dropout_prob=args.dropout)
        results.append(bench("mini", cfg, synthetic_batches(4, 32, 128, 30522), args.steps or 4, args.repeats,
                             args.precision))
    print("| configuration | annotated_bert samples/s | Hugging Face samples/s | ratio |")
    print("| --- | --- | --- | --- |")
    for r in results:
        print(f"| {r['config']}: L{r['layers']}/H{r['hidden']}/A{r['heads']}/FF{r['ffn']}, V {r['vocab']:,}, "
              f"batch {r['batch']}, seq {r['seq']}, {r['precision']}, dropout {r['dropout']:g} | "
              f"{r['annotated_bert_samples_per_s']:.0f} | "
              f"{r['hf_samples_per_s']:.1f} | {r['ratio']:.2f}x |")
    if args.json:
        from annotated_bert.files import atomic_write_json
        atomic_write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
