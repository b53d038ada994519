"""annotated_bert.tasks: encoding, batching, collating and evaluating the fine-tuning tasks."""

import math
import random

import numpy as np
import torch

from annotated_bert.config import IGNORE_INDEX
from annotated_bert.tasks import (Encoding, TaskData, collate, encode_classification, head_tail,
                                  length_grouped_batches, shard)


def test_head_tail_truncation():
    ids = list(range(10))
    assert head_tail(ids, 20, "head+tail", None) == ids
    assert head_tail(ids, 6, "head", None) == [0, 1, 2, 3, 4, 5]
    assert head_tail(ids, 6, "tail", None) == [4, 5, 6, 7, 8, 9]
    assert head_tail(ids, 6, "head+tail", 2) == [0, 1, 6, 7, 8, 9]
    assert head_tail(ids, 8, "head+tail", None) == [0, 1, 4, 5, 6, 7, 8, 9]   # a quarter from the head


def test_pair_encoding_truncates_the_longer_side_first():
    class Tok:
        cls_token_id, sep_token_id = 101, 102
        encode = staticmethod(lambda text: [int(w) for w in text.split()])
    ids, types = encode_classification(Tok(), ["1 2 3 4 5 6"], ["7 8"], Encoding(max_length=9, truncation="head"))
    assert ids[0] == [101, 1, 2, 3, 4, 102, 7, 8, 102]
    assert types[0] == [0, 0, 0, 0, 0, 0, 1, 1, 1]


def test_length_grouped_batches_cover_every_example_once():
    lengths = [random.Random(i).randint(1, 500) for i in range(1000)]
    batches = length_grouped_batches(lengths, 16, seed=0, epoch=0)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(1000)) and max(len(b) for b in batches) <= 16
    # exactly ceil(n / batch) batches: --resume and the step count rely on it (IMDb: 22,500 / 32 -> 704)
    assert len(batches) == math.ceil(1000 / 16)
    assert len(length_grouped_batches([1] * 22_500, 32, seed=0, epoch=1)) == 704
    again = length_grouped_batches(lengths, 16, seed=0, epoch=0)
    assert all((a == b).all() for a, b in zip(batches, again))
    # batches are length-homogeneous: far less padding than random batches
    pad = lambda bs: sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in bs)
    rng = random.Random(0)
    shuffled = list(range(1000))
    rng.shuffle(shuffled)
    assert pad(batches) < 0.3 * pad([shuffled[i:i + 16] for i in range(0, 1000, 16)])


def test_shard_splits_a_global_batch_between_processes():
    batch = np.array([7, 3, 9, 1, 4, 8])
    parts = [shard(batch, r, 2) for r in range(2)]
    assert parts[0].tolist() == [7, 9, 4] and parts[1].tolist() == [3, 1, 8]
    assert sorted(np.concatenate([shard(batch, r, 4) for r in range(4)]).tolist()) == sorted(batch.tolist())
    assert [shard(np.array([5]), r, 2).tolist() for r in range(2)] == [[5], [5]]  # no process idle


def test_collate_pads_and_carries_each_task_s_targets():
    d = TaskData([[1, 5, 2], [1, 2]], [[0, 0, 0], [0, 0]], labels=[[IGNORE_INDEX, 3, IGNORE_INDEX], [IGNORE_INDEX, 0]])
    batch = collate(d, [0, 1], "ner", pad_id=9)
    assert batch["input_ids"].tolist() == [[1, 5, 2], [1, 2, 9]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["labels"].tolist() == [[IGNORE_INDEX, 3, IGNORE_INDEX], [IGNORE_INDEX, 0, IGNORE_INDEX]]
    qa = TaskData([[1, 5, 2]], [[0, 0, 1]], labels=[(1, 1)])
    assert collate(qa, [0], "qa", 0)["start_positions"].tolist() == [1]
    unlabeled = collate(TaskData([[1, 2]], [[0, 0]]), [0], "sentiment", 0)
    assert set(unlabeled) == {"input_ids", "token_type_ids", "attention_mask"}
    sentiment = collate(TaskData([[1, 2], [1]], [[0, 0], [0]], labels=[1, 0]), [1, 0], "sentiment", 0)
    assert sentiment["labels"].tolist() == [0, 1] and torch.equal(sentiment["input_ids"], torch.tensor([[1, 0], [1, 2]]))
