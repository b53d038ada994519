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
# # The Annotated BERT
#
# This notebook builds BERT, and pretrains a tiny one, from raw IMDb movie reviews to a model
# that fills in blanks. It retells the walkthrough `AnnotatedBert.ipynb` of
# [AIDajiangtang/annotated-transformer](https://github.com/AIDajiangtang/annotated-transformer),
# which follows the code and article of [coaxsoft/pytorch_bert](https://github.com/coaxsoft/pytorch_bert)
# (["Building BERT with PyTorch from scratch"](https://coaxsoft.com/blog/building-bert-with-pytorch-from-scratch)):
# 1,000 reviews, sentence pairs, a one-layer model of width 64, four epochs.
#
# Every stage shows the code that does it, beside the sentence that explains it: either the
# library's own source (`annotated_bert`, which `python -m annotated_bert.train` runs), or a
# few hand-written lines that the next line checks against the library on the same inputs. The
# checks are `assert`s, so a notebook that runs to the end has agreed with the real model at every
# step. Where the original code went wrong, the fix is named at the place it matters.
#
# The papers, cited by section:
#
# * **BERT**: Devlin, Chang, Lee, Toutanova (2018), *BERT: Pre-training of Deep Bidirectional
#   Transformers for Language Understanding*, [arXiv:1810.04805](https://arxiv.org/abs/1810.04805).
# * **Transformer**: Vaswani et al. (2017), *Attention Is All You Need*,
#   [arXiv:1706.03762](https://arxiv.org/abs/1706.03762). BERT is the Transformer's encoder.
#
# **Shape legend**, used in every printout and in the library's comments:
#
# | symbol | meaning | here |
# | --- | --- | --- |
# | `B` | batch size | 12 |
# | `T` | sequence length, 2L+1 | 55 |
# | `H` | hidden size (model width) | 64 |
# | `nh` | attention heads | 4 |
# | `hs` | head size, H / nh | 16 |
# | `I` | feed-forward inner width | 36 |
# | `V` | vocabulary size | 8,815 |
# | `M` | masked positions in the batch | ~80 |

# %% [markdown]
# ## 0. Setup
#
# The reviews are the first 1,000 of IMDb's training split, shipped with the library
# (`data/imdb_sample.csv.gz`), so every reader gets the outputs shown here. To use other reviews,
# set `ANNOTATED_BERT_DATA` to a CSV with a `review` column before starting Jupyter. The notebook
# works from the repository root, wherever Jupyter was started. It uses one seed and one thread
# (a model this small gains nothing from more, and the numbers then do not depend on how many
# cores the machine has); `show_code` renders the library's own source.

# %%
import inspect
import math
import os
import textwrap
import warnings
from pathlib import Path

os.environ["TQDM_DISABLE"] = "1"  # no progress bars in the outputs (read when tqdm is imported)
warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm.auto, in a Jupyter without ipywidgets

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display

from annotated_bert import tokenization, train
from annotated_bert.config import IGNORE_INDEX, preset
from annotated_bert.data import DEFAULT_DATA, read_reviews
from annotated_bert.files import read_jsonl
from annotated_bert.inference import Predictor
from annotated_bert.model import BertForPreTraining, key_mask_bias, sinusoidal_positions
from annotated_bert.pretraining import IMDBBertDataset, choose_mlm_positions
from annotated_bert.samples import find_context_length, make_nsp_pairs, tokenize_reviews
from annotated_bert.shapes import format_shapes, record_shapes
from annotated_bert.tokenization import WALKTHROUGH_SPECIALS as SPECIAL_TOKENS, basic_english
from annotated_bert.training import Schedule, make_optimizer, train_step


def find_repo_root(start: Path) -> Path:
    """The folder holding pyproject.toml and annotated_bert/, looking upwards from `start`."""
    for d in [start, *start.parents]:
        if (d / "pyproject.toml").exists() and (d / "annotated_bert").is_dir():
            return d
    return start


START = Path.cwd()
ROOT = find_repo_root(START.resolve())
os.chdir(ROOT)
DATA = os.environ.get("ANNOTATED_BERT_DATA", DEFAULT_DATA)
DATA = os.path.relpath(next((p for p in (ROOT / DATA, START / DATA) if p.exists()), ROOT / DATA))
RUN = os.environ.get("ANNOTATED_BERT_RUN", os.path.join("runs", "notebook"))  # where training writes

SEED = 0
torch.manual_seed(SEED)
torch.set_num_threads(1)
np.set_printoptions(linewidth=110)
pd.set_option("display.max_colwidth", 60)


def show_code(*objects):
    """The library's source of each function or class, as a code block."""
    blocks = [f"`{o.__module__}.{o.__qualname__}`\n```python\n{textwrap.dedent(inspect.getsource(o)).rstrip()}\n```"
              for o in objects]
    display(Markdown("\n\n".join(blocks)))


print(f"data: {DATA if not DATA.startswith('..') else os.path.basename(DATA)}")


# %% [markdown]
# ## 1. Why BERT builds its training data differently
#
# GPT is a decoder: each token sees only the tokens before it and learns to predict the next
# one, which suits generation. Its training data is the text itself, shifted by one. With token
# ids 1 to 10, a context of 4, a stride of 4 and a batch of 2:

# %%
ids = torch.arange(1, 11)
context, stride, batch_size = 4, 4, 2
starts = range(0, len(ids) - context, stride)                   # windows whose target fits
inputs = torch.stack([ids[s:s + context] for s in starts])      # (batch, context)
targets = torch.stack([ids[s + 1:s + context + 1] for s in starts])
print("inputs: ", inputs[:batch_size].tolist())
print("targets:", targets[:batch_size].tolist())

