"""Pretrain BERT on IMDb reviews with masked language modelling + next-sentence prediction (or,
with `--objective electra`, ELECTRA's replaced-token detection: annotated_bert/electra.py).

    python -m annotated_bert.train --data ../shared/data/imdb_train.csv.gz      # the walkthrough's run
    python -m annotated_bert.train --resume runs/pretrain                        # continue exactly
    torchrun --nproc_per_node 2 -m annotated_bert.train --data reviews.csv       # data parallel

Reads top to bottom: arguments, setup, data, model, optimizer and schedule (a pure get_lr), the
loop (a tqdm bar with live losses, validation at every epoch end, metrics.jsonl, checkpoints,
a loss-curve PNG). The optimizer is BERT's: AdamW, linear warmup then linear decay, gradient
clipping at 1.0, no weight decay on biases and LayerNorm.

Resuming is exact: the data order and the masks are functions of (seed, epoch), and the
checkpoint carries the RNG state, so an interrupted-and-resumed run computes the same losses as
an uninterrupted one. Ctrl-C saves a checkpoint at the last finished step; a second Ctrl-C quits.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import signal
import sys
import time
from collections.abc import Sequence

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm.auto import tqdm

from annotated_bert.checkpoints import CheckpointError, load_training_checkpoint, save_training_checkpoint
from annotated_bert.config import PRESETS, BertConfig, preset
from annotated_bert.data import DataError, read_reviews, resolve_data
from annotated_bert.pretraining import LAYOUTS, IMDBBertDataset, PretrainingDataset
from annotated_bert.electra import GENERATOR_FRACTION, RTD_WEIGHT, ElectraForPreTraining, generator_config
from annotated_bert.files import append_jsonl, drop_records_after, read_jsonl
from annotated_bert.model import BertForPreTraining
from annotated_bert.tokenization import Vocab, basic_english
from annotated_bert.wordpiece import WordPieceTokenizer
from annotated_bert.wordpiece_trainer import train_wordpiece

EXIT_INTERRUPTED = 130


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

# flag -> (test, what it must be); checked when the command line is parsed, before any data is read
TRAIN_RANGES = {
    "ds_from": at_least(0), "val_fraction": PROBABILITY, "percentile": ((lambda x: 0 < x <= 100), "in (0, 100]"),
    "context_length": at_least(1), "vocab_size": at_least(1), "min_freq": at_least(1),
    "mask_prob": ((lambda x: 0 < x < 1), "in (0, 1)"), "dropout": PROBABILITY,
    "epochs": at_least(1), "batch_size": at_least(1), "lr": POSITIVE, "warmup": at_least(0),
    "weight_decay": at_least(0), "clip": POSITIVE, "nsp_weight": at_least(0), "budget_minutes": POSITIVE,
    "eval_batch_size": at_least(1), "log_every": at_least(1), "save_every": at_least(0),
    "generator_size": ((lambda x: 0 < x <= 1), "in (0, 1]"), "rtd_weight": POSITIVE,
}


def check_ranges(p: argparse.ArgumentParser, args: argparse.Namespace, ranges: dict) -> None:
    """Usage and exit 2 (argparse's `p.error`) for the first flag outside its range; unset flags pass."""
    for name, (ok, what) in ranges.items():
        value = getattr(args, name)
        if value is not None and not ok(value):
            p.error(f"--{name.replace('_', '-')} must be {what}, got {value}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m annotated_bert.train",
        description="Pretrain a BERT (MLM + NSP) from scratch on IMDb reviews. The defaults are the "
                    "walkthrough's: the first 1,000 reviews, batch 12, 4 epochs, the 'seed' model "
                    "(width 64, 1 layer, 4 heads). Writes OUT/checkpoint.pt, OUT/metrics.jsonl and "
                    "OUT/loss_curve.png.",
        formatter_class=HelpFormatter)
    g = p.add_argument_group("data")
    g.add_argument("--data", action="append", metavar="PATH",
                   help="a CSV (plain or .gz) with a text column, the aclImdb folder or aclImdb_v1.tar.gz; "
                        "repeat to concatenate several. Default: data/aclImdb_v1.tar.gz, downloaded if missing")
    g.add_argument("--text-column", metavar="NAME", default=None,
                   help="the CSV column holding the text (default: the first of review, text, sentence); "
                        "other columns, labels included, are ignored")
    g.add_argument("--ds-from", type=int, default=0, help="first review (row) to use")
    g.add_argument("--ds-to", type=int, default=1000, help="one past the last review to use; -1 for all")
    g.add_argument("--val-fraction", type=float, default=0.1,
                   help="fraction of reviews held out for validation (split by review, never by sample)")
    g.add_argument("--percentile", type=float, default=90,
                   help="context length L = this percentile of sentence lengths (in tokens)")
    g.add_argument("--context-length", type=int, default=None, help="set L directly instead of the percentile")
    g.add_argument("--tokenizer", choices=("basic_english", "wordpiece"), default="basic_english",
                   help="basic_english: torchtext's word tokenizer (the walkthrough); wordpiece: BERT's subwords")
    g.add_argument("--vocab", metavar="PATH", help="with --tokenizer wordpiece: a BERT vocab.txt to use; "
                                                 "without it a WordPiece vocabulary is trained on the reviews")
    g.add_argument("--vocab-size", type=int, default=16000, help="size of a WordPiece vocabulary trained here")
    g.add_argument("--min-freq", type=int, default=2,
                   help="basic_english: keep tokens seen at least this often; rarer ones -> [UNK]")
    g.add_argument("--layout", choices=LAYOUTS, default="walkthrough",
                   help="walkthrough: [CLS] A [PAD].. [SEP] [CLS] B [PAD]..; standard: [CLS] A [SEP] B [SEP] [PAD]..; "
                        "packed: whole reviews cut into [CLS] ... [SEP] chunks of 2L+1 (MLM only, as RoBERTa)")
    g.add_argument("--masking", choices=("static", "dynamic"), default="static",
                   help="static: masks fixed when the data is built (BERT); dynamic: new masks every epoch (RoBERTa)")
    g.add_argument("--mask-prob", type=float, default=0.15, help="fraction of each sentence's tokens chosen for MLM")
    g.add_argument("--no-nsp", action="store_true",
                   help="MLM only, as RoBERTa: train on consecutive sentence pairs, no random negatives, no NSP loss")

    g = p.add_argument_group("model")
    g.add_argument("--preset", default="seed", help=f"model size: {', '.join(PRESETS)}")
    g.add_argument("--objective", choices=("mlm", "electra"), default="mlm",
                   help="mlm: BERT's masked language modelling (+ NSP unless --no-nsp); electra: a small "
                        "generator fills the masked positions and the model (the discriminator, --preset) "
                        "learns from every token whether it was replaced (Clark et al. 2020); no NSP")
    g.add_argument("--generator-size", type=float, default=GENERATOR_FRACTION,
                   help="with --objective electra: the generator's width, heads and feed-forward as a "
                        "fraction of the model's")
    g.add_argument("--rtd-weight", type=float, default=RTD_WEIGHT,
                   help="with --objective electra: loss = generator MLM loss + RTD_WEIGHT * replaced-token loss")
    g.add_argument("--init", metavar="PATH",
                   help="continued pretraining: start from a Hugging Face BERT directory or a training run's "
                        "directory, with its own vocabulary (replaces --preset and --tokenizer); NSP is trained "
                        "only when the checkpoint has an NSP head")
    g.add_argument("--positions", choices=("learned", "sinusoidal"), default=None,
                   help="position encoding (default: the preset's: sinusoidal for seed, learned for the others); "
                        "fixed sin/cos positions also serve fine-tuning inputs longer than the pretraining ones")
    g.add_argument("--dropout", type=float, default=None,
                   help="hidden and attention dropout probability (default: the preset's: 0 for seed, 0.1 for the others)")
    g.add_argument("--attn", choices=("sdpa", "eager"), default="sdpa",
                   help="attention kernel: PyTorch's fused one, or the written-out one (same result, slower)")

    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, default=4, help="passes over the training samples")
    g.add_argument("--batch-size", type=int, default=12, help="samples per optimizer step, over all processes")
    g.add_argument("--lr", type=float, default=2e-3,
                   help="peak learning rate (the default suits the seed model; BERT-base used 1e-4)")
    g.add_argument("--warmup", type=float, default=0.06,
                   help="warmup length: a fraction of all steps if < 1, else a number of steps")
    g.add_argument("--weight-decay", type=float, default=0.1,
                   help="AdamW decay, not on biases and LayerNorm (BERT used 0.01; 0.1 generalises better on small data)")
    g.add_argument("--clip", type=float, default=1.0, help="clip the gradient norm to this value")
    g.add_argument("--nsp-weight", type=float, default=1.0, help="loss = mlm_loss + NSP_WEIGHT * nsp_loss")
    g.add_argument("--budget-minutes", type=float, default=None,
                   help="stop after this much training time, then validate and save; the learning rate "
                        "follows steps or time, whichever is further, so it reaches 0 when the budget ends")

    g = p.add_argument_group("run")
    g.add_argument("--seed", type=int, default=0, help="one seed: same data, masks, init and order")
    g.add_argument("--out", default=os.path.join("runs", "pretrain"), help="directory for checkpoint, metrics, plot")
    g.add_argument("--resume", metavar="DIR", help="continue the run saved in DIR with its own settings")
    g.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:N, mps")
    g.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="bf16: autocast matmuls to bfloat16 (faster on GPUs and on CPUs with AVX-512 BF16 or AMX; "
                        "slower on CPUs without them, which only emulate it)")
    g.add_argument("--compile", action="store_true",
                   help="run the training forward pass through torch.compile: about a minute of compiling "
                        "at the start, then faster steps (1.25x for the IMDb bert-mini pretraining on a "
                        "2-core CPU, fp32); may change between runs, like --device")
    g.add_argument("--eval-batch-size", type=int, default=256,
                   help="samples per batch when validating (no gradients: can be large)")
    g.add_argument("--log-every", type=int, default=50, help="write a train record to metrics.jsonl every N steps")
    g.add_argument("--save-every", type=int, default=1000, help="also checkpoint every N steps (0: epoch ends only)")
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def get_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(argv)
    if args.layout == "packed" or args.objective == "electra":
        args.no_nsp = True  # packed: one text per sample, nothing to predict a next sentence for
    if args.objective == "electra" and args.init:
        p.error("--objective electra starts from random weights (a generator and a discriminator); "
                "--init continues MLM pretraining")
    if args.preset not in PRESETS:
        p.error(f"unknown preset {args.preset!r}; choose one of: {', '.join(PRESETS)}")
    if args.ds_to == -1:
        args.ds_to = None
    check_ranges(p, args, TRAIN_RANGES)
    return args


