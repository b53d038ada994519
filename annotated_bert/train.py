"""Pretrain BERT on reviews with masked language modelling + next-sentence prediction (or, with
`--objective electra`, ELECTRA's replaced-token detection).

    python -m annotated_bert.train                                   # the walkthrough's run, on the embedded sample
    python -m annotated_bert.train --resume runs/pretrain            # continue exactly
    python -m annotated_bert.train --data path/to/reviews.csv --ds-to -1 --preset bert-mini
    torchrun --nproc_per_node 2 -m annotated_bert.train --data path/to/reviews.csv   # data parallel

A command-line layer over the library: the flags become a dataset (annotated_bert.pretraining),
a model (annotated_bert.model / electra) and a plan, and annotated_bert.training.fit runs the loop
(a progress bar with live losses, validation at every epoch end, metrics.jsonl, checkpoints, a
loss-curve PNG). Ctrl-C saves a checkpoint at the last finished step; a second Ctrl-C quits.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import torch

from annotated_bert.checkpoints import CheckpointError
from annotated_bert.config import PRESETS, config_from_dict, preset
from annotated_bert.data import DataError, read_reviews, resolve_data
from annotated_bert.electra import GENERATOR_FRACTION, RTD_WEIGHT, ElectraForPreTraining, generator_config
from annotated_bert.interop import load_tokenizer
from annotated_bert.models import model_type_of, pretraining_class
from annotated_bert.plots import plot_losses
from annotated_bert.pretraining import LAYOUTS, IMDBBertDataset
from annotated_bert.runtime import (POSITIVE, PROBABILITY, HelpFormatter, at_least, check_ranges, distributed,
                                    is_main, run_cli, say)
from annotated_bert.tokenization import Vocab, WordTokenizer, basic_english
from annotated_bert.training import Plan, Schedule, TrainState, evaluate, fit, make_optimizer, restore, start_run
from annotated_bert.wordpiece import WordPieceTokenizer
from annotated_bert.wordpiece_trainer import train_wordpiece

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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m annotated_bert.train",
        description="Pretrain a BERT (MLM + NSP) from scratch on IMDb reviews. The defaults are the "
                    "walkthrough's: the first 1,000 reviews (the embedded sample), batch 12, 4 epochs, the "
                    "'seed' model (width 64, 1 layer, 4 heads). Writes OUT/checkpoint.pt, OUT/metrics.jsonl "
                    "and OUT/loss_curve.png.",
        formatter_class=HelpFormatter)
    g = p.add_argument_group("data")
    g.add_argument("--data", action="append", metavar="PATH",
                   help="a CSV or TSV (plain or gzipped) with a text column, the aclImdb folder or "
                        "aclImdb_v1.tar.gz; repeat to concatenate several. Default: the embedded sample, "
                        "data/imdb_sample.csv.gz (the first 1,000 IMDb train reviews); the full 75,000 reviews: "
                        "python -m annotated_bert.data download, then --data data/aclImdb_v1.tar.gz --ds-to -1")
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
                        "packed: whole reviews cut into [CLS] ... [SEP] chunks of 2L+1 (MLM only, as RoBERTa), "
                        "or with a --pair-task into [CLS] A [SEP] B [SEP] chunks of whole sentences")
    g.add_argument("--masking", choices=("static", "dynamic"), default="static",
                   help="static: masks fixed when the data is built (BERT); dynamic: new masks every epoch (RoBERTa)")
    g.add_argument("--mask-prob", type=float, default=0.15, help="fraction of each sentence's tokens chosen for MLM")
    g.add_argument("--pair-task", choices=("nsp", "sop", "none"), default=None,
                   help="the sentence-pair objective beside MLM: nsp (BERT: B follows A, or is from another "
                        "review), sop (ALBERT: A and B in order, or swapped) or none (default: sop for ALBERT "
                        "presets, nsp for the others; none with --layout packed or --objective electra)")
    g.add_argument("--no-nsp", action="store_true",
                   help="MLM only, as RoBERTa: train on consecutive sentence pairs, no random negatives, no NSP "
                        "loss (the same as --pair-task none)")

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
    g.add_argument("--nsp-weight", type=float, default=1.0,
                   help="loss = mlm_loss + NSP_WEIGHT * the pair task's loss (NSP or SOP)")
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
    if args.objective == "electra" and args.init:
        p.error("--objective electra starts from random weights (a generator and a discriminator); "
                "--init continues MLM pretraining")
    if args.preset not in PRESETS:
        p.error(f"unknown preset {args.preset!r}; choose one of: {', '.join(PRESETS)}")
    albert = PRESETS[args.preset].get("model_type") == "albert"
    if args.objective == "electra" and (albert or args.pair_task not in (None, "none")):
        p.error("--objective electra trains a BERT discriminator on replaced tokens alone: no ALBERT preset, "
                "no --pair-task")
    if args.pair_task is None:  # packed: one text per sample unless a pair task asks for segments
        args.pair_task = "none" if args.no_nsp or args.layout == "packed" or args.objective == "electra" else (
            "sop" if albert else "nsp")
    elif args.no_nsp and args.pair_task != "none":
        p.error(f"--no-nsp and --pair-task {args.pair_task} contradict each other")
    args.no_nsp = args.pair_task == "none"
    if args.ds_to == -1:
        args.ds_to = None
    check_ranges(p, args, TRAIN_RANGES)
    return args


def build_data(args: argparse.Namespace, vocab_tokens: list[str] | None = None) -> IMDBBertDataset:
    """The reviews, a tokenizer and its vocabulary, then the pairs. `vocab_tokens` (on resume, or
    from --init) is the checkpoint's own vocabulary."""
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
    elif vocab_tokens:
        vocab = Vocab(vocab_tokens)
    return IMDBBertDataset(
        reviews, 0, None, tokenizer=tokenizer, vocab=vocab, min_freq=args.min_freq,
        percentile=args.percentile, context_length=args.context_length, layout=args.layout,
        pair_task=None if args.pair_task == "none" else args.pair_task, masking=args.masking, mask_prob=args.mask_prob,
        val_fraction=args.val_fraction, seed=args.seed, verbose=is_main(), progress=not args.quiet)


