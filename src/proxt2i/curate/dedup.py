"""Deduplication over the whole input, in input order (the first occurrence is kept): repeated keys, exact
duplicates (same sha256 of the bytes) and near duplicates (perceptual hashes within a Hamming distance).

Near duplicates are found with multi-index hashing: the hash bits are cut into distance + 1 pieces; two
hashes within the distance agree exactly on at least one piece (pigeonhole), so only the kept hashes that
share a piece with the new one are compared. Memory is a few hundred bytes per kept image (a 15M-image input
needs a driver with a few GB for this step; docs/curation.md).
"""

from __future__ import annotations

from typing import Iterable

MAX_EXAMPLES = 5


class NearDuplicateIndex:
    """Kept `bits`-bit hashes; `find(h)` returns (source, distance) of the nearest kept hash within `distance` bits
    (the earliest of equals), or None."""

    def __init__(self, distance: int, bits: int):
        pieces = distance + 1
        self.distance = distance
        bounds = [round(bits * i / pieces) for i in range(pieces + 1)]
        self.pieces = [(lo, (1 << (hi - lo)) - 1) for lo, hi in zip(bounds, bounds[1:])]
        self.tables: list[dict[int, list[int]]] = [{} for _ in self.pieces]
        self.hashes: list[int] = []
        self.sources: list[str] = []

    def find(self, h: int) -> tuple[str, int] | None:
        best = None
        for (shift, mask), table in zip(self.pieces, self.tables):
            for i in table.get((h >> shift) & mask, ()):
                d = (h ^ self.hashes[i]).bit_count()
                if d <= self.distance and (best is None or d < best[1] or (d == best[1] and i < best[2])):
                    best = (self.sources[i], d, i)
        return None if best is None else best[:2]

    def add(self, h: int, source: str) -> None:
        i = len(self.hashes)
        self.hashes.append(h)
        self.sources.append(source)
        for (shift, mask), table in zip(self.pieces, self.tables):
            table.setdefault((h >> shift) & mask, []).append(i)


def decide(scans: Iterable[tuple[int, list[dict]]], exact: bool, near_distance: int | None, bits: int) -> tuple[dict, dict, dict]:
    """scans: (part index, scanned records) in input order; a record that passed the checks has "sha256" and
    "phash" (hex). Returns (drops: {part index: {row: reason}}, counts: {reason: n}, examples: {reason: [...]})
    for the reasons duplicate_key, exact_duplicate and near_duplicate."""
    seen_sources: set[str] = set()
    seen_sha: dict[str, str] = {}
    index = NearDuplicateIndex(near_distance, bits) if near_distance is not None else None
    drops: dict[int, dict[int, str]] = {}
    counts = {"duplicate_key": 0, "exact_duplicate": 0, "near_duplicate": 0}
    examples: dict[str, list] = {k: [] for k in counts}

    def drop(part: int, rec: dict, reason: str, example: dict) -> None:
        drops.setdefault(part, {})[rec["row"]] = reason
        counts[reason] += 1
        if len(examples[reason]) < MAX_EXAMPLES:
            examples[reason].append({"source": rec["source"], **example})

    for part, records in scans:
        for rec in records:
            if rec.get("reason"):
                continue
            if rec["source"] in seen_sources:
                drop(part, rec, "duplicate_key", {})
                continue
            seen_sources.add(rec["source"])
            if exact:
                first = seen_sha.get(rec["sha256"])
                if first is not None:
                    drop(part, rec, "exact_duplicate", {"duplicate_of": first})
                    continue
                seen_sha[rec["sha256"]] = rec["source"]
            if index is not None:
                h = int(rec["phash"], 16)
                hit = index.find(h)
                if hit is not None:
                    drop(part, rec, "near_duplicate", {"duplicate_of": hit[0], "distance": hit[1]})
                    continue
                index.add(h, rec["source"])
    return drops, counts, examples
