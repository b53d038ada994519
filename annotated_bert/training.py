"""The training loop that pretraining and fine-tuning share, and its parts.

One step is what BERT does (Devlin et al. 2018, appendix A.2): AdamW, the learning rate warmed
up linearly then decayed linearly to 0, the gradient norm clipped at 1.0, no weight decay on
biases and LayerNorm. `train_step` is that step, on its own, for a notebook or an experiment;
`fit` is the loop around it that the command-line tools run:

    for each epoch:   for each batch:   train_step -> log a window's averages every few steps
                                        -> stop on Ctrl-C or when the time budget is spent
                                        -> validate (and keep the best model) every N steps
                      validate, checkpoint, plot

A model's output carries `loss` and a `metrics` dict {name: (sum over the batch, count)}, so the
loop and the evaluation add dicts and know nothing of MLM, NSP, ELECTRA or the tasks.

Resuming is exact: the data order and the masks are functions of (seed, epoch), and a checkpoint
holds the model, the optimizer, the RNG state and the step, so an interrupted and resumed run
computes the same losses as an uninterrupted one.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from annotated_bert.checkpoints import CheckpointError, load_training_checkpoint, save_training_checkpoint
from annotated_bert.files import append_jsonl, drop_records_after
from annotated_bert.data import DataError
from annotated_bert.runtime import (EXIT_INTERRUPTED, StopFlag, autocast, is_main, rank_and_world, say, setup_device,
                                    sum_over_processes)


# ------------------------------------------------------------------------------ optimizer

@dataclass
class Schedule:
    """BERT's learning rate: from 0, linearly up to `peak_lr` over the first `warmup` (a fraction)
    of training, then linearly down to 0 at its end; Hugging Face's
    `get_linear_schedule_with_warmup`. With a time budget, "how far along" is the further of the
    steps done and the time spent, so the decay ends when the budget does."""
    peak_lr: float
    total_steps: int
    warmup: float = 0.1                  # fraction of training spent warming up
    budget_s: float | None = None        # seconds of training, if the run has a time budget

    def progress(self, step: int, elapsed_s: float = 0.0) -> float:
        p = step / self.total_steps
        return p if self.budget_s is None else max(p, elapsed_s / self.budget_s)

    def lr(self, progress: float) -> float:
        if progress < self.warmup or self.warmup >= 1:
            return self.peak_lr * progress / self.warmup
        return self.peak_lr * max(0.0, (1 - progress) / (1 - self.warmup))

    def set_lr(self, optimizer: torch.optim.Optimizer, step: int, elapsed_s: float = 0.0) -> float:
        """Give every parameter group its learning rate for `step` (times the group's `lr_scale`)."""
        lr = self.lr(self.progress(step, elapsed_s))
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        return lr


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

    groups: dict[tuple[float, bool], dict] = {}
    for name, p in model.named_parameters():
        scale, decays = layer_lr_decay ** (n_layers + 1 - depth(name)), p.dim() >= 2
        group = groups.setdefault((scale, not decays), {"params": [], "weight_decay": weight_decay if decays else 0.0,
                                                        "lr_scale": scale})
        group["params"].append(p)
    return [groups[k] for k in sorted(groups)]


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float, layer_lr_decay: float = 1.0,
                   device: torch.device | None = None) -> torch.optim.AdamW:
    """BERT's AdamW (betas 0.9 / 0.999, eps 1e-6), fused into one kernel where PyTorch has one."""
    device = device or next(model.parameters()).device
    return torch.optim.AdamW(parameter_groups(model, weight_decay, layer_lr_decay), lr=lr, betas=(0.9, 0.999),
                             eps=1e-6, fused=device.type in ("cpu", "cuda") or None)


# ------------------------------------------------------------------------------ one step

class NonFiniteLoss(RuntimeError):
    """The gradient norm was inf or NaN: the step was not taken."""

    def __init__(self, loss: float):
        super().__init__(f"the loss became non-finite ({loss:.4g})")
        self.loss = loss


@dataclass
class StepResult:
    loss: float
    metrics: dict[str, float]    # the batch's mean of every metric the model reports
    lr: float
    grad_norm: float


