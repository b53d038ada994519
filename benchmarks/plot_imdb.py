"""The IMDb benchmark in one figure: validation accuracy against fine-tuning time for the runs of
`benchmarks/finetune_benchmarks.sh` (pretrained here, at each masking rate tried; no pretraining;
real weights), next to the in-domain pretrainings' MLM loss.

    python benchmarks/plot_imdb.py                      # reads runs/, writes benchmarks/imdb.png
    python benchmarks/plot_imdb.py --runs DIR --out imdb.png

A run that is missing is left out of the figure (with a note); at least one must exist.
"""

import argparse
import os
import sys

from matplotlib.figure import Figure

from annotated_bert.files import atomic_write, read_jsonl

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the in-domain pretrainings (2 hours each) and the run 1 fine-tuned from each
PRETRAININGS = {
    "imdb-pretrain": "15% masked",
    "imdb-pretrain-m25": "25% masked",
    "imdb-pretrain-m40": "40% masked",
    "imdb-pretrain-m50": "50% masked",
}
RUNS = {
    "pretrained-imdb": "run 1: pretrained here, 15% masked",
    "pretrained-imdb-m25": "run 1: pretrained here, 25% masked",
    "pretrained-imdb-m40": "run 1: pretrained here, 40% masked",
    "pretrained-imdb-m50": "run 1: pretrained here, 50% masked",
    "random-imdb": "run 2: no pretraining (same model)",
    "minilm-imdb": "run 3: all-MiniLM-L6-v2 (512 tokens)",
}
REFERENCES = {"Maas et al. 2011": 0.8889, "NBSVM": 0.9122}


def val_curve(metrics_path: str) -> list[tuple[float, float]]:
    """(minutes of fine-tuning, validation accuracy) for every validation record. A validation
    record has no time of its own; it takes the time of the last training record before it."""
    points, minutes = [], 0.0
    for r in read_jsonl(metrics_path):
        if r["split"] == "train":
            minutes = r["elapsed_s"] / 60
        elif r["split"] == "val":
            points.append((minutes, r["accuracy"]))
    return points


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", default=os.path.join(REPO, "runs"), help="folder holding the runs (default: runs/)")
    p.add_argument("--out", default=os.path.join(REPO, "benchmarks", "imdb.png"), help="PNG to write")
    args = p.parse_args(argv)

    fig = Figure(figsize=(11, 4))
    ax_mlm, ax_acc = fig.subplots(1, 2)
    for i, (name, label) in enumerate(PRETRAININGS.items()):
        pretrain = os.path.join(args.runs, name, "metrics.jsonl")
        if not os.path.exists(pretrain):
            print(f"note: {pretrain} not found; left out")
            continue
        records = read_jsonl(pretrain)
        for split, style in (("train", "-"), ("val", "o")):
            pts = [(r["step"], r["mlm_loss"]) for r in records if r["split"] == split]
            ax_mlm.plot(*zip(*pts), style, color=f"C{i}", label=f"{label} ({split})")
    if ax_mlm.lines:
        ax_mlm.legend(fontsize=8)
    ax_mlm.set(title="in-domain pretraining (bert-mini, MLM; loss on the masked tokens)",
               xlabel="optimizer step (32 chunks of 257 tokens)", ylabel="MLM cross-entropy")

    found = 0
    for name, label in RUNS.items():
        path = os.path.join(args.runs, name, "metrics.jsonl")
        if not os.path.exists(path):
            print(f"note: {path} not found; left out")
            continue
        pts = val_curve(path)
        if pts:
            found += 1
            ax_acc.plot(*zip(*pts), "o-", label=label)
    if not found:
        print(f"error: none of the IMDb fine-tuning runs is in {args.runs}; run "
              f"bash benchmarks/finetune_benchmarks.sh pretrained-imdb (and the others) first", file=sys.stderr)
        return 2
    for name, acc in REFERENCES.items():
        ax_acc.axhline(acc, color="grey", linestyle=":", linewidth=1)
        ax_acc.text(0.01, acc, f" {name}", transform=ax_acc.get_yaxis_transform(), va="bottom", color="grey",
                    fontsize=8)
    ax_acc.set(title="IMDb sentiment, validation accuracy (2,500 reviews)", xlabel="minutes of fine-tuning",
               ylabel="accuracy")
    ax_acc.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    atomic_write(args.out, lambda f: fig.savefig(f, format="png", dpi=110))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
