#!/usr/bin/env bash
# Regenerates crates/recall-memory/src/rank/data/wordnet-related.tsv (and its
# licence) from WordNet 3.0 as Debian packages it (wordnet-base).
# Needs apt-get (no root: it only downloads the package) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download wordnet-base >/dev/null)
dpkg-deb -x "$work"/wordnet-base_*.deb "$work/x"
out=crates/recall-memory/src/rank/data
python3 scripts/wordnet-related.py "$work/x/usr/share/wordnet" "$out/wordnet-related.tsv"
sed -n '/^License: WordNet3.0/,/^Files: debian/p' "$work/x/usr/share/doc/wordnet-base/copyright" \
    | sed '$d' > "$out/WORDNET-LICENSE"
echo "wrote $out/wordnet-related.tsv and $out/WORDNET-LICENSE"