def clip_gradients(model: torch.nn.Module, max_norm: float) -> torch.Tensor:
    """torch's `clip_grad_norm_`, skipping its multiply-by-1.0 pass over every gradient when the
    norm is already within bounds (the same numbers, a pass over the weights less per step).
    Returns the total norm before clipping."""
    params = [p for p in model.parameters() if p.grad is not None]
    if not hasattr(torch.nn.utils, "get_total_norm"):  # torch < 2.6
        return torch.nn.utils.clip_grad_norm_(params, max_norm)
    norm = torch.nn.utils.get_total_norm([p.grad for p in params])
    if max_norm / (norm + 1e-6) < 1:  # torch's clip coefficient, before it is clamped to 1
        torch.nn.utils.clip_grads_with_norm_(params, max_norm, norm)
    return norm


def batch_means(metrics: dict) -> dict[str, float]:
    """{name: (sum, count)} -> {name: sum / count}, leaving out metrics with nothing counted."""
    return {k: float(s) / float(n) for k, (s, n) in metrics.items() if float(n) > 0}


def train_step(model: torch.nn.Module, batch: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer,
               schedule: Schedule, step: int, *, elapsed_s: float = 0.0, clip: float = 1.0,
               precision: str = "fp32", forward: Callable | None = None) -> StepResult:
    """One optimizer step: set the learning rate, forward to the loss, backward, clip the gradient
    norm, AdamW. `forward` is what runs the batch when it is not `model` itself (the same weights
    wrapped for several processes, or compiled). Raises NonFiniteLoss, before stepping, when the
    gradients are not finite."""
    lr = schedule.set_lr(optimizer, step, elapsed_s)
    with autocast(batch["input_ids"].device, precision):
        out = (model if forward is None else forward)(**batch)
    optimizer.zero_grad(set_to_none=True)
    out.loss.backward()
    grad_norm = clip_gradients(model, clip)
    if not torch.isfinite(grad_norm):  # every process sees the same all-reduced gradients: all stop here
        raise NonFiniteLoss(out.loss.item())
    optimizer.step()
    return StepResult(out.loss.item(), batch_means(out.metrics), lr, float(grad_norm))


# ------------------------------------------------------------------------------ evaluation

@torch.no_grad()
def evaluate(model: torch.nn.Module, batches: Iterable[dict[str, torch.Tensor]], precision: str = "fp32",
             ) -> dict[str, float]:
    """Every metric the model reports, over all examples of all `batches` (each process passes
    its share; the sums are added across processes). Sampling models (ELECTRA's generator) draw
    from a fixed seed, so every evaluation sees the same samples."""
    was_training = model.training
    model.eval()
    rank, _ = rank_and_world()
    device = next(model.parameters()).device
    sums: dict[str, list[float]] = {}
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(rank)
        for batch in batches:
            with autocast(device, precision):
                out = model(**batch)
            for name, (s, n) in out.metrics.items():
                total = sums.setdefault(name, [0.0, 0.0])
                total[0] += float(s)
                total[1] += float(n)
    model.train(was_training)
    totals = sum_over_processes(sums)
    return {name: s / max(n, 1) for name, (s, n) in sorted(totals.items())}


# ------------------------------------------------------------------------------ the loop

@dataclass
class Plan:
    """How long and how a run trains, and where it writes."""
    out: str                             # directory: checkpoint.pt, metrics.jsonl, plots
    epochs: int
    steps_per_epoch: int
    batch_size: int                      # examples per step over all processes (for samples/s)
    schedule: Schedule
    clip: float = 1.0
    precision: str = "fp32"
    log_every: int = 50                  # a train record every N steps (and at each epoch's end)
    eval_every: int = 0                  # validate every N steps too (0: at epoch ends only)
    save_every: int = 0                  # checkpoint every N steps too (0: at epoch ends only)
    quiet: bool = False                  # no progress bars
    command: str = "python -m annotated_bert.train"  # how to run it again with --resume, for the messages


@dataclass
class TrainState:
    """Where a run is: what a checkpoint restores besides the weights and the optimizer."""
    step: int = 0                        # optimizer steps done
    elapsed: float = 0.0                 # seconds spent training (evaluation excluded)
    best: float | None = None            # the best validation value of the main metric so far
    finished: bool = False               # every epoch done, or the time budget spent

    def as_dict(self) -> dict:
        return {"step": self.step, "elapsed": self.elapsed, "best": self.best, "finished": self.finished}


def save_checkpoint(plan: Plan, model, optimizer, state: TrainState, extra: dict) -> None:
    """OUT/checkpoint.pt with one schema for every run: the weights, the optimizer, the RNG state,
    the TrainState, plus `extra` (the run's settings, config, vocabulary, data settings)."""
    if not is_main():
        return
    device = next(model.parameters()).device
    rng = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(device)
    save_training_checkpoint(plan.out, {**extra, **state.as_dict(), "model": model.state_dict(),
                                        "optimizer": optimizer.state_dict(), "rng": rng})