# %% [markdown]
# BERT is an encoder: every token sees every other, before and after it, which suits
# understanding. Nothing then stops a token from seeing its own answer, so BERT cannot learn by
# predicting the next token. It hides tokens and predicts them (the masked language model, MLM),
# and asks whether one sentence follows another (next-sentence prediction, NSP).
#
# The difference is the attention mask: 1 where a query (row) may look at a key (column). GPT's
# is causal, lower-triangular. BERT's hides only `[PAD]` keys, the filler after a short input;
# here four tokens and two `[PAD]`, through the library's `key_mask_bias`:

# %%
T_toy = 6
causal = torch.tril(torch.ones(T_toy, T_toy, dtype=torch.long))           # (T, T): GPT
attention_mask = torch.tensor([[1, 1, 1, 1, 0, 0]])                       # (1, T): 4 tokens, 2 [PAD]
bias = key_mask_bias(attention_mask, torch.float32)                       # (1, 1, 1, T): 0 or -3.4e38
padding = (bias == 0).long()[0, 0].expand(T_toy, T_toy)                   # (T, T): BERT
for name, m in (("GPT, causal", causal), ("BERT, padding only", padding)):
    print(f"{name}:\n{m.numpy()}")

# %% [markdown]
# ## 2. The reviews
#
# BERT learns from unlabelled text: only the `review` column is used, never the sentiment.

# %%
ds_from, ds_to = 0, 1000
reviews = read_reviews(DATA, ds_from, ds_to, log=lambda *_: None)
print(f"{len(reviews):,} reviews, columns {list(reviews.columns)}")
reviews.head()

# %% [markdown]
# Reviews are raw HTML-ish text: paragraphs are separated by `<br /><br />`.

# %%
with_breaks = next(i for i, text in enumerate(reviews["review"]) if "<br />" in text)
text = reviews["review"][with_breaks]
cut = text.index("<br />")
print(f"review {with_breaks}:\n...{text[max(0, cut - 200): cut + 200]}...")

# %% [markdown]
# ## 3. Tokens
#
# The walkthrough tokenizes with torchtext's `basic_english`: lowercase, then a fixed list of
# replacements, then split on spaces. torchtext no longer installs with current PyTorch, so the
# library carries the same rules:

# %%
for pattern, replacement in tokenization._BASIC_ENGLISH_RULES:
    print(f"{pattern!r:9} -> {replacement!r}")
show_code(basic_english)

# %%
print(basic_english("You'll be hooked."))
around_break = text[text.rfind(".", 0, cut) + 1: text.index(".", cut) + 1].strip()   # the sentences around <br />
print(f"{around_break}\n-> {basic_english(around_break)}")

# %% [markdown]
# `you ' ll`: the apostrophe becomes a token of its own, as do commas and periods; `<br />` is
# gone, and `washed-up` stays one word. Real BERT cuts words into sub-word pieces instead
# (WordPiece, in the next notebook).
#
# ## 4. Sentences and the context length
#
# A Transformer takes a fixed-size input, so every sentence is cut or padded to one length L.
# The walkthrough splits each review into sentences at every `.`, counts each sentence's tokens,
# and takes the **90th percentile**: 90% of sentences fit whole, the long tail is truncated. By
# hand, checked against the library's `tokenize_reviews` (which splits the token stream at `.`
# tokens, all reviews at once) and `find_context_length`:

# %%
def split_sentences(review: str) -> list[list[str]]:
    """Cut at every ".", tokenize each piece, drop the empty ones."""
    return [tokens for piece in review.split(".") if (tokens := basic_english(piece))]


def percentile_length(lengths, q: int = 90) -> int:
    """The smallest L such that q% of the sentences have at most L tokens."""
    ordered = sorted(lengths)
    return ordered[math.ceil(q * len(ordered) / 100) - 1]


lengths = [len(s) for review in reviews["review"] for s in split_sentences(review)]
sentences, _ = tokenize_reviews(reviews["review"].tolist(), basic_english, progress=False)
assert lengths == sentences.lengths.tolist()
toy = list(range(10, 101, 10))
assert percentile_length(toy) == find_context_length(np.array(toy)) == 90
L90 = percentile_length(lengths)
assert L90 == find_context_length(sentences.lengths)
print(split_sentences("It was great. I cried twice.")[1])
print(f"{len(lengths):,} sentences; tokens per sentence: median {np.median(lengths):.0f}, "
      f"90th percentile {L90}, longest {max(lengths)}; lengths 10, 20, ..., 100 give {percentile_length(toy)}")

# %% [markdown]
# On these reviews the 90th percentile is 39 tokens. The walkthrough's reviews gave **L = 27**,
# and we keep that, so that every shape below is the one it prints and training stays short. The
# histogram shows what it costs: sentences right of the line lose their ends.

# %%
L = 27
fig, ax = plt.subplots(figsize=(9, 3.2))
ax.hist(lengths, bins=np.arange(0, 121, 2), color="tab:blue", alpha=0.8)
ax.axvline(L90, color="tab:red", ls="--", label=f"90th percentile: {L90} tokens")
ax.axvline(L, color="black", ls=":", label=f"the walkthrough's L = {L}")
ax.set(xlabel="sentence length (tokens)", ylabel="sentences", xlim=(0, 120))
ax.legend()
plt.show()
print(f"sentences longer than L - 1 = {L - 1} tokens (truncated): {np.mean(np.array(lengths) > L - 1):.0%}")

