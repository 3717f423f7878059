#!/usr/bin/env python3
"""Writes holdout_vectors.json: reference holdout assignments computed with the
independent `mmh3` package (murmur3_x86_32), per docs/design.md section 5.
Usage: python3 tools/holdout_vectors.py > testdata/holdout_vectors.json  (needs: pip install mmh3)"""
import json
import math
import random

import mmh3

FRACTIONS = [0.0, 0.00005, 0.0001, 0.05, 0.1, 0.12345, 0.333, 0.5, 0.999, 1.0]


def bucket(salt: str, entity_id: str) -> int:
    return mmh3.hash((salt + ":" + entity_id).encode("utf-8"), 0, signed=False) % 10000


def threshold(fraction: float) -> int:
    return math.floor(fraction * 10000 + 0.5)


def main() -> None:
    rng = random.Random(20261126)
    salts = ["eta-promo", "churn-2026q4", "", "holdout with spaces", "ünïcødé-salt", "x" * 300]
    ids = ["", "0", "42", "user-1", "rider:7:city:3", "🚕", "ÄÖÜ", "a" * 1000]
    ids += [str(rng.randrange(10**12)) for _ in range(40)]
    ids += ["".join(rng.choice("abcdef0123456789-") for _ in range(rng.randrange(1, 40))) for _ in range(40)]
    cases = []
    for salt in salts:
        for entity_id in ids:
            b = bucket(salt, entity_id)
            cases.append({
                "salt": salt,
                "id": entity_id,
                "murmur3_x86_32": mmh3.hash((salt + ":" + entity_id).encode("utf-8"), 0, signed=False),
                "bucket": b,
                "in_holdout": {str(f): b < threshold(f) for f in FRACTIONS},
            })
    json.dump({"function": "murmur3_x86_32(utf8(salt + ':' + id), seed=0) mod 10000 < floor(fraction * 10000 + 0.5)",
               "thresholds": {str(f): threshold(f) for f in FRACTIONS},
               "fractions": FRACTIONS, "cases": cases}, fp=__import__("sys").stdout, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