def get_lr(step: float, total_steps: int, warmup_steps: int, peak_lr: float) -> float:
    """Linear warmup to peak_lr, then linear decay to 0 (BERT's schedule). With a time budget,
    `step` is how far along the run is in steps or in time, whichever is further."""
    if step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    return peak_lr * max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


def build_data(args: argparse.Namespace, vocab_tokens: list[str] | None = None) -> IMDBBertDataset:
    """The reviews, a tokenizer and its vocabulary, then the pairs. `vocab_tokens` (on resume) is
    the checkpoint's own WordPiece vocabulary."""
    log = print if is_main() else (lambda *_: None)
    reviews = read_reviews(resolve_data(args.data), args.ds_from, args.ds_to, log=log, text_column=args.text_column)
    tokenizer, vocab = basic_english, None
    if args.tokenizer == "wordpiece":
        if vocab_tokens:
            wordpiece = WordPieceTokenizer(vocab_tokens)
        elif args.vocab:
            try:
                wordpiece = WordPieceTokenizer.from_file(args.vocab)
            except FileNotFoundError as e:
                raise DataError(f"--vocab: {e}") from None
        else:
            log(f"training a {args.vocab_size:,}-token WordPiece vocabulary on {len(reviews):,} reviews")
            try:
                wordpiece = train_wordpiece(reviews["review"], vocab_size=args.vocab_size,
                                            show_progress=is_main() and not args.quiet)
            except ValueError as e:  # too small for the alphabet
                raise DataError(f"{e}; pass a larger --vocab-size") from None
        tokenizer, vocab = wordpiece.tokenize, Vocab(wordpiece.ids_to_tokens)
    return IMDBBertDataset(
        reviews, 0, None, tokenizer=tokenizer, vocab=vocab, min_freq=args.min_freq,
        percentile=args.percentile, context_length=args.context_length, layout=args.layout,
        nsp=not args.no_nsp, masking=args.masking, mask_prob=args.mask_prob,
        val_fraction=args.val_fraction, seed=args.seed, verbose=is_main(), progress=not args.quiet)