# %% [markdown]
# Why `L - 1`? Each half of a sample is `[CLS]` and the sentence, L positions in all.
#
# ## 5. The dataset: vocabulary, pairs, masks
#
# `IMDBBertDataset` does the rest of the data work, and the next cells open it up. It holds out
# 10% of the reviews for validation (whole reviews, so no sentence of a validation review is ever
# trained on; the original trained and judged on the same data), builds the vocabulary from the
# training reviews, pairs sentences for NSP and masks tokens for MLM.

# %%
ds = IMDBBertDataset(reviews, 0, None, context_length=L, seed=SEED, verbose=False)
V = len(ds.vocab)
print(f"reviews: {(~ds.is_val_review).sum()} training, {ds.is_val_review.sum()} validation")
print(f"L = {ds.context_length}, sample length T = 2L + 1 = {ds.seq_len}, vocabulary V = {V:,}")
print(f"samples: {len(ds):,} training, {len(ds.val):,} validation")

# %% [markdown]
# **The vocabulary**: the five special tokens first, with the walkthrough's ids, then every token
# seen at least twice in the training reviews, most frequent first. Anything else reads as
# `[UNK]`. Counted by hand with a `Counter`:

# %%
from collections import Counter

train_reviews = [r for r, held_out in zip(ds.reviews, ds.is_val_review) if not held_out]
counts = Counter(t for r in train_reviews for s in split_sentences(r) for t in s)
kept = ds.vocab.itos[len(SPECIAL_TOKENS):]
assert set(kept) == {t for t, c in counts.items() if c >= 2}                  # the same tokens
assert all(counts[a] >= counts[b] for a, b in zip(kept, kept[1:]))             # most frequent first
print("ids 0-4:  ", {t: ds.vocab[t] for t in SPECIAL_TOKENS})
print("ids 5-24: ", kept[:20])
tokens = basic_english("A flabbergastingly good movie")
print(f"{tokens} -> {ds.vocab(tokens)} -> {ds.vocab.lookup_tokens(ds.vocab(tokens))}")

# %% [markdown]
# **One NSP pair.** Adjacent sentences of one review make a positive pair (label 1, "B follows
# A"); each positive gets a negative twin with the same A and a B drawn from a *different*
# review (label 0), so the classes are balanced. B is drawn among sentences that do follow
# another one, so "B reads like an opening line" gives nothing away. (The original drew both
# sentences of a negative at random, sometimes from the same review.)

# %%
show_code(make_nsp_pairs)

# %% [markdown]
# A pair is laid out as two halves of L positions, joined by `[SEP]`:
# `[CLS] A [PAD] ... [SEP] [CLS] B [PAD] ...`, 2L + 1 = 55 positions. The *segment* (token type)
# id says which half a position belongs to. (BERT's own layout, `[CLS] A [SEP] B [SEP] [PAD]...`,
# is `layout="standard"`.) Sample 0 is the first pair of the first training review, sample 1 its
# negative twin:

# %%
def show_sample(d, i):
    """Sentences A and B as laid out (the original tokens Y), the model's input X, and what
    happened at each position chosen for MLM."""
    x, y = d.tokens(i), d.tokens(i, masked=False)
    seg = d.token_type_ids[i].tolist()
    print(f"sample {i}: NSP label {d.pair_labels[i].item()} "
          f"({'B follows A' if d.pair_labels[i] else 'B is from another review'})")
    print(f"  A: {' '.join(t for t, s in zip(y, seg) if s == 0)}")
    print(f"  B: {' '.join(t for t, s in zip(y, seg) if s == 1)}")
    print(f"  X: {' '.join(x)}")
    for p in np.flatnonzero(d.chosen[i].numpy()):
        kind = "[MASK]" if x[p] == "[MASK]" else ("kept" if x[p] == y[p] else "random token")
        print(f"     position {p:2d}: {y[p]!r:16} -> {x[p]!r:16} ({kind})")


show_sample(ds, 0)
print()
show_sample(ds, 1)

# %% [markdown]
# **The masks** (BERT section 3.1 and appendix A.1). In each sentence, 15% of the real tokens
# (at least one) are chosen for MLM; `[CLS]`, `[SEP]` and `[PAD]` never are. Of the chosen, 80%
# become `[MASK]`, 10% a random token and 10% stay as they are. Since the model never sees
# `[MASK]` after pretraining, it must not learn that only `[MASK]` positions matter; the kept 10%
# make it predict at ordinary tokens too. (The original had 80% `[MASK]`, 20% random and no
# kept branch, could choose a position twice, and lost masks past the truncation point; here
# masking comes after truncation.) The choice of positions, from the library:

# %%
show_code(choose_mlm_positions)

# %% [markdown]
# The dataset seeds one generator with `seed * 1_000_003 + epoch`, chooses the positions with it,
# then applies the 80/10/10 rule with the same generator. Here is that rule by hand, from the same
# draws, checked against the dataset's masked ids:

# %%
g = torch.Generator().manual_seed(SEED * 1_000_003 + 0)
chosen = choose_mlm_positions(ds.eligible, ds.token_type_ids, 0.15, g)      # (N, T) bool
assert torch.equal(chosen, ds.chosen)
Y = ds.original_ids.long()                                                  # (N, T) the true ids
n_special = len(SPECIAL_TOKENS)

