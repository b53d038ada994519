"""Feature extraction: one fixed vector per text from a pretrained encoder, no head trained
(Devlin et al. 2018, section 5.3, "feature-based approach"; mean pooling as in Sentence-BERT,
Reimers & Gurevych 2019).

    model = BertModel.from_pretrained(path)
    tok = WordPieceTokenizer.from_file(path)
    vectors = encode(model, tok, texts, pooling="mean", normalize=True)     # (N, H)

Pooling:
- "cls":  the final hidden state of [CLS], h[:, 0]. This is *not* BERT's `pooler_output`, which is
          tanh(dense(h[:, 0])) with a dense layer trained only for next-sentence prediction; the
          raw [CLS] vector is what fine-tuning builds on.
- "mean": the average of the hidden states of the real tokens ([CLS] and [SEP] included, padding
          excluded through the attention mask), as sentence-transformers models were trained.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from annotated_bert.tokenization import pad_batch

PROGRESS_THRESHOLD = 1000  # texts; above this a progress bar is shown unless progress=False


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """(B, T, H) hidden states -> (B, H) by "cls" or "mean" pooling (see the module docstring)."""
    if pooling == "cls":
        return hidden[:, 0]                                                 # (B, H)
    if pooling == "mean":
        mask = attention_mask[:, :, None].to(hidden.dtype)                  # (B, T, 1)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)          # (B, H)
    raise ValueError(f"pooling must be 'cls' or 'mean', got {pooling!r}")


def encode(model: torch.nn.Module, tokenizer, texts: str | Sequence[str], pooling: str = "cls",
           batch_size: int = 32, max_length: int | None = None, normalize: bool = False,
           device: str | torch.device | None = None, progress: bool | None = None) -> torch.Tensor:
    """Vectors for `texts`, (N, H) float32 on the CPU, row i for texts[i].

    `model`: a BertModel or any model with its encoder at `.bert`; it runs in eval mode under
    no_grad (its training mode is restored afterwards), on `device` if given (the model is moved
    there), else where it is. `tokenizer`: a WordPieceTokenizer (or a Hugging Face tokenizer).
    Texts are tokenized once, truncated to `max_length` tokens (default: the model's position
    table), sorted by length so each batch pads little, and returned in input order.
    `normalize`: scale every vector to unit L2 norm (cosine similarity becomes a dot product).
    `progress`: a tqdm bar; None shows one for more than PROGRESS_THRESHOLD texts.
    """
    if pooling not in ("cls", "mean"):
        raise ValueError(f"pooling must be 'cls' or 'mean', got {pooling!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    bert = getattr(model, "bert", model)
    if isinstance(texts, str):
        texts = [texts]
    if device is not None:
        model.to(device)
    device = next(bert.parameters()).device
    if max_length is None:
        max_length = bert.config.max_position_embeddings
    if not texts:
        return torch.empty(0, bert.config.hidden_size)

    enc = tokenizer(list(texts), truncation=True, max_length=max_length)   # lists, one per text
    ids = enc["input_ids"]
    types = enc.get("token_type_ids") or [[0] * len(x) for x in ids]
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))            # longest first: memory errors show early
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if progress is None:
        progress = len(texts) > PROGRESS_THRESHOLD
    if progress:
        from tqdm.auto import tqdm
        batches = tqdm(batches, desc="encode", unit="batch")

    out = torch.empty(len(ids), bert.config.hidden_size)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for batch in batches:
                inputs = {k: v.to(device) for k, v in pad_batch([ids[i] for i in batch], tokenizer.pad_token_id,
                                                                 [types[i] for i in batch]).items()}  # (B, T) each
                hidden = bert(**inputs).last_hidden_state                                     # (B, T, H)
                vectors = pool(hidden, inputs["attention_mask"], pooling).float()             # (B, H)
                if normalize:
                    vectors = F.normalize(vectors, p=2, dim=-1)
                out[batch] = vectors.cpu()
    finally:
        model.train(was_training)
    return out
