"""Feature extraction (annotated_bert/features.py): `encode` against a plain loop over the texts,
one at a time. (tests/test_interop.py checks it against sentence-transformers' pooling on the real
all-MiniLM-L6-v2 weights.)"""

import torch

from annotated_bert.config import BertConfig
from annotated_bert.features import encode
from annotated_bert.model import BertModel
from annotated_bert.wordpiece import WordPieceTokenizer

WORDS = "the film movie actor plot story great bad boring funny music love hate watch never good".split()
TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "!", *WORDS, "##s", "##ing"]
TEXTS = ["the film was great!", "bad", "never watch this boring movie , never", "the actor, the plot, the music",
         "good", "funny and good and great and the story is love", "hate", "the", ""]


def random_encoder() -> BertModel:
    """Every parameter off its init, so the pooling sees vectors that differ per position."""
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=len(TOKENS), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                 intermediate_size=37, max_position_embeddings=24))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def test_encode_matches_a_manual_loop_in_input_order():
    model = random_encoder()
    model.train()
    tok = WordPieceTokenizer(TOKENS)
    for pooling in ("cls", "mean"):
        got = encode(model, tok, TEXTS, pooling=pooling, batch_size=4)
        assert got.shape == (len(TEXTS), 32) and model.training               # mode restored
        model.eval()
        for i, text in enumerate(TEXTS):
            enc = tok(text, return_tensors="pt")
            with torch.no_grad():
                h = model(enc["input_ids"], enc["token_type_ids"], enc["attention_mask"]).last_hidden_state[0]
            want = h[0] if pooling == "cls" else h.mean(0)
            torch.testing.assert_close(got[i], want, atol=1e-5, rtol=0)
        model.train()
    perm = [3, 0, 8, 5, 1, 7, 2, 6, 4]
    torch.testing.assert_close(encode(model, tok, [TEXTS[i] for i in perm], pooling="mean", batch_size=3),
                               encode(model, tok, TEXTS, pooling="mean")[perm], atol=1e-5, rtol=0)
    unit = encode(model, tok, TEXTS, normalize=True, max_length=5, progress=True)
    torch.testing.assert_close(unit.norm(dim=-1), torch.ones(len(TEXTS)))
    assert encode(model, tok, []).shape == (0, 32)