u = torch.rand(Y.shape, generator=g)                                        # one draw per position
random_ids = n_special + torch.randint(V - n_special, Y.shape, generator=g) # a non-special token each
X = Y.clone()
X[chosen & (u < 0.8)] = ds.vocab["[MASK]"]                                  # 80%: [MASK]
swap = chosen & (u >= 0.8) & (u < 0.9)
X[swap] = random_ids[swap]                                                  # 10%: a random token
                                                                            # 10% (u >= 0.9): unchanged
assert torch.equal(X, ds.input_ids.long())

n_eligible, n_chosen = ds.eligible.sum().item(), chosen.sum().item()
print(f"chosen: {n_chosen:,} of {n_eligible:,} eligible tokens ({n_chosen / n_eligible:.1%})")
for name, where in (("[MASK]", chosen & (u < 0.8)), ("random", swap), ("kept", chosen & (u >= 0.9))):
    print(f"  {name:7} {where.sum().item() / n_chosen:.1%}")

# %% [markdown]
# **The DataFrame.** The walkthrough keeps each sample as one row: the masked ids X (the model's
# input), the original ids Y (the targets), the *inverse token mask* (`False` where a token was
# chosen) and the NSP label.

# %%
df = ds.df
row = df.iloc[0]
print("X  masked_indices:", np.array(row["masked_indices"]))
print("Y  indices:       ", np.array(row["indices"]))
print("token_mask (1 = not chosen):", row["token_mask"].astype(int))
print(f"is_next: {row['is_next']}; {len(df):,} rows, positive share {df['is_next'].mean():.2f}")
df.head()

# %% [markdown]
# ## 6. A batch
#
# Training takes 12 samples at a time, all tensors of shape `[B, T]`: the masked ids, the segment
# ids, the attention mask (1 on real tokens, 0 on `[PAD]`) and the MLM labels, which hold the
# true id at chosen positions and -100 elsewhere (PyTorch's `ignore_index`: the loss skips those);
# and one NSP label per pair, `[B]`.

# %%
B = 12
batch = ds.batch(torch.arange(B))
for name, t in batch.items():
    print(f"{name:15} {str(list(t.shape)):10} {t.dtype}")
masked = batch["mlm_labels"] != IGNORE_INDEX                                # (B, T)
M = int(masked.sum())
print(f"M = {M} positions to predict in this batch")

# %% [markdown]
# ## 7. The model, stage by stage
#
# The walkthrough's model: width H = 64, one encoder layer, 4 heads of 16, a feed-forward inner
# width of 36, fixed sin/cos positions. `preset("seed")` is that model; the config uses the
# Hugging Face field names. (The walkthrough's 36 was also each head's width; here a head is
# H / nh = 16 wide, as in the Transformer.)

# %%
config = preset("seed", vocab_size=V, pad_token_id=ds.special.pad)
torch.manual_seed(SEED)
model = BertForPreTraining(config).eval()
H, nh, hs, I = config.hidden_size, config.num_attention_heads, config.head_size, config.intermediate_size
T = ds.seq_len
print(config)
print(f"\n{model.num_parameters():,} parameters, {V * H:,} of them in the token table (V x H)")

# %% [markdown]
# `record_shapes` hooks every module and records the shape of what it returns, in the order the
# forward pass computes it. One forward pass on the batch, labels included, records every shape
# printed below.

# %%
with record_shapes(model) as shapes:
    out = model(**batch)


def show(*parts):
    """The recorded shapes of the modules whose name contains one of `parts`."""
    print(format_shapes([r for r in shapes if any(p in r.name for p in parts)]))


print(f"input_ids {list(batch['input_ids'].shape)}: (B, T), {len(shapes)} modules recorded")

# %% [markdown]
# ### 7.1 Embeddings (BERT section 3, Figure 2)
#
# Each position's vector is the sum of three:
#
# * **token**: row `id` of a `V x H` table;
# * **position**: the Transformer's fixed sinusoids (section 3.5), one `[T, H]` table for every
#   sample. Attention itself ignores order; this is how the model knows it;
# * **segment**: row 0 of a 2-row table for sentence A, row 1 for B. (The original's segment
#   table had V rows, of which two were ever used.)
#
# The position encoding: dimension pair (2i, 2i+1) holds the sine and cosine of p / 10000^(2i/H),
# wavelengths from 2π to 10000·2π. By hand, against the library's `sinusoidal_positions`:

# %%
p = torch.arange(T, dtype=torch.float64)[:, None]                          # (T, 1) positions
i2 = torch.arange(0, H, 2, dtype=torch.float64)                            # (H/2,) the even dimensions 2i
angle = p / 10000 ** (i2 / H)                                              # (T, H/2)
pe = torch.zeros(T, H, dtype=torch.float64)
pe[:, 0::2], pe[:, 1::2] = torch.sin(angle), torch.cos(angle)              # (T, H)
torch.testing.assert_close(pe.float(), sinusoidal_positions(T, H))
torch.testing.assert_close(pe.float(), model.bert.embeddings.position_table()[:T])

fig, ax = plt.subplots(figsize=(9, 3.5))
im = ax.imshow(pe.numpy(), cmap="RdBu", aspect="auto", vmin=-1, vmax=1)
ax.set(xlabel="dimension (H)", ylabel="position (T)", title=f"position encoding {list(pe.shape)}")
fig.colorbar(im, ax=ax)
plt.show()

# %% [markdown]
# The sinusoids have values of size 1, so the token vectors are scaled by sqrt(H) (Transformer
# section 3.4) and neither drowns the other. The sum goes through **LayerNorm**: each vector
# shifted to mean 0 and scaled to variance 1, then a learned scale and shift. Both by hand:

# %%
emb = model.bert.embeddings


