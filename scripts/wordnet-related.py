#!/usr/bin/env python3
"""Builds crates/recall-memory/src/rank/data/wordnet-related.tsv from WordNet 3.0.

Usage: scripts/wordnet-related.sh (downloads Debian's wordnet-base and runs
this), or: python3 scripts/wordnet-related.py <wordnet dict dir> <out.tsv>

For each lower-case word of WordNet's nouns, verbs and adjectives: the other
words of its two most frequent senses (synonyms) and of those senses'
hypernyms up to two levels (more general words), so that a memory saying
"warfarin" also answers a question about an "anticoagulant". Proper names
(capitalised lemmas, instances) are left out, and so are the most generic
words (related to more than 300 words), which would match everything.
Standard library only; deterministic output, sorted by word.
"""
import collections
import re
import sys

SENSES = 2
DEPTH = 2
GENERIC = 300
WORD = re.compile(r"[a-z]{3,}")


def main(wn, out):
    synsets = {}
    for pos, name in (("n", "noun"), ("v", "verb"), ("a", "adj")):
        with open(f"{wn}/data.{name}", encoding="latin-1") as f:
            for line in f:
                if line.startswith("  "):
                    continue
                head = line.split("|")[0].split()
                offset, count = head[0], int(head[3], 16)
                lemmas = [head[4 + 2 * i] for i in range(count)]
                p = 4 + 2 * count
                pointers = int(head[p])
                p += 1
                hypernyms = []
                for _ in range(pointers):
                    symbol, target, target_pos = head[p], head[p + 1], head[p + 2]
                    p += 4
                    if symbol == "@":
                        hypernyms.append(("a" if target_pos == "s" else target_pos, target))
                common = [re.sub(r"\(.*\)$", "", l) for l in lemmas]
                synsets[(pos, offset)] = (common, hypernyms)

    def words(lemma):
        if lemma[:1].isupper():
            return []
        return [w for w in re.split(r"[_\-]", lemma) if WORD.fullmatch(w)]

    table = {}
    for pos, name in (("n", "noun"), ("v", "verb"), ("a", "adj")):
        with open(f"{wn}/index.{name}", encoding="latin-1") as f:
            for line in f:
                if line.startswith("  "):
                    continue
                fields = line.split()
                lemma, senses = fields[0], int(fields[2])
                if not WORD.fullmatch(lemma):
                    continue
                offsets = fields[-senses:]
                related = table.setdefault(lemma, [])
                for offset in offsets[:SENSES]:
                    synset = synsets.get((pos, offset))
                    if synset is None:
                        continue
                    lemmas, hypernyms = synset
                    # A sense only known as a proper name is not this word.
                    if all(l[:1].isupper() for l in lemmas):
                        continue
                    for l in lemmas:
                        related += words(l)
                    frontier = hypernyms
                    for _ in range(DEPTH):
                        nxt = []
                        for h in frontier:
                            if h in synsets:
                                hl, hh = synsets[h]
                                for l in hl:
                                    related += words(l)
                                nxt += hh
                        frontier = nxt
    for lemma, related in table.items():
        table[lemma] = [w for w in dict.fromkeys(related) if w != lemma]
    frequency = collections.Counter(w for related in table.values() for w in related)
    generic = {w for w, n in frequency.items() if n > GENERIC}
    lines = 0
    with open(out, "w", encoding="ascii") as f:
        for lemma in sorted(table):
            related = [w for w in table[lemma] if w not in generic]
            if related:
                f.write(lemma + "\t" + " ".join(related) + "\n")
                lines += 1
    print(f"{out}: {lines} words ({len(generic)} generic words left out)", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
