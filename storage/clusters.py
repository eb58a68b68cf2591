"""Grouping unknown faces: single-linkage clustering of unit embeddings at a cosine threshold.

Pure numpy over at most a few thousand faces (the newest unknowns), in row blocks so memory stays bounded.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

_BLOCK = 1024


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def cluster_rows(unit: npt.NDArray[np.float32], threshold: float, min_size: int = 2) -> list[list[int]]:
    """Row indices grouped so that rows with cosine >= ``threshold`` share a group; groups of at least
    ``min_size``, largest first."""
    n = unit.shape[0]
    parent = list(range(n))
    for start in range(0, n, _BLOCK):
        block = unit[start : start + _BLOCK] @ unit.T
        rows, cols = np.nonzero(block >= threshold)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            i = start + r
            if c <= i:
                continue
            a, b = _find(parent, i), _find(parent, c)
            if a != b:
                parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(_find(parent, i), []).append(i)
    out = [g for g in groups.values() if len(g) >= min_size]
    out.sort(key=lambda g: (-len(g), g[0]))
    return out


def representative(unit: npt.NDArray[np.float32], members: list[int]) -> tuple[int, float]:
    """The member nearest the group's mean direction, and the mean cosine of members to that direction."""
    sub = unit[members]
    centre = sub.mean(axis=0)
    norm = float(np.linalg.norm(centre))
    if norm == 0.0:
        return members[0], 0.0
    sims = sub @ (centre / norm)
    return members[int(np.argmax(sims))], float(sims.mean())
