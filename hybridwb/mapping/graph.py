"""The relation graph of the mapped tables (pure): who is related to whom, and how.

Edges come from each mapping's `relations` and from the live schema's foreign keys
(`relations_from_foreign_keys`); the mapping wins where both name an edge. An edge is *to-one* (`many-to-one`: customer -> address) or *to-many*
(`one-to-many`: customer -> payment, where one row is chosen "latest by" the relation's
`orderBy`). A *path* is a dotted name from a root table through edges to a field:
`address.city.city` is customer -> address -> city, field `city`.

Search, targets, template variables, completeness and rendering all resolve names through
`Graph.path` / `Graph.find`, so what one of them accepts the others can fetch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hybridwb.errors import ValidationError
from hybridwb.mapping.model import Relation, TableMapping, labelled, mappable
from hybridwb.validation import short

MAX_DEPTH = 4  # relation hops a variable name may be found through


@dataclass(frozen=True)
class Hop:
    """One edge: from `source` (column `local`) to `target` (column `foreign`)."""

    source: str
    target: str
    local: str
    foreign: str
    to_one: bool
    name: str  # the path segment (`address` in `address.phone`)
    order_by: str | None = None

    @classmethod
    def of(cls, source: str, rel: Relation) -> Hop:
        return cls(
            source,
            rel.table,
            rel.localField,
            rel.foreignField,
            rel.kind == "many-to-one",
            rel.path_name,
            rel.orderBy,
        )


@dataclass(frozen=True)
class Path:
    """A field reached from `root` through `hops` (no hops: a field of the root itself)."""

    root: str
    hops: tuple[Hop, ...]
    field: str
    field_type: str = "string"

    @property
    def table(self) -> str:
        return self.hops[-1].target if self.hops else self.root

    @property
    def name(self) -> str:
        """The canonical dotted name, e.g. `address.city.city`."""
        return ".".join([*(h.name for h in self.hops), self.field])

    @property
    def to_one(self) -> bool:
        """True when the path yields at most one value per root row without a choice."""
        return all(h.to_one for h in self.hops)

    @property
    def many_at(self) -> int | None:
        """The index of the path's first one-to-many hop (None: every hop is to-one)."""
        return next((i for i, h in enumerate(self.hops) if not h.to_one), None)

    @property
    def problem(self) -> str | None:
        """Why this path cannot be fetched unambiguously (a to-many hop with no order)."""
        for hop in self.hops:
            if not hop.to_one and not hop.order_by:
                return (
                    f"{hop.source} -> {hop.target} is one-to-many and its relation has no "
                    f"orderBy; set orderBy so the latest {hop.target} row is used"
                )
        return None

    def describe(self) -> str:
        return f"{self.root}.{self.name}" if self.hops else f"{self.root}.{self.field}"


def relation_name(column: str, referred_table: str) -> str:
    """The path segment of a to-one relation: `address_id` -> `address`."""
    low = column.lower()
    for suffix in ("_id", "_no", "_key", "id"):
        if low.endswith(suffix) and len(low) > len(suffix):
            return column[: -len(suffix)].rstrip("_") or referred_table
    return referred_table


