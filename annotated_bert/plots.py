"""Plots of a run's metrics.jsonl, written atomically as PNGs beside it: the pretraining losses
(MLM, NSP or ELECTRA's replaced-token detection, each against its chance level) and a
fine-tuning run's loss and validation metrics.

matplotlib's object API (`Figure`), not pyplot: a notebook calling the library keeps its backend.
"""

from __future__ import annotations

import math

from annotated_bert.files import atomic_write, read_jsonl

TITLES = {"mlm": "MLM loss", "nsp": "NSP loss", "sop": "SOP loss", "rtd": "replaced-token detection loss (ELECTRA)"}


def binary_entropy(p: float) -> float:
    """-p ln p - (1 - p) ln(1 - p): the cross-entropy of always predicting p, the best a
    discriminator that ignores its input can do when a share p of the tokens is replaced."""
    return 0.0 if p <= 0 or p >= 1 else -p * math.log(p) - (1 - p) * math.log(1 - p)


def _train_and_val(ax, records: list[dict], key: str) -> None:
    for split, style in (("train", "-"), ("val", "o-")):
        pts = [(r["step"], r[key]) for r in records if r["split"] == split and key in r]
        if pts:
            ax.plot(*zip(*pts), style, label=split, alpha=0.8 if split == "train" else 1.0)


def _save(fig, png_path: str) -> None:
    fig.tight_layout()
    atomic_write(png_path, lambda f: fig.savefig(f, format="png", dpi=110))


def plot_losses(metrics_path: str, png_path: str) -> None:
    """Pretraining: one panel per objective the run logged, training and validation loss against steps."""
    from matplotlib.figure import Figure

    records = read_jsonl(metrics_path)
    tasks = ["mlm"] + [t for t in ("nsp", "sop", "rtd") if any(f"{t}_loss" in r for r in records)]
    fig = Figure(figsize=(5.5 * len(tasks), 4))
    for ax, task in zip(fig.subplots(1, len(tasks), squeeze=False)[0], tasks):
        _train_and_val(ax, records, f"{task}_loss")
        ax.set(title=TITLES[task], xlabel="optimizer step", ylabel="cross-entropy")
        if task in ("nsp", "sop"):
            ax.axhline(math.log(2), color="gray", ls=":", label="chance (ln 2)")
        if task == "rtd":  # the loss of one constant guess, the replaced share: below it, the model reads context
            pts = [(r["step"], binary_entropy(r["rtd_replaced"])) for r in records
                   if r["split"] == "train" and "rtd_replaced" in r]
            if pts:
                ax.plot(*zip(*pts), color="gray", ls=":", label="constant guess (entropy of the replaced share)")
        ax.legend()
    _save(fig, png_path)


def plot_curves(metrics_path: str, png_path: str, task: str, main_metric: str) -> None:
    """Fine-tuning: the loss (training and validation) and the validation metrics against steps."""
    from matplotlib.figure import Figure

    records = read_jsonl(metrics_path)
    fig = Figure(figsize=(11, 4))
    ax_loss, ax_metric = fig.subplots(1, 2)
    _train_and_val(ax_loss, records, "loss")
    ax_loss.set(title="loss", xlabel="optimizer step", ylabel="cross-entropy")
    ax_loss.legend()
    val = [r for r in records if r["split"] == "val"]
    skip = ("epoch", "step", "split", "loss", "samples_per_s", "elapsed_s", "n", "n_inputs")
    for name in [k for k in (val[0] if val else {}) if k not in skip]:
        ax_metric.plot([r["step"] for r in val], [r[name] for r in val], "o-", label=name)
    ax_metric.set(title=f"validation ({task}; best model kept by {main_metric})", xlabel="optimizer step")
    if val:
        ax_metric.legend()
    _save(fig, png_path)