def restore(checkpoint: dict, model, optimizer) -> TrainState:
    """Load a checkpoint's weights, optimizer and RNG state; return where the run was."""
    try:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        state = TrainState(checkpoint["step"], checkpoint["elapsed"], checkpoint["best"], checkpoint["finished"])
    except (KeyError, RuntimeError, ValueError) as e:
        raise CheckpointError(f"the checkpoint does not fit this run ({str(e).splitlines()[0]}); it may have been "
                              f"written by another version of annotated-bert: start a new run") from None
    torch.set_rng_state(checkpoint["rng"]["torch"])
    device = next(model.parameters()).device
    if device.type == "cuda" and "cuda" in checkpoint["rng"]:
        torch.cuda.set_rng_state(checkpoint["rng"]["cuda"], device)
    return state


@dataclass
class _Window:
    """Running sums of the per-step values since the last train record."""
    sums: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    t0: float = field(default_factory=time.perf_counter)

    def add(self, values: dict[str, float]) -> None:
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.steps += 1

    def means(self) -> dict[str, float]:
        """The window's averages, over its steps and over the processes."""
        totals = sum_over_processes({k: [v, self.steps] for k, v in self.sums.items()})
        return {k: s / steps for k, (s, steps) in sorted(totals.items())}


def fit(model, optimizer, plan: Plan, state: TrainState, *,
        batches: Callable[[int], Sequence], load: Callable[[object], dict[str, torch.Tensor]],
        validate: Callable[[], dict[str, float]], checkpoint_extra: dict, forward: Callable | None = None,
        main_metric: str | None = None, on_best: Callable[[dict], None] | None = None,
        plot: Callable[[], None] | None = None) -> int:
    """Train `model` from `state` to the end of `plan`; return the exit code (0 done, 1 the loss
    became non-finite, EXIT_INTERRUPTED after Ctrl-C, the checkpoint saved).

    `batches(epoch)` lists this process's batches of an epoch, `load(item)` turns one into tensors
    on the device; `validate()` returns the validation metrics. With `main_metric`, a validation
    that improves it calls `on_best(metrics)` (fine-tuning keeps the best model so). Writes
    OUT/metrics.jsonl (train records: the window's mean loss and metrics, lr, samples/s; val
    records), OUT/checkpoint.pt at epoch ends (and every `save_every` steps, and on Ctrl-C), and
    calls `plot()` after each validation."""
    device = next(model.parameters()).device
    metrics_path = os.path.join(plan.out, "metrics.jsonl")
    os.makedirs(plan.out, exist_ok=True)
    if is_main() and state.step == 0 and os.path.exists(metrics_path):
        os.remove(metrics_path)  # a fresh run in an old directory starts a fresh log
    elif is_main():
        drop_records_after(metrics_path, state.step)  # a resumed run redoes the steps after its checkpoint
    log = (lambda record: append_jsonl(metrics_path, record)) if is_main() else (lambda record: None)
    save = lambda: save_checkpoint(plan, model, optimizer, state, checkpoint_extra)  # noqa: E731
    trained_since_val = [0, time.perf_counter()]  # samples and clock since the last validation
    last_validated = None

    def run_validation(epoch: int) -> float:
        """Validate, log, keep the best, plot; returns the seconds it took (not training time)."""
        nonlocal last_validated
        t0 = time.perf_counter()
        last_validated = state.step
        metrics = validate()
        if not metrics:  # nothing held out to validate on
            return time.perf_counter() - t0
        sps = trained_since_val[0] / max(time.perf_counter() - trained_since_val[1], 1e-9)
        improved = main_metric is not None and (state.best is None or metrics[main_metric] > state.best)
        if improved:
            state.best = metrics[main_metric]
        log({"epoch": epoch, "step": state.step, "split": "val", "samples_per_s": sps,
             "elapsed_s": state.elapsed, **metrics})
        if improved and on_best is not None and is_main():
            on_best(metrics)
        say(f"epoch {epoch}, step {state.step}: validation " + format_metrics(metrics)
            + (" (best so far, saved)" if improved and on_best is not None else ""))
        if plot is not None and is_main():
            plot()
        trained_since_val[:] = [0, time.perf_counter()]
        return time.perf_counter() - t0

    def say_how_to_resume() -> None:
        say(f"saved {plan.out}/checkpoint.pt at step {state.step}; continue with: {plan.command} --resume {plan.out}")

    model.train()
    with StopFlag(plan.schedule.budget_s) as stop:
        epoch = state.step // plan.steps_per_epoch
        while not state.finished and epoch < plan.epochs:
            items = batches(epoch)
            start = state.step - epoch * plan.steps_per_epoch
            bar = tqdm(range(start, plan.steps_per_epoch), desc=f"epoch {epoch + 1}/{plan.epochs}", initial=start,
                       total=plan.steps_per_epoch, disable=plan.quiet or not is_main(), dynamic_ncols=True)
            window, interrupted = _Window(), False
            for i in bar:
                t_step = time.perf_counter()
                try:
                    r = train_step(model, load(items[i]), optimizer, plan.schedule, state.step,
                                   elapsed_s=state.elapsed, clip=plan.clip, precision=plan.precision, forward=forward)
                except NonFiniteLoss as e:
                    say(f"error: {e} at step {state.step + 1} (epoch {epoch + 1}): training stopped. The last "
                        f"good checkpoint in {plan.out} is kept; try a lower --lr or --precision fp32",
                        file=sys.stderr)
                    return 1
                state.step += 1
                state.elapsed += time.perf_counter() - t_step
                trained_since_val[0] += plan.batch_size
                window.add({"loss": r.loss, **r.metrics})
                bar.set_postfix(loss=f"{r.loss:.3f}", lr=f"{r.lr:.2e}")
                last_of_epoch = i == plan.steps_per_epoch - 1
                if state.step % plan.log_every == 0 or last_of_epoch:
                    sps = window.steps * plan.batch_size / (time.perf_counter() - window.t0)
                    log({"epoch": epoch + 1, "step": state.step, "split": "train", "lr": r.lr, "samples_per_s": sps,
                         "elapsed_s": state.elapsed, **window.means()})
                    window = _Window()
                interrupted, out_of_time = stop.check(state.elapsed, device)
                if plan.eval_every and state.step % plan.eval_every == 0:
                    window.t0 += run_validation(epoch + 1)  # the window's samples/s counts training only
                if interrupted and not last_of_epoch:
                    save()
                    say_how_to_resume()
                    return EXIT_INTERRUPTED
                if out_of_time:
                    say(f"time budget of {plan.schedule.budget_s / 60:g} minutes reached at step {state.step}")
                    state.finished = True
                    break
                if plan.save_every and state.step % plan.save_every == 0 and not last_of_epoch:
                    save()
            bar.close()
            epoch += 1  # the epoch is over (or the budget is): validate, checkpoint
            state.finished = state.finished or epoch == plan.epochs
            if last_validated != state.step:
                run_validation(epoch)
            save()
            if interrupted:  # Ctrl-C during an epoch's last step: stopped after the epoch's checkpoint
                say_how_to_resume()
                return EXIT_INTERRUPTED
    return 0


