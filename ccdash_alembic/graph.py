"""Ordering things that depend on each other: tables by their foreign keys, revisions by their parents.

One helper for every such order in the package, so "parents first, ties by name, a cycle named" means the
same wherever it is asked (the DDL layer uses it too, which is why it lives beside ``errors`` rather than in
the runtime).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import TypeVar

Node = TypeVar("Node", bound=Hashable)


class Cycle(ValueError):
    """Some nodes depend on each other in a cycle (or on a node of one): ``members`` are all that could not
    be placed, sorted by name."""

    def __init__(self, members: list[str]) -> None:
        super().__init__(", ".join(members))
        self.members = members


def ordered(depends_on: Mapping[Node, Iterable[Node]], name: Callable[[Node], str] = str) -> list[Node]:
    """Every node of ``depends_on`` after the nodes it depends on, ties broken by ``name``.

    A dependency on a node that is not a key, or on the node itself, is ignored: a foreign key to a table
    outside the set, or of a table to itself, does not constrain the order. Raises ``Cycle`` naming what
    cannot be placed.
    """
    waiting = {node: {d for d in deps if d in depends_on and d != node} for node, deps in depends_on.items()}
    placed: list[Node] = []
    done: set[Node] = set()
    while waiting:
        ready = sorted((node for node, deps in waiting.items() if deps <= done), key=name)
        if not ready:
            raise Cycle(sorted(map(name, waiting)))
        for node in ready:
            placed.append(node)
            done.add(node)
            del waiting[node]
    return placed