def init_vocabulary(path: str) -> tuple[str, list[str]]:
    """The tokenizer kind and vocabulary of a checkpoint to continue from: a Hugging Face
    directory's vocab.txt (WordPiece), or a training run's own."""
    if os.path.exists(os.path.join(path, "checkpoint.pt")) and not any(
            os.path.exists(os.path.join(path, f)) for f in ("model.safetensors", "pytorch_model.bin")):
        state = load_training_checkpoint(path)
        return state["data"]["tokenizer"], state["vocab"]
    vocab_file = os.path.join(path, "vocab.txt")
    if not os.path.exists(vocab_file):
        raise CheckpointError(f"{path} has no vocab.txt: continued pretraining needs the checkpoint's own vocabulary")
    return "wordpiece", WordPieceTokenizer.from_file(vocab_file).ids_to_tokens


def fingerprint(ds: IMDBBertDataset) -> str:
    """Identifies the data a checkpoint was trained on, so a resume on different data is refused."""
    h = hashlib.sha1()
    h.update("\n".join(ds.vocab.itos).encode())
    h.update(ds.original_ids[:: max(1, len(ds) // 1000)].numpy().tobytes())
    return f"{len(ds)}-{h.hexdigest()[:16]}"


# --------------------------------------------------------------------- distributed helpers

def is_main() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def setup_device(arg: str, precision: str = "fp32") -> torch.device:
    """Pick the device; under torchrun, also join the process group (gloo on CPU, nccl on GPU).
    Warns when `precision` is bf16 on a CPU that only emulates it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if arg == "auto":
        arg = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(arg)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DataError("--device cuda was asked for but no CUDA GPU is available; use --device cpu")
        if world > 1:
            device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if (warning := precision_warning(device, precision)) and is_main():
        print(warning, file=sys.stderr)
    return device


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    if not dist.is_initialized():
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


# ------------------------------------------------------------------------------- evaluation

@torch.no_grad()
def evaluate(model: BertForPreTraining, ds: PretrainingDataset, batch_size: int, device: torch.device,
             precision: str = "fp32") -> dict[str, float]:
    """Held-out MLM loss and accuracy (over masked positions only) and NSP loss and accuracy; for
    ELECTRA the generator's MLM and the discriminator's replaced-token loss and accuracy (over real
    tokens; the generator's samples are drawn from a fixed seed, so every evaluation sees the same)."""
    was_training = model.training
    model.eval()
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    # mlm loss sum, mlm correct, masked count, nsp loss sum, nsp correct, pairs, rtd loss, rtd correct, replaced
    sums = [0.0] * 9
    tokens = 0.0  # real tokens (the denominator of the last three)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(rank)
        for start in range(rank * batch_size, len(ds), world * batch_size):
            batch = {k: v.to(device) for k, v in ds.batch(torch.arange(start, min(start + batch_size, len(ds)))).items()}
            with autocast(device, precision):
                out = model(**batch)
            targets = batch["mlm_labels"][batch["mlm_labels"] != -100]
            sums[0] += F.cross_entropy(out.mlm_logits.float(), targets, reduction="sum").item()
            sums[1] += (out.mlm_logits.argmax(-1) == targets).sum().item()
            sums[2] += len(targets)
            if "nsp_labels" in batch:
                sums[3] += F.cross_entropy(out.nsp_logits.float(), batch["nsp_labels"], reduction="sum").item()
                sums[4] += (out.nsp_logits.argmax(-1) == batch["nsp_labels"]).sum().item()
                sums[5] += len(batch["nsp_labels"])
            if getattr(out, "rtd_loss", None) is not None:
                n = batch["attention_mask"].sum().item()
                sums[6] += out.rtd_loss.item() * n
                sums[7] += out.rtd_acc.item() * n
                sums[8] += out.replaced_frac.item() * n
                tokens += n
    s = all_reduce_sum(sums + [tokens], device)
    model.train(was_training)
    metrics = {"mlm_loss": s[0] / max(s[2], 1), "mlm_acc": s[1] / max(s[2], 1)}
    if s[5]:
        metrics |= {"nsp_loss": s[3] / s[5], "nsp_acc": s[4] / s[5]}
    if s[9]:
        metrics |= {"rtd_loss": s[6] / s[9], "rtd_acc": s[7] / s[9], "rtd_replaced": s[8] / s[9]}
    return metrics


def autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
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


def binary_entropy(p: float) -> float:
    """-p ln p - (1 - p) ln(1 - p): the cross-entropy of always predicting p, the best a
    discriminator that ignores its input can do when a share p of the tokens is replaced."""
    return 0.0 if p <= 0 or p >= 1 else -p * math.log(p) - (1 - p) * math.log(1 - p)


def plot_losses(metrics_path: str, png_path: str) -> None:
    """Training and validation losses against steps, written atomically as a PNG."""
    from matplotlib.figure import Figure  # no pyplot: leaves the caller's (e.g. a notebook's) backend alone

    from annotated_bert.files import atomic_write

    records = read_jsonl(metrics_path)
    tasks = ["mlm"] + [t for t in ("nsp", "rtd") if any(f"{t}_loss" in r for r in records)]  # MLM only: one panel
    fig = Figure(figsize=(5.5 * len(tasks), 4))
    axes = fig.subplots(1, len(tasks), squeeze=False)[0]
    for ax, task in zip(axes, tasks):
        for split, style in (("train", "-"), ("val", "o-")):
            pts = [(r["step"], r[f"{task}_loss"]) for r in records if r["split"] == split and f"{task}_loss" in r]
            if pts:
                ax.plot(*zip(*pts), style, label=split, alpha=0.8 if split == "train" else 1.0)
        title = {"mlm": "MLM loss", "nsp": "NSP loss", "rtd": "replaced-token detection loss (ELECTRA)"}[task]
        ax.set(title=title, xlabel="optimizer step", ylabel="cross-entropy")
        if task == "nsp":
            ax.axhline(math.log(2), color="gray", ls=":", label="chance (ln 2)")
        if task == "rtd":  # the loss of one constant guess, the replaced share: below it, the model reads context
            pts = [(r["step"], binary_entropy(r["rtd_replaced"])) for r in records
                   if r["split"] == "train" and "rtd_replaced" in r]
            if pts:
                ax.plot(*zip(*pts), color="gray", ls=":", label="constant guess (entropy of the replaced share)")
        ax.legend()
    fig.tight_layout()
    atomic_write(png_path, lambda f: fig.savefig(f, format="png", dpi=110))


# ------------------------------------------------------------------------------------ main

def main(argv: Sequence[str] | None = None) -> int:
    args = get_args(argv)
    try:
        code = train(args)
        if dist.is_initialized():
            dist.barrier()  # rank 0 may still be saving and plotting: no rank leaves the group before it is done
        return code
    except (DataError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def parameter_groups(model: torch.nn.Module, weight_decay: float, layer_lr_decay: float = 1.0) -> list[dict]:
    """AdamW parameter groups: weight decay on matrices only (not on biases and LayerNorm), and with
    `layer_lr_decay` < 1 a learning-rate scale per depth (Howard & Ruder 2018; Clark et al. 2020):
    the task head and pooler 1, encoder layer i (0-based, of L) `decay ** (L - i)`, the embeddings
    `decay ** (L + 1)`. The pretrained lower layers then move less than the new head on top."""
    n_layers = model.config.num_hidden_layers

    def depth(name: str) -> int:  # 0 = embeddings, i + 1 = encoder layer i, n_layers + 1 = pooler and head
        if ".embeddings." in f".{name}":
            return 0
        if ".encoder.layer." in f".{name}":
            return int(name.split(".encoder.layer.")[-1].split(".")[0]) + 1
        return n_layers + 1

    groups: dict[tuple[float, bool], dict] = {}  # without decay: [matrices, the rest], as saved checkpoints hold
    for name, p in model.named_parameters():
        scale, decays = layer_lr_decay ** (n_layers + 1 - depth(name)), p.dim() >= 2
        group = groups.setdefault((scale, not decays), {"params": [], "weight_decay": weight_decay if decays else 0.0,
                                                        "lr_scale": scale})
        group["params"].append(p)
    return [groups[k] for k in sorted(groups)]


def resume_settings(args: argparse.Namespace) -> tuple[dict | None, argparse.Namespace]:
    """With --resume DIR: the saved state and the run's own settings (only the device, compiling
    and the progress bars may change); otherwise (None, args). Options newer than the checkpoint
    keep their defaults."""
    if not args.resume:
        return None, args
    state = load_training_checkpoint(args.resume)
    now = {k: v for k, v in vars(args).items() if k in ("device", "compile", "quiet")}
    return state, argparse.Namespace(**{**vars(args), **state["args"], "resume": args.resume, "out": args.resume, **now})


def train(args: argparse.Namespace) -> int:
    # ---- setup
    state, args = resume_settings(args)
    device = setup_device(args.device, args.precision)
    dropout = {} if args.dropout is None else {"hidden_dropout_prob": args.dropout,
                                               "attention_probs_dropout_prob": args.dropout}
    init_model, init_vocab = None, None
    if args.init and state is None:  # continued pretraining (a resume restores its weights instead)
        args.tokenizer, init_vocab = init_vocabulary(args.init)
        init_model, info = BertForPreTraining.from_pretrained(args.init, output_loading_info=True,
                                                              attn_implementation=args.attn, **dropout)
        if any(k.startswith("cls.seq_relationship") for k in info["missing_keys"]) and not args.no_nsp:
            if is_main():
                print(f"{args.init} has no NSP head: training MLM only (as with --no-nsp)")
            args.no_nsp = True
    world = dist.get_world_size() if dist.is_initialized() else 1
    rank = dist.get_rank() if dist.is_initialized() else 0
    if args.batch_size % world:
        raise DataError(f"--batch-size {args.batch_size} must be divisible by the {world} processes")
    torch.manual_seed(args.seed)

    # ---- data
    ds = build_data(args, state["vocab"] if state is not None else init_vocab)
    if state is not None and state["data_fingerprint"] != fingerprint(ds):
        raise CheckpointError(f"the data differs from the data {args.resume} was trained on; "
                              f"resume with the same --data files")
    steps_per_epoch = len(ds) // args.batch_size
    if steps_per_epoch == 0:
        raise DataError(f"only {len(ds)} training samples, fewer than one batch of {args.batch_size}; "
                        f"use more reviews or a smaller --batch-size")
    total_steps = steps_per_epoch * args.epochs
    warmup_steps = int(args.warmup * total_steps) if args.warmup < 1 else int(args.warmup)
    local_batch = args.batch_size // world

    # ---- model
    electra = getattr(args, "objective", "mlm") == "electra"  # (checkpoints older than the flag: mlm)
    if init_model is not None:       # continued pretraining
        model, config = init_model, init_model.config
    else:                            # from scratch, or a resume's own architecture (weights are loaded below)
        positions = {"position_embedding_type": args.positions} if args.positions else {}
        config = BertConfig.from_dict(state["config"]) if state is not None else preset(
            args.preset, vocab_size=len(ds.vocab), pad_token_id=ds.special.pad,
            max_position_embeddings=max(512, ds.seq_len), attn_implementation=args.attn, **dropout, **positions)
        model = (ElectraForPreTraining(config, args.generator_size, args.rtd_weight) if electra
                 else BertForPreTraining(config))
    if ds.seq_len > config.max_position_embeddings:
        raise DataError(f"sequences of {ds.seq_len} tokens exceed the model's {config.max_position_embeddings} "
                        f"positions; lower --context-length")
    model = model.to(device).train()
    optimizer = torch.optim.AdamW(parameter_groups(model, args.weight_decay), lr=args.lr, betas=(0.9, 0.999), eps=1e-6,
                                  fused=device.type in ("cpu", "cuda") or None)
    epoch, step_in_epoch, elapsed = 0, 0, 0.0
    budget_s = args.budget_minutes * 60 if args.budget_minutes else None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        epoch, step_in_epoch, elapsed = state["epoch"], state["step_in_epoch"], state.get("elapsed", 0.0)
        torch.set_rng_state(state["rng"]["torch"])
        if device.type == "cuda" and "cuda" in state["rng"]:
            torch.cuda.set_rng_state(state["rng"]["cuda"], device)
    steps_done = epoch * steps_per_epoch + step_in_epoch
    ddp_model = model
    if world > 1:
        ddp_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=args.no_nsp)  # the NSP head (ELECTRA: the pooler) gets no gradient
    # compiled: the same module and weights (checkpoints and evaluation use `model` as it is)
    forward = torch.compile(ddp_model) if args.compile else ddp_model

    os.makedirs(args.out, exist_ok=True)
    metrics_path = os.path.join(args.out, "metrics.jsonl")
    if is_main():
        layers = f"{config.num_hidden_layers} layer" + ("s" if config.num_hidden_layers != 1 else "")
        print(f"model: preset {args.preset!r}, {model.num_parameters():,} parameters "
              f"({layers}, hidden {config.hidden_size}, {config.num_attention_heads} heads); "
              f"device {device}, {world} process(es)")
        if electra:
            gen = generator_config(config, args.generator_size)
            print(f"ELECTRA: the model above is the discriminator ({model.bert.num_parameters():,} parameters, "
                  f"what fine-tuning keeps); the generator is {gen.num_hidden_layers} layers of hidden "
                  f"{gen.hidden_size} on the shared embeddings; loss = mlm + {args.rtd_weight:g} * rtd")
        print(f"training: {len(ds):,} samples, {args.batch_size} per step, {steps_per_epoch:,} steps per epoch, "
              f"{args.epochs} epoch{'s' if args.epochs != 1 else ''}, peak lr {args.lr:g}, {warmup_steps} warmup steps")
        if state is None and os.path.exists(metrics_path):
            os.remove(metrics_path)  # a fresh run in an old directory starts a fresh log
        if state is not None:
            print(f"resuming {args.resume} at epoch {epoch + 1}, step {step_in_epoch} of {steps_per_epoch}")
            # the log may run past the checkpoint (steps done before the interruption): those steps are redone
            drop_records_after(metrics_path, state.get("global_step", epoch * steps_per_epoch + step_in_epoch))

    def checkpoint_state() -> dict:
        rng = {"torch": torch.get_rng_state()}
        if device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(device)
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "elapsed": elapsed, "rng": rng, "epoch": epoch, "step_in_epoch": step_in_epoch,
                "global_step": steps_done if epoch >= args.epochs else epoch * steps_per_epoch + step_in_epoch,
                "args": vars(args),
                "config": config.to_dict(), "vocab": ds.vocab.itos, "data_fingerprint": fingerprint(ds),
                "data": {"context_length": ds.context_length, "layout": ds.layout, "tokenizer": args.tokenizer}}

    def save() -> None:
        if is_main():
            save_training_checkpoint(args.out, checkpoint_state())

    # Ctrl-C: finish the current step, save, exit; a second Ctrl-C quits at once
    stop = {"requested": False}

    def on_sigint(signum, frame):
        if stop["requested"]:
            raise KeyboardInterrupt
        stop["requested"] = True
        if is_main():
            tqdm.write("interrupted: saving a checkpoint after this step (Ctrl-C again to quit now)")

    previous_handler = signal.signal(signal.SIGINT, on_sigint)

    # ---- the loop
    model.train()
    try:
        while epoch < args.epochs:
            ds.set_epoch(epoch)
            order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(args.seed * 1000 + epoch))
            bar = tqdm(range(step_in_epoch, steps_per_epoch), desc=f"epoch {epoch + 1}/{args.epochs}",
                       initial=step_in_epoch, total=steps_per_epoch, disable=args.quiet or not is_main(),
                       dynamic_ncols=True)
            window = {"loss": 0.0, "mlm_loss": 0.0, "nsp_loss": 0.0, "mlm_acc": 0.0, "nsp_acc": 0.0, "n": 0}
            if electra:
                window |= {"rtd_loss": 0.0, "rtd_acc": 0.0, "rtd_replaced": 0.0}
            t0, epoch_samples, epoch_t0 = time.perf_counter(), 0, time.perf_counter()
            out_of_time = False
            for step_in_epoch in bar:
                t_step = time.perf_counter()
                global_step = epoch * steps_per_epoch + step_in_epoch
                progress = global_step if budget_s is None else max(global_step, elapsed / budget_s * total_steps)
                lr = get_lr(progress, total_steps, warmup_steps, args.lr)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                first = step_in_epoch * args.batch_size + rank * local_batch
                batch = {k: v.to(device, non_blocking=True)
                         for k, v in ds.batch(order[first:first + local_batch]).items()}
                with autocast(device, args.precision):
                    out = forward(**batch)
                loss = out.loss if out.nsp_loss is None else out.mlm_loss + args.nsp_weight * out.nsp_loss
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
                if not torch.isfinite(grad_norm):
                    # every process sees the same all-reduced gradients, so all stop together
                    g = epoch * steps_per_epoch + step_in_epoch
                    msg = (f"the loss became non-finite ({loss.item():.4g}) at epoch {epoch + 1}, step {g}: "
                           f"training stopped. The last good checkpoint in {args.out} is kept; "
                           f"try a lower --lr (now {args.lr:g}) or --precision fp32")
                    if is_main():
                        print(f"error: {msg}", file=sys.stderr)
                    return 1
                optimizer.step()

                # running averages for the bar and the log (.item() syncs, so only what's needed)
                with torch.no_grad():
                    window["n"] += 1
                    window["loss"] += loss.item()
                    window["mlm_loss"] += out.mlm_loss.item()
                    targets = batch["mlm_labels"][batch["mlm_labels"] != -100]
                    window["mlm_acc"] += (out.mlm_logits.argmax(-1) == targets).float().mean().item()
                    if out.nsp_loss is not None:
                        window["nsp_loss"] += out.nsp_loss.item()
                        window["nsp_acc"] += (out.nsp_logits.argmax(-1) == batch["nsp_labels"]).float().mean().item()
                    if electra:
                        window["rtd_loss"] += out.rtd_loss.item()
                        window["rtd_acc"] += out.rtd_acc.item()
                        window["rtd_replaced"] += out.replaced_frac.item()
                epoch_samples += args.batch_size
                global_step = epoch * steps_per_epoch + step_in_epoch + 1
                if global_step % args.log_every == 0 or step_in_epoch == steps_per_epoch - 1:
                    n = window.pop("n")
                    avg = {k: v / n for k, v in window.items()}
                    if args.no_nsp:
                        avg = {k: v for k, v in avg.items() if not k.startswith("nsp")}
                    sps = n * args.batch_size / (time.perf_counter() - t0)
                    bar.set_postfix(loss=f"{avg['loss']:.3f}", mlm=f"{avg['mlm_loss']:.3f}",
                                    **({"nsp": f"{avg['nsp_loss']:.3f}"} if not args.no_nsp else {}),
                                    **({"rtd": f"{avg['rtd_loss']:.3f}"} if electra else {}),
                                    lr=f"{lr:.2e}")
                    if is_main():
                        append_jsonl(metrics_path, {"epoch": epoch + 1, "step": global_step, "split": "train",
                                                    "lr": lr, "samples_per_s": sps, **avg})
                    window = {k: 0.0 for k in window} | {"n": 0}
                    t0 = time.perf_counter()
                step_in_epoch += 1  # steps done in this epoch (what a checkpoint records)
                elapsed += time.perf_counter() - t_step
                flags = [float(stop["requested"]), float(budget_s is not None and elapsed >= budget_s)]
                stop_now, out_of_time = (x > 0 for x in (all_reduce_sum(flags, device) if world > 1 else flags))
                if out_of_time:
                    if is_main():
                        tqdm.write(f"time budget of {args.budget_minutes:g} minutes reached at step {global_step}")
                    break
                if stop_now:
                    save()
                    if is_main():
                        print(f"saved {args.out}/checkpoint.pt at step {global_step}; "
                              f"continue with: python -m annotated_bert.train --resume {args.out}")
                    return EXIT_INTERRUPTED
                if args.save_every and global_step % args.save_every == 0 and step_in_epoch < steps_per_epoch:
                    save()
            bar.close()

            # ---- end of epoch (or of the time budget): validate, log, checkpoint, plot
            train_sps = epoch_samples / (time.perf_counter() - epoch_t0)
            steps_done = epoch * steps_per_epoch + step_in_epoch
            epoch_label = epoch + 1  # the epoch just finished, or the one the time budget cut short
            # out of time, the saved state reads as the last epoch, so that --resume has nothing left to do
            epoch, step_in_epoch = (epoch + 1, 0) if not out_of_time else (args.epochs, step_in_epoch)
            if ds.val is not None:
                ds.val.set_epoch(0)
                val = evaluate(model, ds.val, args.eval_batch_size, device, args.precision)
                record = {"epoch": epoch_label, "step": steps_done, "split": "val",
                          "samples_per_s": train_sps, **val}
                if is_main():
                    append_jsonl(metrics_path, record)
                    print(f"epoch {epoch_label}: validation " + ", ".join(
                        f"{k} {v:.4f}" for k, v in val.items()) + f" ({train_sps:.0f} training samples/s)")
            save()
            if is_main():
                plot_losses(metrics_path, os.path.join(args.out, "loss_curve.png"))
    finally:
        signal.signal(signal.SIGINT, previous_handler)
    if is_main():
        print(f"done: {args.out}/checkpoint.pt, metrics.jsonl, loss_curve.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
