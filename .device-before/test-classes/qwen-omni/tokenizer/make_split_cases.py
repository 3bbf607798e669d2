"""Reference pieces of the Qwen split regex (from tokenizer.json) on random Unicode strings, by
Python's `regex` module, a backtracking engine with Unicode \\s, \\p{L}, \\p{N} like Oniguruma's.
Checks that Java's Pattern (with UNICODE_CHARACTER_CLASS) splits the same way.
Run: python3 make_split_cases.py > split_cases.json"""
import gzip
import json
import random
import sys

import regex

tok = json.load(gzip.open("tokenizer.json.gz"))
pattern = tok["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"]
r = regex.compile(pattern)
random.seed(7)
alphabet = list("aZé' \t\n\r\u00a0\u2003\u3000\u200b\u0085\u001c1٣½Ⅻ中🎵!?.,-_\"ſK\u0301\u200d👍🏽") + ["'s", "'LL", "  ", "\r\n"]
cases = []
for _ in range(1000):
    s = "".join(random.choice(alphabet) for _ in range(random.randint(1, 25)))
    cases.append({"text": s, "pieces": r.findall(s)})
json.dump(cases, sys.stdout, ensure_ascii=False)
