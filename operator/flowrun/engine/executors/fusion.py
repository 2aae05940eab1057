"""Linear-chain fusion: which submissions of one batch can run as one Dask task.

A chain of tasks where each has the previous one as its only dependency, and is that
task's only dependent in the batch, has no parallelism: running it as one Dask task on
one worker saves a scheduler round trip per task (Dask's own optimizer fuses such
chains too). This module only computes the segments; the Dask session builds them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Set


def linear_segments(
    deps: Mapping[str, Set[str]], fusable: Set[str] = frozenset()
) -> list[list[str]]:
    """Split the keys of `deps` (in its order) into segments, chains of fusable keys.

    `deps[k]` is every dependency of `k`; those that are keys of `deps` are in the batch.
    A key may follow the previous one in a segment only when both are in `fusable`, its
    one dependency is the previous key, and it is that key's only dependent in the batch.
    Every key is in exactly one segment; segments are in dependency order.
    """
    dependents: dict[str, list[str]] = {k: [] for k in deps}
    for key, needs in deps.items():
        for need in needs:
            if need in dependents:
                dependents[need].append(key)
    follows: dict[str, str] = {}
    for key, needs in deps.items():
        if key not in fusable or len(needs) != 1:
            continue
        [prev] = needs
        if prev in fusable and dependents.get(prev) == [key]:
            follows[key] = prev
    led = {prev: key for key, prev in follows.items()}
    segments: list[list[str]] = []
    for key in deps:
        if key in follows:
            continue
        segment = [key]
        while segment[-1] in led:
            segment.append(led[segment[-1]])
        segments.append(segment)
    return segments


def sibling_groups(
    deps: Mapping[str, Set[str]], candidates: Iterable[str], size_of: Callable[[int], int]
) -> list[list[str]]:
    """Groups of `candidates` that wait for exactly the same keys (the branches of a
    fan-out), cut into batches of `size_of(len(group))`; groups of one are left out.

    Such tasks are independent of each other and ready at the same moment: running a
    batch of them as one Dask task costs the scheduler one task instead of one each, the
    same trade as a mapped task's children (see `dask_batches`).
    """
    by_deps: dict[frozenset[str], list[str]] = {}
    for key in candidates:
        by_deps.setdefault(frozenset(deps[key]), []).append(key)
    groups: list[list[str]] = []
    for keys in by_deps.values():
        size = size_of(len(keys))
        if size > 1:
            groups.extend(g for g in (keys[i : i + size] for i in range(0, len(keys), size)))
    return [g for g in groups if len(g) > 1]
