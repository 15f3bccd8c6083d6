#!/usr/bin/env bash
# Writes a corpus of short definitional texts from WordNet 3.0 (Debian's
# package `wordnet-base`) for `recall-distill --corpus`: one line per
# synset, its texts separated by tabs (a group that the fit holds out
# together, so that its held-out measure is not flattered by a text's
# near-copies):
#
#   scripts/wordnet-corpus.sh <out file> [<wordnet dict dir>]
#
# Each synset gives up to four texts:
#   "warfarin, Coumadin: an anticoagulant (trade name Coumadin) used to ..."
#   "an anticoagulant (trade name Coumadin) used to ..."   (the gloss)
#   "warfarin, Coumadin"                                   (the lemmas)
#   each quoted example sentence of the gloss
# Texts seen before are dropped (a synset left with none gives no line);
# the order is the files' (noun, verb, adj, adv), so the output is the
# same on every run.
#
# Without a dict dir the package is fetched with `apt-get download`
# (run `apt-get update` first on a fresh machine) and unpacked in a
# temporary directory. WordNet's licence (WordNet 3.0, permissive; its
# notice must accompany copies) is written next to the corpus as
# `<out file>.LICENSE`. The corpus is a build input: do not commit it.
set -euo pipefail

out=${1:?usage: scripts/wordnet-corpus.sh <out file> [<wordnet dict dir>]}
dict=${2:-}
mkdir -p "$(dirname "$out")"
work=$(mktemp -d)
chmod 755 "$work" # apt-get download writes as its own user
trap 'rm -rf "$work"' EXIT

licence=""
if [[ -z $dict ]]; then
    mkdir -m 777 "$work/deb"
    (cd "$work/deb" && apt-get download wordnet-base >/dev/null)
    dpkg-deb -x "$work"/deb/wordnet-base_*.deb "$work/root"
    dict="$work/root/usr/share/wordnet"
    licence="$work/root/usr/share/doc/wordnet-base/copyright"
elif [[ -f $dict/../doc/wordnet-base/copyright ]]; then
    licence="$dict/../doc/wordnet-base/copyright"
fi
for pos in noun verb adj adv; do
    [[ -f $dict/data.$pos ]] || { echo "wordnet-corpus: no $dict/data.$pos" >&2; exit 1; }
done

# data.* lines (see wndb(5WN)): offset lex_filenum ss_type w_cnt(2 hex
# digits) then w_cnt pairs of (word, lex_id), pointers, frames, then
# "| gloss". Lines starting with two spaces are the licence header.
awk '
function hex(s,    i, n, c) {
    n = 0
    s = tolower(s)
    for (i = 1; i <= length(s); i++) {
        c = index("0123456789abcdef", substr(s, i, 1)) - 1
        n = n * 16 + c
    }
    return n
}
function trim(s) {
    sub(/^[ \t;]+/, "", s)
    sub(/[ \t;]+$/, "", s)
    return s
}
function emit(s) {
    s = trim(s)
    gsub(/[ \t]+/, " ", s)
    if (s != "" && !(s in seen)) {
        seen[s] = 1
        group = group (group == "" ? "" : "\t") s
    }
}
/^  / { next }
{
    bar = index($0, " | ")
    if (bar == 0) next
    head = substr($0, 1, bar - 1)
    group = ""
    gloss = substr($0, bar + 3)
    split(head, f, " ")
    count = hex(f[4])
    lemmas = ""
    for (i = 0; i < count; i++) {
        w = f[5 + 2 * i]
        gsub(/_/, " ", w)
        sub(/\((a|p|ip)\)$/, "", w)
        lemmas = lemmas (i ? ", " : "") w
    }
    # The definition is the gloss up to its first quoted example.
    q = index(gloss, "\"")
    definition = trim(q ? substr(gloss, 1, q - 1) : gloss)
    if (definition != "") {
        emit(lemmas ": " definition)
        emit(definition)
    }
    emit(lemmas)
    rest = gloss
    while (match(rest, /"[^"]+"/)) {
        emit(substr(rest, RSTART + 1, RLENGTH - 2))
        rest = substr(rest, RSTART + RLENGTH)
    }
    if (group != "") print group
}
' "$dict/data.noun" "$dict/data.verb" "$dict/data.adj" "$dict/data.adv" >"$out"

if [[ -n $licence && -f $licence ]]; then
    cp "$licence" "$out.LICENSE"
else
    echo "wordnet-corpus: WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved." >"$out.LICENSE"
fi
echo "wordnet-corpus: $(tr '\t' '\n' <"$out" | wc -l) texts in $(wc -l <"$out") groups in $out" >&2
