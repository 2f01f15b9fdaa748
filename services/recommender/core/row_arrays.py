"""Neighbour rows as numpy arrays, so that votes summed over many rows cost a few array passes.

A learning step and a feed sum the co-visit rows of a user's last twenty positives (up to 200 pairs each): four
thousand dictionary updates in Python, the largest part of a matured learning step. Here each row is read once into
(codes, weights) arrays, the codes from one process-wide table of video ids (``CODES``: never stored, never
compared across processes, so the order codes are handed out in changes nothing), and kept until the row
changes (the table that owns the row calls :meth:`RowArrays.forget`). :func:`summed` then adds the rows up
with ``np.bincount``, which adds each code's weights in the order given, one after another from 0, as the
dictionary loop did: the same sums, to the bit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np


class Codes:
    """Video id <-> a small integer, handed out as ids are first met."""

    def __init__(self) -> None:
        self.of: dict[str, int] = {}
        self._names = np.empty(1024, dtype=object)

    def encode(self, names: Iterable[str]) -> np.ndarray:
        names = list(names)
        codes = list(map(self.of.get, names))
        if None in codes:
            codes = [self._add(name) if code is None else code for name, code in zip(names, codes)]
        return np.array(codes, dtype=np.int64)

    def _add(self, name: str) -> int:
        code = self.of.get(name)  # a name twice in one call: the first one added it
        if code is None:
            code = self.of[name] = len(self.of)
            if code >= len(self._names):
                grown = np.empty(2 * len(self._names), dtype=object)
                grown[:code] = self._names[:code]
                self._names = grown
            self._names[code] = name
        return code

    def names(self, codes: np.ndarray) -> list[str]:
        return self._names[codes].tolist()


CODES = Codes()


class RowArrays:
    """(codes, weights) of the rows of one neighbour table, read lazily and kept until the row changes: the
    table forgets (:meth:`forget`) a row it adds to, replaces or trims. At most ``limit`` rows are kept (past that all
    are dropped: a catalogue of 100k videos does not hold every row twice). A kept entry is also checked
    against the row it was read from (the same dict, of the same size), so a row replaced or grown elsewhere
    is read again.

    Forgetting beats keeping the arrays in step with the row: a matured state changes about twenty rows an
    event and reads twenty a learning step, one event in ten; keeping them in step cost each event more than
    reading the rows again saved (the matured pass of ``benchmarks.recommender --apply-only``, profiled)."""

    def __init__(self, limit: int = 2048) -> None:
        self.limit = limit
        self.kept: dict[str, tuple[Mapping[str, float], int, np.ndarray, np.ndarray]] = {}

    def get(self, item: str, row: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
        entry = self.kept.get(item)
        if entry is None or entry[0] is not row or entry[1] != len(row):
            if len(self.kept) >= self.limit:
                self.kept.clear()
            entry = self.kept[item] = (row, len(row), CODES.encode(row), np.array(list(row.values()), float))
        return entry[2], entry[3]

    def forget(self, item: str) -> None:
        self.kept.pop(item, None)


def summed(parts: list[tuple[np.ndarray, np.ndarray]], cut: int | None = None
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The weights of ``parts`` ((codes, weights) each) summed by code, as a loop adding them one after another
    into a dictionary would: (the codes in the order they first appear, their sums, the sums of only the
    first ``cut`` weights of the parts laid end to end, how many codes appear in those). ``cut`` None: all.

    ``np.bincount`` adds each code's weights in the order given, starting from 0, so the sums are the loop's
    to the bit. Over the whole code space when it is small next to the parts (:func:`by_space`, no sort), else
    over the codes that appear (:func:`by_unique`); the two give the same arrays."""
    if not parts:
        empty = np.zeros(0)
        return np.zeros(0, np.int64), empty, empty, 0
    codes = np.concatenate([c for c, _ in parts])
    weights = np.concatenate([w for _, w in parts])
    cut = len(codes) if cut is None else cut
    way = by_space if len(CODES.of) <= 4 * len(codes) else by_unique
    order, first, inverse, size = way(codes)
    sums = np.bincount(inverse, weights, size)[order]
    early = np.bincount(inverse[:cut], weights[:cut], size)[order] if cut < len(codes) else sums
    at = first[order]  # where each first appears, in that order
    return codes[at], sums, early, int(np.searchsorted(at, cut))


def by_space(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """How :func:`summed` bins ``codes``: (the bins in the order their codes first appear, where each bin's code
    first appears, each code's bin, the number of bins); here a bin per code of the whole code space."""
    m = len(codes)
    first = np.full(len(CODES.of), m)
    np.minimum.at(first, codes, np.arange(m))
    present = np.flatnonzero(first < m)
    return present[np.argsort(first[present])], first, codes, len(first)


def by_unique(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """:func:`by_space`'s answer over the distinct codes only: bins are their places among them, sorted."""
    unique, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
    return np.argsort(first), first, inverse, len(unique)