def build_model(args: argparse.Namespace, ds: IMDBBertDataset, checkpoint: dict | None, dropout: dict):
    """A resumed run's own architecture, or a fresh model of --preset (a resumed run's weights are
    loaded by `training.restore`)."""
    positions = {"position_embedding_type": args.positions} if args.positions else {}
    config = config_from_dict(checkpoint["config"]) if checkpoint is not None else preset(
        args.preset, vocab_size=len(ds.vocab), pad_token_id=ds.special.pad,
        max_position_embeddings=max(512, ds.seq_len), attn_implementation=args.attn, **dropout, **positions)
    if args.objective == "electra":
        return ElectraForPreTraining(config, args.generator_size, args.rtd_weight)
    model = pretraining_class(config.model_type)(config)
    model.pair_weight = args.nsp_weight   # loss = mlm_loss + weight * the pair task's loss
    return model


def train(args: argparse.Namespace) -> int:
    # ---- setup
    checkpoint, args, device, rank, world = start_run(args)
    dropout = {} if args.dropout is None else {"hidden_dropout_prob": args.dropout,
                                               "attention_probs_dropout_prob": args.dropout}
    init_model = init_vocab = None
    if args.init and checkpoint is None:  # continued pretraining, with the checkpoint's own vocabulary
        tok = load_tokenizer(args.init)
        args.tokenizer = "basic_english" if isinstance(tok, WordTokenizer) else "wordpiece"
        init_vocab = list(tok.ids_to_tokens)
        init_model, info = pretraining_class(model_type_of(args.init)).from_pretrained(
            args.init, output_loading_info=True, attn_implementation=args.attn, **dropout)
        init_model.pair_weight = args.nsp_weight
        pair_head = ("sop_classifier.", "cls.seq_relationship")
        if any(k.startswith(pair_head) for k in info["missing_keys"]) and args.pair_task != "none":
            say(f"{args.init} has no sentence-pair head: training MLM only (as with --no-nsp)")
            args.pair_task, args.no_nsp = "none", True
    torch.manual_seed(args.seed)

    # ---- data
    ds = build_data(args, checkpoint["vocab"] if checkpoint is not None else init_vocab)
    if checkpoint is not None and checkpoint["data_fingerprint"] != ds.fingerprint():
        raise CheckpointError(f"the data differs from the data {args.resume} was trained on; "
                              f"resume with the same --data files")
    steps_per_epoch = len(ds) // args.batch_size   # the last partial batch is dropped
    if steps_per_epoch == 0:
        raise DataError(f"only {len(ds)} training samples, fewer than one batch of {args.batch_size}; "
                        f"use more reviews or a smaller --batch-size")
    total_steps = steps_per_epoch * args.epochs
    warmup_steps = int(args.warmup * total_steps) if args.warmup < 1 else int(args.warmup)

    # ---- model and optimizer
    model = init_model if init_model is not None else build_model(args, ds, checkpoint, dropout)
    config = model.config
    if ds.seq_len > config.max_position_embeddings:
        raise DataError(f"sequences of {ds.seq_len} tokens exceed the model's {config.max_position_embeddings} "
                        f"positions; lower --context-length")
    model = model.to(device).train()
    optimizer = make_optimizer(model, args.lr, args.weight_decay, device=device)
    state = restore(checkpoint, model, optimizer) if checkpoint is not None else TrainState()
    # the NSP head (ELECTRA: the pooler) gets no gradient without NSP
    forward = distributed(model, device, find_unused_parameters=args.no_nsp)
    if args.compile:  # the same module and weights: checkpoints and evaluation use `model` as it is
        forward = torch.compile(forward)
    plan = Plan(out=args.out, epochs=args.epochs, steps_per_epoch=steps_per_epoch, batch_size=args.batch_size,
                schedule=Schedule(args.lr, total_steps, warmup_steps / total_steps,
                                  args.budget_minutes * 60 if args.budget_minutes else None),
                clip=args.clip, precision=args.precision, log_every=args.log_every, save_every=args.save_every,
                quiet=args.quiet)

    layers = f"{config.num_hidden_layers} layer" + ("s" if config.num_hidden_layers != 1 else "")
    say(f"model: {'--init ' + args.init if args.init else f'preset {args.preset!r}'}, "
        f"{model.num_parameters():,} parameters ({layers}, hidden {config.hidden_size}, "
        f"{config.num_attention_heads} heads); device {device}, {world} process(es)")
    if isinstance(model, ElectraForPreTraining):
        gen = generator_config(config, args.generator_size)
        say(f"ELECTRA: the model above is the discriminator ({model.bert.num_parameters():,} parameters, "
            f"what fine-tuning keeps); the generator is {gen.num_hidden_layers} layers of hidden "
            f"{gen.hidden_size} on the shared embeddings; loss = mlm + {args.rtd_weight:g} * rtd")
    say(f"training: {len(ds):,} samples, {args.batch_size} per step, {steps_per_epoch:,} steps per epoch, "
        f"{args.epochs} epoch{'s' if args.epochs != 1 else ''}, peak lr {args.lr:g}, {warmup_steps} warmup steps")
    if checkpoint is not None:
        say(f"resuming {args.resume} at step {state.step} of {total_steps}"
            + (" (finished: nothing left to do)" if state.finished else ""))

    # ---- the loop: this process's part of each global batch, in a seeded order per epoch
    local = args.batch_size // world

    def batches(epoch: int) -> list[torch.Tensor]:
        ds.set_epoch(epoch)  # dynamic masking: this epoch's masks
        order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(args.seed * 1000 + epoch))
        return [order[s * args.batch_size + rank * local:][:local] for s in range(steps_per_epoch)]

    def load(idx: torch.Tensor, data=ds) -> dict[str, torch.Tensor]:
        return {k: v.to(device, non_blocking=True) for k, v in data.batch(idx).items()}

    def validate() -> dict[str, float]:  # this process's share of the validation samples
        if ds.val is None:
            return {}
        ds.val.set_epoch(0)
        n, bs = len(ds.val), args.eval_batch_size
        return evaluate(model, (load(torch.arange(i, min(i + bs, n)), ds.val) for i in range(rank * bs, n, world * bs)),
                        args.precision)

    extra = {"kind": "pretraining", "args": vars(args), "config": config.to_dict(), "vocab": ds.vocab.itos,
             "data_fingerprint": ds.fingerprint(),
             "data": {"context_length": ds.context_length, "layout": ds.layout, "tokenizer": args.tokenizer}}
    code = fit(model, optimizer, plan, state, batches=batches, load=load, validate=validate,
               checkpoint_extra=extra, forward=forward, plot=lambda: plot_losses(os.path.join(args.out, "metrics.jsonl"),
                                                          os.path.join(args.out, "loss_curve.png")))
    if code == 0:
        say(f"done: {args.out}/checkpoint.pt, metrics.jsonl, loss_curve.png")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = get_args(argv)
    return run_cli(lambda: train(args), (DataError, CheckpointError))


if __name__ == "__main__":
    sys.exit(main())