def format_metrics(metrics: dict[str, float]) -> str:
    """"accuracy 0.9124, f1 0.9130, n 2500": four decimals, counts as they are."""
    return ", ".join(f"{k} {v}" if isinstance(v, int) else f"{k} {v:.4f}" for k, v in metrics.items())


def start_run(args: argparse.Namespace) -> tuple[dict | None, argparse.Namespace, torch.device, int, int]:
    """What every training command does first: a resumed run's checkpoint and settings, the
    device (joining the process group under torchrun), this process's rank and the number of
    processes, which must divide the global batch."""
    checkpoint, args = resume_args(args)
    device = setup_device(args.device, args.precision)
    rank, world = rank_and_world()
    if args.batch_size % world:
        raise DataError(f"--batch-size {args.batch_size} must be divisible by the {world} processes")
    return checkpoint, args, device, rank, world


def resume_args(args: argparse.Namespace, may_change: Sequence[str] = ("device", "compile", "quiet", "threads"),
                ) -> tuple[dict | None, argparse.Namespace]:
    """With --resume DIR: the saved checkpoint and the run's own settings, of which only
    `may_change` (how it runs, not what it computes) come from the new command line; options newer
    than the checkpoint keep their defaults. Without --resume: (None, args)."""
    if not args.resume:
        return None, args
    checkpoint = load_training_checkpoint(args.resume)
    now = {k: v for k, v in vars(args).items() if k in may_change}
    return checkpoint, argparse.Namespace(**{**vars(args), **checkpoint["args"], "resume": args.resume,
                                             "out": args.resume, **now})