def layer_norm(x, ln):
    """Each vector to mean 0, variance 1, then the learned scale (weight) and shift (bias)."""
    mean = x.mean(-1, keepdim=True)
    var = x.var(-1, unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + ln.eps) * ln.weight + ln.bias


with torch.no_grad():
    tok = emb.word_embeddings.weight[batch["input_ids"]] * math.sqrt(H)       # (B, T, H)
    seg = emb.token_type_embeddings.weight[batch["token_type_ids"]]           # (B, T, H)
    x = layer_norm(tok + pe.float() + seg, emb.LayerNorm)                     # (B, T, H); (T, H) broadcast
    torch.testing.assert_close(x, emb(batch["input_ids"], batch["token_type_ids"]))
print("segment table:", list(emb.token_type_embeddings.weight.shape))
show("embeddings")

# %% [markdown]
# ### 7.2 Multi-head self-attention (Transformer sections 3.2.1 and 3.2.2)
#
# Every position asks a question (query q), advertises what it holds (key k) and offers content
# (value v), each a linear map of its vector. A head works in hs = 16 of the 64 dimensions. The
# scores q·kᵀ / sqrt(hs) say how much each position (row) attends to each other one (column);
# dividing by sqrt(hs) keeps them near unit size so the softmax does not saturate. (The original
# divided by the square root of the sequence length, sqrt(55), instead.) `[PAD]` keys get a score
# of -∞ (the library adds the most negative float), so the softmax gives them weight 0. Each row
# of weights then averages the values.
#
# Head 0, written out from the real layer's weights, then all four heads side by side:

# %%
layer = model.bert.encoder.layer[0]
attn = layer.attention.self
keep = batch["attention_mask"]                                             # (B, T): 1 token, 0 [PAD]


def one_head(x, n):
    """Head n of `attn` on x (B, T, H): its output (B, T, hs) and attention weights (B, T, T)."""
    cols = slice(n * hs, (n + 1) * hs)                                     # head n's rows of each weight
    q = x @ attn.query.weight[cols].T + attn.query.bias[cols]              # (B, T, hs)
    k = x @ attn.key.weight[cols].T + attn.key.bias[cols]                  # (B, T, hs)
    v = x @ attn.value.weight[cols].T + attn.value.bias[cols]              # (B, T, hs)
    scores = q @ k.transpose(1, 2) / math.sqrt(hs)                         # (B, T, T)
    scores = scores.masked_fill(keep[:, None, :] == 0, float("-inf"))      # no query looks at [PAD]
    weights = scores.softmax(dim=-1)                                       # (B, T, T), rows sum to 1
    return weights @ v, weights                                            # (B, T, hs)


with torch.no_grad():
    head0, weights0 = one_head(x, 0)
    ctx = torch.cat([one_head(x, n)[0] for n in range(nh)], dim=-1)        # (B, T, H)
    mask_bias = key_mask_bias(keep, x.dtype)                               # (B, 1, 1, T)
    lib_ctx, lib_weights = attn(x, mask_bias, output_attentions=True)      # written-out path
    torch.testing.assert_close(weights0, lib_weights[:, 0])
    torch.testing.assert_close(ctx, lib_ctx)
    torch.testing.assert_close(ctx, attn(x, mask_bias)[0])                 # the fused kernel
pad = (keep == 0)[:, None, :].expand_as(weights0)
print(f"head 0: output {list(head0.shape)}, weights {list(weights0.shape)}; "
      f"largest weight on a [PAD] key {weights0[pad].max().item():.1f}")
print(f"all heads: {list(ctx.shape)}")
show("attention.self")

# %% [markdown]
# The library computes all heads at once: it views `[B, T, H]` as `[B, T, nh, hs]` and moves the
# head axis forward, `[B, nh, T, hs]`, which is the `[12, 4, 55, 16]` and `[12, 4, 55, 55]` above.

# %%
show_code(type(attn).forward)

# %% [markdown]
# ### 7.3 Residual connection and LayerNorm (Transformer section 3.1)
#
# The heads' output goes through a dense layer, is **added to the block's input**, and
# normalised. The residual lets a layer add to its input instead of replacing it, so the signal
# and its gradient pass straight through. (The original had no residual connections at all.)

# %%
with torch.no_grad():
    y = layer_norm(x + layer.attention.output.dense(ctx), layer.attention.output.LayerNorm)   # (B, T, H)
    torch.testing.assert_close(y, layer.attention.output(ctx, x))
show("attention.output")

# %% [markdown]
# ### 7.4 GELU and the feed-forward network (Transformer section 3.3)
#
# Then a two-layer network applied to each position on its own: H → I = 36 (BERT uses 4H), GELU,
# back to H, and again residual + LayerNorm. GELU is x·Φ(x), Φ the standard normal's
# distribution function: like ReLU for large |x|, but smooth, and slightly negative just below 0.

# %%
def gelu(z):
    return 0.5 * z * (1 + torch.erf(z / math.sqrt(2)))                     # z * P(N(0, 1) < z)


grid = torch.linspace(-4, 4, 161)
torch.testing.assert_close(gelu(grid), F.gelu(grid))
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(grid, F.relu(grid), label="ReLU", ls="--")
ax.plot(grid, gelu(grid), label="GELU")
ax.set(xlabel="x", ylim=(-0.5, 3))
ax.grid(alpha=0.3)
ax.legend()
plt.show()

