"""annotated_bert.config: BertConfig's checks, its dict round trip, and the presets' sizes."""

import pytest
import torch

from annotated_bert.config import PRESETS, BertConfig, preset
from annotated_bert.models import pretraining_class


def test_presets_and_config_errors():
    assert preset("seed").hidden_size == 64 and preset("seed").intermediate_size == 36
    assert preset("seed").position_embedding_type == "sinusoidal"
    assert preset("bert-base").num_hidden_layers == 12 and preset("bert-large").hidden_size == 1024
    assert preset("bert-mini", vocab_size=100).vocab_size == 100          # overrides win
    with pytest.raises(ValueError, match="unknown preset 'huge'; choose one of: seed"):
        preset("huge")
    with pytest.raises(ValueError, match="divisible"):
        BertConfig(hidden_size=30, num_attention_heads=4)
    with pytest.raises(ValueError, match="hidden_act"):
        BertConfig(hidden_act="swish")
    with pytest.raises(ValueError, match="position_embedding_type"):
        BertConfig(position_embedding_type="rotary")
    with pytest.raises(ValueError, match="attn_implementation"):
        BertConfig(attn_implementation="flash")
    assert set(PRESETS) >= {"seed", "bert-tiny", "bert-mini", "bert-small", "bert-base", "bert-large"}


def test_dict_round_trip_ignores_unknown_fields_and_replace_checks_again():
    config = preset("bert-tiny", vocab_size=123)
    assert BertConfig.from_dict({**config.to_dict(), "architectures": ["X"]}) == config
    assert config.head_size == 64 and config.replace(num_attention_heads=4).head_size == 32
    with pytest.raises(ValueError, match="divisible"):
        config.replace(num_attention_heads=3)


@pytest.mark.parametrize("name, millions", [("bert-tiny", 4.4), ("bert-mini", 11.3), ("bert-small", 29.1),
                                            ("bert-medium", 41.7), ("bert-base", 110.1), ("bert-large", 336.2),
                                            ("albert-mini", 4.9), ("albert-base", 11.8), ("albert-large", 17.8)])
def test_preset_sizes_are_the_ones_their_comments_state(name, millions):
    """With the pretraining heads (decoder tied) and the default vocabulary (BERT's 30,522 tokens,
    ALBERT's 30,000); built on the meta device, so no memory is spent on bert-large."""
    config = preset(name)
    with torch.device("meta"):
        model = pretraining_class(config.model_type)(config)
    assert model.num_parameters() / 1e6 == pytest.approx(millions, abs=0.05)