def relations_from_foreign_keys(
    foreign_keys: Mapping[str, Iterable[dict[str, Any]]],
) -> dict[str, list[Relation]]:
    """Relations implied by the live schema's one-column foreign keys (`{table: [fk, ...]}`
    as discovery reports them), both ways: the referencing table gets a many-to-one edge
    named like suggestions name it (`address_id` -> `address`), the referenced table a
    one-to-many edge named after the referencing table (a second one from the same table is
    `<table>_by_<column>`). A to-many edge has no `orderBy`: which row is "latest" is the
    mapping's decision, so a value through it stays missing until the mapping says."""
    out: dict[str, list[Relation]] = {}
    taken: dict[str, set[str]] = {}

    def add(table: str, rel: Relation, fallback: str) -> None:
        names = taken.setdefault(table, set())
        if rel.path_name in names:
            rel = rel.model_copy(update={"name": fallback})
        # a name with a dot (after a table `sales.customers`) would read as two hops
        if rel.path_name not in names and mappable(rel.path_name):
            names.add(rel.path_name)
            out.setdefault(table, []).append(rel)

    for table in sorted(foreign_keys):
        fks = sorted(foreign_keys[table] or [], key=lambda fk: str(fk.get("name") or ""))
        for fk in fks:
            local, remote = fk.get("constrained_columns") or [], fk.get("referred_columns") or []
            target = fk.get("referred_table")
            if len(local) != 1 or len(remote) != 1 or not target:
                continue
            to_one = Relation(
                table=target,
                localField=local[0],
                foreignField=remote[0],
                kind="many-to-one",
                name=relation_name(local[0], target),
            )
            add(table, to_one, f"{target}_by_{local[0]}")
            to_many = Relation(table=table, localField=remote[0], foreignField=local[0], name=table)
            add(target, to_many, f"{table}_by_{local[0]}")
    return out


def merge_relations(mapped: Iterable[Relation], found: Iterable[Relation]) -> list[Relation]:
    """A table's relations: the mapping's, then discovered ones the mapping does not
    override. The mapping wins: a discovered relation is dropped when its name is taken or
    when the mapping already joins the same columns (under its own name and settings)."""
    out = list(mapped)
    named = {r.path_name for r in out}
    joined = {(r.table, r.localField, r.foreignField) for r in out}
    for rel in found:
        if (
            rel.path_name not in named
            and (rel.table, rel.localField, rel.foreignField) not in joined
        ):
            out.append(rel)
            named.add(rel.path_name)
            joined.add((rel.table, rel.localField, rel.foreignField))
    return out