# %%
with torch.no_grad():
    inner = gelu(layer.intermediate.dense(y))                                        # (B, T, I)
    h = layer_norm(y + layer.output.dense(inner), layer.output.LayerNorm)            # (B, T, H)
    encoded = model.bert(batch["input_ids"], batch["token_type_ids"], keep)
    torch.testing.assert_close(h, layer(x, mask_bias)[0])
    torch.testing.assert_close(h, encoded.last_hidden_state)
show("intermediate", "layer.0.output")

# %% [markdown]
# That is one encoder block, and the whole encoder of this model; BERT-base stacks 12. The
# **pooler** reads the `[CLS]` position, `tanh(dense(h[:, 0]))`, `[B, H]`: the vector the NSP
# head sees.

# %%
with torch.no_grad():
    pooled = torch.tanh(model.bert.pooler.dense(h[:, 0]))                           # (B, H)
    torch.testing.assert_close(pooled, encoded.pooler_output)
print(format_shapes([r for r in shapes if r.name in ("bert.encoder.layer.0", "bert.pooler", "bert")]))

# %% [markdown]
# ### 7.5 The MLM head: dense and sparse
#
# Dense, GELU, LayerNorm, then a decoder to V logits whose weight matrix *is* the token table
# (tied, as in BERT), plus a bias. Run on every position it gives `[B, T, V]`. Only the M chosen
# positions have a target, so the library runs it on those alone, `[M, V]`: the same logits where
# it matters, and the model's largest matmul shrinks from B·T rows to M.

# %%
head = model.cls.predictions
assert head.decoder.weight is emb.word_embeddings.weight                           # tied


def mlm_head(h):
    t = layer_norm(gelu(head.transform.dense(h)), head.transform.LayerNorm)        # (..., H)
    return t @ emb.word_embeddings.weight.T + head.bias                            # (..., V)


with torch.no_grad():
    dense_logits = mlm_head(h)                                                     # (B, T, V)
    sparse_logits = mlm_head(h[masked])                                            # (M, V)
torch.testing.assert_close(dense_logits[masked], sparse_logits)
torch.testing.assert_close(sparse_logits, out.mlm_logits)
print(f"dense  {list(dense_logits.shape)} (B, T, V)\nsparse {list(sparse_logits.shape)} (M, V)")
show("cls.predictions")

# %% [markdown]
# ### 7.6 The NSP head
#
# One linear layer from the pooled `[CLS]` vector to 2 logits (index 1 = "B follows A"):

# %%
nsp = model.cls.seq_relationship
with torch.no_grad():
    nsp_logits = pooled @ nsp.weight.T + nsp.bias                                  # (B, 2)
torch.testing.assert_close(nsp_logits, out.nsp_logits)
show("seq_relationship")

# %% [markdown]
# ### 7.7 The losses
#
# Both are cross-entropies, the mean of -log(probability of the right answer): MLM over the M
# chosen positions, NSP over the B pairs; the model's loss is their sum. An untrained model
# spreads its probability evenly, so the MLM loss starts near ln V and the NSP loss near ln 2.
# (The original's MLM loss ignored label 0, which is the id of `[CLS]`, and its accuracy divided
# by every position instead of the masked ones.)

# %%
def cross_entropy(logits, targets):
    return -logits.log_softmax(-1)[torch.arange(len(targets)), targets].mean()


with torch.no_grad():
    mlm_loss = cross_entropy(sparse_logits, batch["mlm_labels"][masked])
    nsp_loss = cross_entropy(nsp_logits, batch["nsp_labels"])
torch.testing.assert_close(mlm_loss, out.mlm_loss)
torch.testing.assert_close(nsp_loss, out.nsp_loss)
torch.testing.assert_close(mlm_loss + nsp_loss, out.loss)
print(f"MLM loss {mlm_loss.item():.3f}  (ln V = {math.log(V):.3f})")
print(f"NSP loss {nsp_loss.item():.3f}  (ln 2 = {math.log(2):.3f})")

# %% [markdown]
# ## 8. Training
#
# BERT's recipe (appendix A.2): AdamW, a learning rate warmed up linearly then decayed linearly
# to 0, and the gradient norm clipped at 1.0. (The original used Adam at a fixed rate, without
# warmup or clipping.)
#
# **The optimizer.** AdamW decays weights towards 0 at every step, but not biases and LayerNorm
# parameters: two parameter groups. By hand, checked against the library's `make_optimizer`:

# %%
EPOCHS, PEAK_LR, WEIGHT_DECAY, WARMUP = 4, 2e-3, 0.1, 0.06       # python -m annotated_bert.train's defaults


def bert_adamw(model):
    matrices = [p for p in model.parameters() if p.dim() >= 2]   # weights and embedding tables
    vectors = [p for p in model.parameters() if p.dim() < 2]     # biases, LayerNorm
    return torch.optim.AdamW([{"params": matrices, "weight_decay": WEIGHT_DECAY},
                              {"params": vectors, "weight_decay": 0.0}],
                             lr=PEAK_LR, betas=(0.9, 0.999), eps=1e-6)


mine, library = bert_adamw(model), make_optimizer(model, PEAK_LR, WEIGHT_DECAY)
for a, b in zip(mine.param_groups, library.param_groups, strict=True):
    assert [id(p) for p in a["params"]] == [id(p) for p in b["params"]]
    assert (a["weight_decay"], a["betas"], a["eps"]) == (b["weight_decay"], b["betas"], b["eps"])
print([(len(grp["params"]), grp["weight_decay"]) for grp in mine.param_groups], "(tensors, decay)")

# %% [markdown]
# **The schedule.** With p = step / total_steps and w the warmup fraction, the rate is
# peak · p / w during warmup and peak · (1 - p) / (1 - w) after. Checked at every step of the run
# against the library's `Schedule`:

# %%
steps_per_epoch = len(ds) // B                                # the last partial batch is dropped
total_steps = EPOCHS * steps_per_epoch
warmup = int(WARMUP * total_steps) / total_steps              # a whole number of warmup steps


def learning_rate(step):
    p = step / total_steps
    if p < warmup:
        return PEAK_LR * p / warmup
    return PEAK_LR * (1 - p) / (1 - warmup)


schedule = Schedule(PEAK_LR, total_steps, warmup)
assert all(math.isclose(learning_rate(s), schedule.lr(schedule.progress(s)), rel_tol=1e-12, abs_tol=1e-15)
           for s in range(total_steps))
print(f"{total_steps:,} steps, {int(WARMUP * total_steps)} of warmup; lr at steps 0, 100, "
      f"{int(WARMUP * total_steps)}, {total_steps // 2}, {total_steps - 1}: "
      + ", ".join(f"{learning_rate(s):.2e}" for s in (0, 100, int(WARMUP * total_steps), total_steps // 2, total_steps - 1)))

# %% [markdown]
# **The loop.** Each epoch visits the training samples in a seeded random order (the same order
# `annotated_bert.train` draws). One step: set the learning rate, forward to the loss, backward,
# clip, step. Twenty steps, written out:

# %%
def batches(epoch):
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(SEED * 1000 + epoch))
    return [order[s * B:(s + 1) * B] for s in range(steps_per_epoch)]


N = 20
torch.manual_seed(SEED)
model = BertForPreTraining(config).train()
optimizer = bert_adamw(model)
for step, idx in enumerate(batches(0)[:N]):
    lr = learning_rate(step)
    for group in optimizer.param_groups:
        group["lr"] = lr
    out = model(**ds.batch(idx))                                  # forward: both losses
    optimizer.zero_grad(set_to_none=True)
    out.loss.backward()                                           # backward: every gradient
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)       # rescale if the norm exceeds 1
    optimizer.step()                                              # AdamW
    if (step + 1) % 5 == 0:
        print(f"step {step + 1:2d}: loss {out.loss.item():.3f} (MLM {out.mlm_loss.item():.3f}, "
              f"NSP {out.nsp_loss.item():.3f}), lr {lr:.2e}")

# %% [markdown]
# The library's `train_step` is the step that `python -m annotated_bert.train` takes:

# %%
show_code(train_step)

# %% [markdown]
# From the same seed and the same batches, twenty calls of it leave the same parameters as the
# twenty steps above:

# %%
torch.manual_seed(SEED)
twin = BertForPreTraining(config).train()
twin_optimizer = make_optimizer(twin, PEAK_LR, WEIGHT_DECAY)
for step, idx in enumerate(batches(0)[:N]):
    result = train_step(twin, ds.batch(idx), twin_optimizer, schedule, step)
torch.testing.assert_close(dict(twin.named_parameters()), dict(model.named_parameters()))
print(f"after {N} steps: the same parameters; last loss {result.loss:.3f}, gradient norm {result.grad_norm:.2f}")

# %% [markdown]
# **The full run**, four epochs, through the library's command line: the same model, data,
# batches and schedule as above. After every epoch it evaluates on the held-out reviews, and it
# writes `metrics.jsonl` and a checkpoint to `RUN`. A couple of minutes on a laptop CPU.

# %%
exit_code = train.main(["--data", DATA, "--context-length", str(L), "--epochs", str(EPOCHS),
                        "--seed", str(SEED), "--out", RUN, "--quiet"])
assert exit_code == 0, f"training failed with exit code {exit_code}"

# %% [markdown]
# The loss curves, from `metrics.jsonl`: training losses averaged over 50 steps, validation
# losses (dots) at the end of every epoch.

# %%
log = pd.DataFrame(read_jsonl(os.path.join(RUN, "metrics.jsonl")))
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
for ax, task in zip(axes, ("mlm", "nsp")):
    for split, style in (("train", "-"), ("val", "o--")):
        part = log[log["split"] == split]
        ax.plot(part["step"], part[f"{task}_loss"], style, label=split)
    ax.set(title=f"{task.upper()} loss", xlabel="optimizer step", ylabel="cross-entropy")
axes[0].axhline(math.log(V), color="gray", ls=":", label="uniform guess (ln V)")
axes[1].axhline(math.log(2), color="gray", ls=":", label="chance (ln 2)")
for ax in axes:
    ax.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# **What the numbers mean.** The trained model on every held-out sample, by hand: its top
# prediction at each masked position. The accuracy equals the one the run logged. Many targets
# are `[UNK]`, the stand-in for every word too rare to be in the vocabulary, and predicting
# `[UNK]` for them counts as right; so the accuracy is given without those targets too.

# %%
predictor = Predictor.load(RUN)
trained = predictor.model                                        # eval mode
assert predictor.vocab.itos == ds.vocab.itos                     # the run read the same reviews
predictions, targets, nsp_right = [], [], []
with torch.no_grad():
    for start in range(0, len(ds.val), 256):
        b = ds.val.batch(torch.arange(start, min(start + 256, len(ds.val))))
        o = trained(**b)
        predictions.append(o.mlm_logits.argmax(-1))              # (M,)
        targets.append(b["mlm_labels"][b["mlm_labels"] != IGNORE_INDEX])
        nsp_right.append(o.nsp_logits.argmax(-1) == b["nsp_labels"])
pred, target = torch.cat(predictions), torch.cat(targets)
right, unk = pred == target, target == ds.special.unk
final = log[log["split"] == "val"].iloc[-1]
assert math.isclose(right.float().mean().item(), final["mlm_acc"], rel_tol=1e-6)
top = torch.bincount(target, minlength=V).argmax().item()
print(f"held-out masked positions: {len(target):,}; [UNK] among them: {unk.float().mean():.1%}")
print(f"MLM accuracy {right.float().mean():.3f}; without the [UNK] targets {right[~unk].float().mean():.3f}")
print(f"always guessing the most frequent target, {ds.vocab.itos[top]!r}: {(target == top).float().mean():.3f}")
print(f"NSP accuracy {torch.cat(nsp_right).float().mean():.3f} (chance 0.5); "
      f"losses: MLM {final['mlm_loss']:.3f}, NSP {final['nsp_loss']:.3f} (ln 2 = {math.log(2):.3f})")

# %% [markdown]
# About 8% of the held-out targets are `[UNK]`. MLM has learned something real: well above
# guessing the most frequent target, with or without `[UNK]`. NSP has not: its accuracy and loss
# stay at chance, as the curve above shows. A plausible reason is the depth. Telling a
# continuation from a random sentence takes comparing A with B (a random B is usually about
# another film), and in a single layer `[CLS]` receives one weighted average of both sentences'
# vectors, with no earlier layer in which a word of A could have looked at the words of B. We do
# not test that here. BERT-base has 12 layers and trained on far more text; later work (RoBERTa,
# Liu et al. 2019) found NSP could be dropped altogether.
#
# ## 9. What the model learned
#
# `Predictor` loads the checkpoint with its vocabulary and context length, and lays text out
# exactly as in training. **Fill in the blank** (the walkthrough's inference (a)): with no labels,
# the model returns logits at every position; the MLM prediction is the row at the `[MASK]`.

# %%
enc = predictor.encode("i [MASK] this movie")
with torch.no_grad():
    logits = trained(**enc).mlm_logits                           # (1, T, V)
at_mask = logits[enc["input_ids"] == predictor.vocab["[MASK]"]]  # (1, V)
print(f"input_ids {list(enc['input_ids'].shape)} -> logits {list(logits.shape)} -> at the mask {list(at_mask.shape)}")
best = predictor.fill_mask("i [MASK] this movie", top_k=1)[0][0][0]
assert best == predictor.vocab.itos[at_mask[0, len(SPECIAL_TOKENS):].argmax().item() + len(SPECIAL_TOKENS)]

for sentence in ["it is one [MASK] the best films i have seen",
                 "the [MASK] of the film is great",
                 "i [MASK] this movie",
                 "this is one of the [MASK] movies i have ever seen"]:
    options = predictor.fill_mask(sentence, top_k=5)[0]
    print(f"{sentence}\n   " + ", ".join(f"{t} ({p:.2f})" for t, p in options))

# %% [markdown]
# The model gets the grammar of a gap more often than its meaning: `of` after "one", nouns
# before "of the film", a verb after "i". "One of the ___ movies" wants `best` or `worst`, and
# it offers nouns.
#
# **Next sentence** (inference (b)): the NSP head's probability that B follows A, for a true pair
# of a held-out review and for a pair whose B comes from another review, and the walkthrough's
# closed-set answering: pair a question with each candidate and rank them by that probability.
# With the head at chance, all are near 0.5 and the ranking means nothing; the mechanism is the
# point.

# %%
val_reviews = [ds.reviews[i] for i in np.flatnonzero(ds.is_val_review)]
first, other = ([s.strip() for s in r.split(".") if s.strip()] for r in val_reviews[:2])
for kind, a, b in (("true pair", first[0], first[1]), ("random pair", first[0], other[1])):
    print(f"{kind}: P(B follows A) = {predictor.next_sentence_probability(a, b):.3f}\n  A: {a}\n  B: {b}")
for answer, prob in predictor.rank_answers("what did you think of the movie ?",
                                           ["i loved it , the acting was great .", "the train leaves at seven .",
                                            "it was boring and far too long ."]):
    print(f"{prob:.3f}  {answer}")

# %% [markdown]
# **Attention, seen.** One held-out sample through the trained model, head 0: row = the position
# attending, column = the position attended to. The `[PAD]` columns get exactly zero weight.

# %%
sample = ds.val.batch(torch.tensor([0]))
with torch.no_grad():
    weights = trained(sample["input_ids"], sample["token_type_ids"], sample["attention_mask"],
                      output_attentions=True).attentions[0]     # (1, nh, T, T)
labels = ds.val.tokens(0)
fig, ax = plt.subplots(figsize=(10, 9))
ax.imshow(weights[0, 0].numpy(), cmap="magma")
ax.set_xticks(range(T), labels, rotation=90, fontsize=7)
ax.set_yticks(range(T), labels, fontsize=7)
ax.set_title(f"layer 0, head 0: attention weights {list(weights[0, 0].shape)}")
plt.show()

# %% [markdown]
# ## Where to go next
#
# * **`notebooks/real_bert.ipynb`**: from this toy to the real thing: WordPiece tokens, learned
#   positions, the `[CLS] A [SEP] B [SEP]` layout, BERT-base's sizes, and real pretrained weights
#   loaded into the same modules.
# * Train longer or bigger from the command line, e.g.
#   `python -m annotated_bert.train --preset bert-mini --epochs 4`, and query the run with
#   `python -m annotated_bert.predict --checkpoint runs/pretrain fill "this movie was [MASK] good"`.
# * Read `annotated_bert/model.py` top to bottom: every shape printed above has a comment there.