class Graph:
    """The mapped tables and the edges between them; only active, mapped tables are nodes."""

    def __init__(
        self,
        mappings: dict[str, TableMapping],
        extra: dict[str, list[Relation]] | None = None,
    ) -> None:
        self.mappings = {n: m for n, m in mappings.items() if m.isActive}
        self._edges: dict[str, list[Hop]] = {}
        for name, mapping in self.mappings.items():
            # a foreign key's relation named like a field (`address_id` -> `address` beside
            # a text column `address`) is left out, as the model refuses a mapped one
            found = [
                r
                for r in (extra or {}).get(name, [])
                if labelled(mapping.fields, r.path_name) is None
            ]
            self._edges[name] = [
                Hop.of(name, r)
                for r in merge_relations(mapping.relations, found)
                if r.table in self.mappings
            ]

    def edges(self, table: str) -> list[Hop]:
        return list(self._edges.get(table, []))

    def mapping(self, table: str) -> TableMapping:
        try:
            return self.mappings[table]
        except KeyError:
            raise ValidationError(
                f"{table!r} has no active mapping; map it with wb.mappings.suggest({table!r})."
            ) from None

    def field(self, table: str, label: str) -> str | None:
        """The mapped field of `table` named `label` (name, display name or alias)."""
        mapping = self.mappings.get(table)
        return mapping.field_by_label(label) if mapping is not None else None

    def path(
        self,
        root: str,
        dotted: str,
        *,
        to_one: bool = False,
        exact: bool = False,
        latest: bool = False,
    ) -> Path:
        """Follow `dotted` from `root` edge by edge; the last segment is a field.

        Raises one clear error naming the segment that does not exist. With `to_one`,
        a path through a one-to-many relation is refused (recipients, consent, joins). With
        `latest` (a recipient), the last relation may be one-to-many with an `orderBy`: the
        field of the latest related row (`addresses.phone`, one value per root row). With
        `exact` (the mapping's recipient and consent paths, checked at save against the live
        column of that name) the last segment is a field's name, never its display name or
        alias: `tel` displayed by the field `tel2` is not the column `tel`."""
        if not isinstance(dotted, str) or not dotted.strip():
            raise ValidationError(f"A field path on {root} must be a non-empty text.")
        self.mapping(root)
        *segments, last = dotted.strip().split(".")
        table, hops = root, []
        for i, segment in enumerate(segments):
            hop = next((h for h in self._edges.get(table, []) if h.name == segment), None)
            if hop is None:
                names = ", ".join(h.name for h in self._edges.get(table, [])) or "none"
                raise ValidationError(
                    f"{short(dotted)}: {table} has no relation {short(segment)} (relations: {names}).",
                    path=dotted,
                )
            if latest and not hop.to_one and i == len(segments) - 1 and not hop.order_by:
                raise ValidationError(
                    f"{short(dotted)}: {hop.source} -> {hop.target} is one-to-many and has no "
                    f"orderBy; set the relation's orderBy (e.g. an updated_at column) so the "
                    f"latest {hop.target} row gives the one value.",
                    path=dotted,
                )
            if latest and not hop.to_one and i < len(segments) - 1:
                raise ValidationError(
                    f"{short(dotted)}: {hop.source} -> {hop.target} is one-to-many; only the "
                    "last relation of a recipient path may be (its latest row is used).",
                    path=dotted,
                )
            if to_one and not hop.to_one and not latest:
                raise ValidationError(
                    f"{short(dotted)}: {hop.source} -> {hop.target} is one-to-many; use an exists or "
                    "aggregate condition for to-many relations.",
                    path=dotted,
                )
            hops.append(hop)
            table = hop.target
        field = self.field(table, last)
        if exact and field != last:
            field = None
        if field is None:
            raise ValidationError(
                f"{short(dotted)}: {table} has no mapped field {short(last)}.",
                path=dotted,
                field=last,
            )
        return Path(root, tuple(hops), field, self.mappings[table].fields[field].type)

    def reachable(self, root: str, max_depth: int = MAX_DEPTH) -> list[tuple[Hop, ...]]:
        """Every hop sequence from `root` (breadth first, no table visited twice on a path)."""
        out: list[tuple[Hop, ...]] = []
        frontier: list[tuple[Hop, ...]] = [()]
        for _ in range(max_depth):
            nxt: list[tuple[Hop, ...]] = []
            for hops in frontier:
                seen = {root, *(h.target for h in hops)}
                here = hops[-1].target if hops else root
                for hop in self._edges.get(here, []):
                    if hop.target not in seen:
                        nxt.append((*hops, hop))
            out += nxt
            frontier = nxt
        return out

    def find(self, root: str, name: str) -> list[Path]:
        """Candidates for a variable name, nearest first; several at one depth = ambiguous.

        `field` (root or related field), `rel.field` / `a.b.field` (an exact path), and
        `table.field` where `table` is a related table's name or display name anywhere in
        the graph (`city.city` from customer -> address -> city)."""
        if root not in self.mappings:
            return []
        try:
            return [self.path(root, name)]
        except ValidationError:
            pass
        prefix, _, rest = name.rpartition(".")
        if prefix:  # `customer.name` on the root itself comes first
            mapping = self.mappings[root]
            singular = root[:-1] if root.endswith("s") else root
            field = mapping.field_by_label(rest)
            if prefix in (root, singular, mapping.displayName) and field is not None:
                return [Path(root, (), field, mapping.fields[field].type)]
        best: list[Path] = []
        depth = None
        for hops in self.reachable(root):
            if depth is not None and len(hops) > depth:
                break
            target = hops[-1].target
            mapping = self.mappings[target]
            if prefix:
                singular = target[:-1] if target.endswith("s") else target
                if prefix not in (target, singular, mapping.displayName, hops[-1].name):
                    continue
            field = mapping.field_by_label(rest)
            if field is not None:
                best.append(Path(root, hops, field, mapping.fields[field].type))
                depth = len(hops)
        return best
