"""`wb.mappings`: discover, suggest, get, save, delete, activate, check — file first, store mirrored.

Mappings belong to one source. The sample shop's live in the configured file
(`mappings/table-mappings.json`, the original platform's shape, unstamped); any other
source's carry its identity (`"$source": "mysql://host:port/database"`) and live in
`mappings/sources/<identity>.json` next to it — or in the configured file itself when that
file is stamped with this source. So the repository's sample mappings never apply to
another database, and two databases never share (or overwrite) each other's mappings.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cachetools import LRUCache
from pydantic import ValidationError as PydanticError
from sqlalchemy import Select, literal_column, select, table

from hybridwb.errors import ConfigError, NotFound, ValidationError
from hybridwb.mapping import discovery, drift, suggest
from hybridwb.mapping.graph import merge_relations, relations_from_foreign_keys
from hybridwb.mapping.model import (
    CONSENT_PATHS,
    SOURCE_KEY,
    MappingFile,
    Relation,
    TableMapping,
    json_schema,
    parse,
)
from hybridwb.mapping.resolve import DIALECT, Resolver
from hybridwb.source import Source
from hybridwb.validation import checked_calls, first_error, holds_nul, short

if TYPE_CHECKING:
    from hybridwb.platform.store import Store

SAMPLE = "sample"
SAMPLE_ROWS = 50


def source_identity(source: Source) -> str:
    """Who the mappings belong to: `sample`, or `mysql://host:port/database` (no user, no
    password: the same database reached by two accounts shares its mappings)."""
    if source.is_sqlite:
        return SAMPLE
    url = source.url
    return f"mysql://{url.host or 'localhost'}:{url.port or 3306}/{url.database or ''}"


def _regular_file(path: Path) -> os.stat_result | None:
    """The file's stat when `path` is a regular file (following links, as `is_file`)."""
    try:
        found = os.stat(path)
    except (OSError, ValueError):
        return None
    return found if stat.S_ISREG(found.st_mode) else None


def identity_slug(identity: str) -> str:
    """A file name for a source identity: `mysql-127.0.0.1-3306-shop`."""
    return re.sub(r"[^0-9A-Za-z._]+", "-", identity).strip("-.") or "source"


#: (path, mtime_ns, size) -> stamp: every mapping lookup asks, so a file is read once per change
_STAMPS: LRUCache[tuple[str, int, int], str | None] = LRUCache(maxsize=64)


def _stamp_of(path: Path, st: os.stat_result | None = None) -> str | None:
    """The `$source` a mapping file names, None when unstamped (or unreadable: load says why).
    `st`: the file's stat, when the caller has just asked for it (one system call, not two)."""
    if st is None:
        try:
            st = path.stat()
        except OSError:
            return None
    key = (str(path), st.st_mtime_ns, st.st_size)
    try:  # one lookup (`key in` and then `[key]` are two): None, unstamped, is kept too
        return _STAMPS[key]
    except KeyError:
        pass
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    stamp = data.get(SOURCE_KEY) if isinstance(data, dict) else None
    _STAMPS[key] = stamp = stamp if isinstance(stamp, str) else None
    return stamp


def _select_all(name: str, rows: int) -> str:
    """`SELECT * FROM <name> LIMIT n`, the identifier quoted by the dialect. Compiled as
    the resolver compiles (named binds): the default `format` style doubles a `%` in a
    name (`discount 50%`) for a driver that formats the text, which the source does not."""
    query: Select[Any] = select(literal_column("*")).select_from(table(name)).limit(int(rows))
    return str(query.compile(dialect=DIALECT, compile_kwargs={"literal_binds": True}))


@checked_calls("wb.mappings")
class MappingService:
    """The table mappings analysts edit. Loading prefers the file; saving writes both."""

    def __init__(self, source: Source, store: Callable[[], Store], path: Path) -> None:
        self.source = source
        self._store = store
        self.configured = path
        self.identity = source_identity(source)
        self._cache: tuple[Path, int, int, MappingFile] | None = None
        self._resolver: Resolver | None = None

    @property
    def resolver(self) -> Resolver:
        """The one resolver (relation graph, checked identifiers, values) every consumer of
        these mappings shares: search, targets, variables, completeness and rendering."""
        if self._resolver is None:
            self._resolver = Resolver(self)
        return self._resolver

    def __repr__(self) -> str:
        return f"MappingService(source={self.identity!r}, path={str(self.path)!r})"

    @property
    def path(self) -> Path:
        """This source's mapping file (see the module docstring)."""
        stamp = _stamp_of(self.configured) if self.configured.is_file() else None
        if stamp == self.identity or (stamp is None and self.identity == SAMPLE):
            return self.configured
        return self.configured.parent / "sources" / f"{identity_slug(self.identity)}.json"

    # -- reading ---------------------------------------------------------------------------
    def load(self) -> MappingFile:
        """The mapping file, parsed again only when it changed (its modification time or
        size). Every search asks twice, so the file is looked at with one `stat` per ask
        when it is the configured file (as `path` decides, without a second look)."""
        configured = self.configured
        found = _regular_file(configured)
        if found is not None:
            stamp = _stamp_of(configured, found)
            if stamp == self.identity or (stamp is None and self.identity == SAMPLE):
                return self._load_file(configured, found)
        path = self.path
        found = _regular_file(path) if path != configured else None
        if found is not None:
            return self._load_file(path, found)
        mirrored = {
            self._table_of(name): {k: v for k, v in config.items() if k != SOURCE_KEY}
            for name, config in self._store().mappings.active().items()
            if self._mine(name, config)
        }
        return parse(mirrored, "store mirror") if mirrored else MappingFile({})

    def _load_file(self, path: Path, st: os.stat_result) -> MappingFile:
        changed = (path, st.st_mtime_ns, st.st_size)
        if self._cache and self._cache[:3] == changed:
            return self._cache[3]
        raw = path.read_bytes()  # bytes: UTF-8 is checked by parse
        stamp = _stamp_of(path, st)
        if stamp is not None and stamp != self.identity:
            return MappingFile({})  # another source's file copied here by hand
        loaded = parse(raw, str(path))
        self._cache = (*changed, loaded)
        return loaded

    # The store mirror keys rows by name only: the sample's under the table name (as the
    # original platform did), any other source's under `<identity>/<table>` and stamped, so
    # two sources with a `customers` table never version or (de)activate each other's.
    def _mirror_name(self, table: str) -> str:
        return table if self.identity == SAMPLE else f"{self.identity}/{table}"

    def _table_of(self, name: str) -> str:
        return name if self.identity == SAMPLE else name[len(self.identity) + 1 :]

    def _mine(self, name: str, config: dict[str, Any]) -> bool:
        """Whether a mirrored mapping belongs to this source (unstamped ones are the sample's)."""
        if self.identity != SAMPLE and not name.startswith(f"{self.identity}/"):
            return False
        return config.get(SOURCE_KEY, SAMPLE) == self.identity

    def tables(self) -> dict[str, TableMapping]:
        return self.load().tables()

    def get(self, table: str) -> TableMapping:
        if not isinstance(table, str) or not table.strip():
            raise ValidationError("Name the table as text, e.g. wb.mappings.get('customer').")
        tables = self.tables()
        if table in tables:
            return tables[table]
        name = _by_display_name(table, tables)  # as analysts say it
        if name is not None:
            return tables[name]
        raise NotFound(
            f"No mapping for {short(table)}; create one with wb.mappings.suggest(TABLE) and save it.",
            table=table,
        )

    def resolve(self, table: str) -> tuple[str, TableMapping]:
        """(table name, mapping) by table name or display name."""
        if not isinstance(table, str) or not table.strip():
            raise ValidationError("Name the table as text, e.g. wb.mappings.get('customer').")
        # one load: a store-mirror load builds new objects each time
        return self._resolve_in(table, self.tables())

    def _resolve_in(self, table: str, tables: dict[str, TableMapping]) -> tuple[str, TableMapping]:
        """`resolve` among `tables`, one read of the mapping (a search's: `one_graph`)."""
        if not isinstance(table, str) or not table.strip():
            raise ValidationError("Name the table as text, e.g. wb.mappings.get('customer').")
        if table not in tables:
            table = _by_display_name(table, tables) or table
        return table, tables.get(table) or self.get(table)

    def audience(self, table: str | None = None) -> tuple[str, TableMapping]:
        """The audience table: `table` when given, else the first active mapping marked
        `audience` (nothing in hybridwb assumes a table name)."""
        if table is not None:
            return self.resolve(table)
        for name, mapping in self.tables().items():
            if mapping.audience and mapping.isActive:
                return name, mapping
        raise NotFound(
            "No mapped table is marked as the audience; save a people table's mapping with "
            '"audience": true (wb.mappings.suggest(TABLE) proposes it).'
        )

    # -- the live schema -------------------------------------------------------------------
    def discover(self) -> list[discovery.TableInfo]:
        return discovery.discover(self.source)

    def describe(self, table: str) -> discovery.TableInfo:
        self._live_table(table)
        return discovery.describe(self.source, table)

    def sample(self, table: str, rows: int = 5) -> Any:
        """A few rows through the guarded source (the identifier comes from the live schema)."""
        if not isinstance(rows, int) or not 1 <= rows <= 1000:
            raise ValidationError(f"rows must be a number from 1 to 1000, not {short(rows)}.")
        name = self._live_table(table)
        return self.source.sql(_select_all(name, rows))

    def _live_table(self, table: str) -> str:
        if not isinstance(table, str) or table not in self.source.table_names():
            raise NotFound(
                f"The source has no table {short(table)}; see wb.mappings.discover().", table=table
            )
        return table

    def suggest(self, table: str) -> TableMapping:
        """A mapping proposed from the live schema and 50 sample rows (not saved)."""
        name = self._live_table(table)
        schema = {info.name: info for info in self.discover()}
        if name not in schema:  # pragma: no cover - listed a moment ago
            raise NotFound(f"The source has no table {table!r}.", table=table)
        info = schema[name]
        sample = self.source.records(_select_all(name, SAMPLE_ROWS))
        related = {fk["referred_table"] for fk in info.foreign_keys} - {name}
        samples = {
            other: self.source.records(_select_all(other, SAMPLE_ROWS))
            for other in sorted(related)
            if other in schema
        }
        others = [i for n, i in schema.items() if n != name]
        try:
            return suggest.suggest(info, sample, others, samples)
        except PydanticError as exc:  # a schema suggest names in a way the model refuses
            path, msg = first_error(exc)
            raise ValidationError(
                f"No mapping could be suggested for {short(name)} ({path or 'table'}: {msg}); "
                "write its mapping by hand and save it with wb.mappings.save."
            ) from None

    # -- writing ---------------------------------------------------------------------------
    def save(self, table: str, mapping: TableMapping | dict[str, Any]) -> TableMapping:
        """Validate against the model and the live schema, then write the file and the mirror.

        An audience table's key must be a primary key or unique index of the live table, and
        its recipient and consent paths must lead to live columns; nothing is saved otherwise."""
        if not isinstance(table, str) or not table.strip() or len(table) > 200:
            raise ValidationError(
                f"Name the table as text, e.g. wb.mappings.save('members', ...), not "
                f"{short(table)}. Nothing was saved."
            )
        if not isinstance(mapping, (TableMapping, dict)):
            raise ValidationError(
                f"Give the mapping as a dict or a TableMapping, not {type(mapping).__name__}."
            )
        data = (
            mapping.model_dump(mode="json", exclude_unset=True)
            if isinstance(mapping, TableMapping)
            else mapping
        )
        current = self.load().dump()
        merged = parse({**current, table: data}, str(self.path))
        if holds_nul(merged.dump()[table]):  # a Postgres store refused it after the file
            raise ValidationError(
                f"{table}: a name or text of the mapping holds a NUL character, which the "
                "platform store cannot keep; remove it. Nothing was saved.",
                path=table,
            )
        live = self.describe(table)
        columns = {c.name for c in live.columns}
        saved = merged.tables()[table]
        for field in saved.fields:
            if field not in columns:
                raise ValidationError(
                    f"{table}.fields.{field}: no such column in the live table; remove it or fix the name. Nothing was saved.",
                    path=f"{table}.fields.{field}",
                )
        self._check_relations(table, saved, merged, columns)
        problem = drift.key_problem(table, saved, live)
        if problem:
            raise ValidationError(f"{problem} Nothing was saved.", path=f"{table}.key")
        self._check_paths(table, saved, merged)
        _refuse_opt_out_consent(table, saved, {c.name: c.comment for c in live.columns})
        _refuse_ambiguous_consent(table, saved)
        self._write(merged)
        self._mirror(table, merged.dump()[table], saved.isActive)
        return merged.tables()[table]

    def _check_relations(
        self, table: str, mapping: TableMapping, merged: MappingFile, columns: set[str]
    ) -> None:
        """Each relation's columns are live columns spelt as the schema spells them: MariaDB
        reads `ADDR` as `addr`, but every use of the relation looked `ADDR` up as it is
        written and failed there (the mapping had saved)."""
        for i, rel in enumerate(mapping.relations):
            where = f"{table}.relations[{i}]"
            ends = [("localField", rel.localField, table, columns)]
            if rel.table in merged.tables():
                theirs = {c.name for c in self.describe(rel.table).columns}
                ends += [("foreignField", rel.foreignField, rel.table, theirs)]
                if rel.orderBy is not None:
                    ends += [("orderBy", rel.orderBy, rel.table, theirs)]
            for attr, name, owner, live in ends:
                if name in live:
                    continue
                same = next((c for c in sorted(live) if c.casefold() == name.casefold()), None)
                hint = f"write it {same!r}" if same else "fix the name"
                raise ValidationError(
                    f"{where}.{attr}: {owner} has no column {short(name)}; {hint}. "
                    "Nothing was saved.",
                    path=f"{where}.{attr}",
                )

    def _check_paths(self, table: str, mapping: TableMapping, merged: MappingFile) -> None:
        """recipient / consent / nightConsent: a field, or to-one relations then a live column."""
        if mapping.audience and not mapping.recipient:
            raise ValidationError(
                f"{table}.recipient: an audience table needs the field messages go to "
                "(a phone or email field, or a path such as address.phone). Nothing was saved.",
                path=f"{table}.recipient",
            )
        for attr in ("recipient", "consent", "nightConsent"):
            path = getattr(mapping, attr)
            if path is None:
                continue
            current, here = mapping, table
            *hops, leaf = path.split(".")
            for i, hop in enumerate(hops):
                known = merge_relations(current.relations, self._foreign_relations(here))
                named = next((r for r in known if r.path_name == hop), None)
                # a recipient's last relation may be one-to-many: its latest row by orderBy
                latest = attr == "recipient" and i == len(hops) - 1
                to_many = named is not None and named.kind == "one-to-many"
                if to_many and latest and named is not None and not named.orderBy:
                    raise ValidationError(
                        f"{table}.{attr} {path!r}: {hop!r} is one-to-many and has no orderBy; "
                        "set the relation's orderBy (e.g. an updated_at column) so the latest "
                        f"{named.table} row gives the one recipient. Nothing was saved.",
                        path=f"{table}.{attr}",
                    )
                rel = named if named is not None and (not to_many or latest) else None
                if rel is None:
                    also = " (a recipient's last one may be one-to-many with an orderBy)"
                    raise ValidationError(
                        f"{table}.{attr} {path!r}: {hop!r} is not a to-one relation of {here}; "
                        "use a field or a path through many-to-one relations"
                        f"{also if attr == 'recipient' else ''}. Nothing was saved.",
                        path=f"{table}.{attr}",
                    )
                here = rel.table
                nxt = merged.tables().get(here)
                if to_many and (nxt is None or not nxt.key):
                    # the latest row is picked by orderBy and then that table's key: unmapped,
                    # its orderBy went unchecked and every preview and run was refused
                    if nxt is None:
                        self.describe(here)  # a table the source does not have: NotFound
                    raise ValidationError(
                        f"{table}.{attr} {path!r}: map {here} first, with its key (its latest "
                        f"row by {rel.orderBy}, ties broken by that key, gives the recipient). "
                        "Nothing was saved.",
                        path=f"{table}.{attr}",
                    )
                if nxt is None and hop != hops[-1]:
                    raise ValidationError(
                        f"{table}.{attr} {path!r}: map {here} first (the path goes through it). "
                        "Nothing was saved.",
                        path=f"{table}.{attr}",
                    )
                current = nxt or current
            if not hops and leaf not in mapping.fields:
                raise ValidationError(
                    f"{table}.{attr}: {leaf!r} is not a mapped field of {table}. Nothing was saved.",
                    path=f"{table}.{attr}",
                )
            last = merged.tables().get(here)
            if hops and last is not None and leaf not in last.fields:
                # the run reads the path through the graph, by the mapped field's name: a
                # live column the mapping leaves out is no field (a display name `tel` of the
                # field `tel2` would have been read instead)
                raise ValidationError(
                    f"{table}.{attr} {path!r}: {leaf!r} is not a mapped field of {here}; map "
                    "that column in its mapping first. Nothing was saved.",
                    path=f"{table}.{attr}",
                )
            if hops and self.describe(here).column(leaf) is None:
                raise ValidationError(
                    f"{table}.{attr} {path!r}: {here} has no column {leaf!r}. Nothing was saved.",
                    path=f"{table}.{attr}",
                )

    def _foreign_relations(self, table: str) -> list[Relation]:
        """The to-one relations the live schema's foreign keys give `table` (the graph adds
        them to the mapping's, so a path may go through them)."""
        found = discovery.foreign_keys(self.source, [table])
        return relations_from_foreign_keys(found).get(table, [])

    def _mirror(self, table: str, config: dict[str, Any], active: bool) -> None:
        stamped = config if self.identity == SAMPLE else {SOURCE_KEY: self.identity, **config}
        self._store().mappings.save(self._mirror_name(table), stamped, active)

    def delete(self, table: str) -> None:
        """Remove a table's mapping from the file; the store mirror keeps its history but
        marks it inactive, so it never comes back as this source's mapping."""
        name, _ = self.resolve(table)
        data = self.load().dump()
        del data[name]
        self._write(parse(data, str(self.path)))
        store = self._store()
        mirrored = self._mirror_name(name)
        try:
            latest = store.mappings.get(mirrored)
        except NotFound:
            return
        if latest.get("is_active") and self._mine(mirrored, latest.get("config") or {}):
            store.mappings.set_active(mirrored, False)

    def _write(self, mappings: MappingFile) -> None:
        """Atomically: a half-written mapping file is never left behind."""
        path = self.path
        stamp = _stamp_of(path) if path.is_file() else None
        if stamp is not None and stamp != self.identity:
            raise ValidationError(
                f"{path} holds the mappings of {stamp}, not of {self.identity}; move it away "
                "(or set HYBRIDWB_MAPPINGS to another file). Nothing was saved."
            )
        data = mappings.dump()
        if self.identity != SAMPLE:
            data = {SOURCE_KEY: self.identity, **data}
        text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".table-mappings.", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, path)
        except OSError as exc:
            # round 51: a folder at the path left the temporary file beside it and raised
            # the raw IsADirectoryError
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            raise ConfigError(
                f"Cannot write the mapping file {short(str(path), 120)} "
                f"({exc.strerror or type(exc).__name__}); set mappings_path (HYBRIDWB_MAPPINGS) "
                "to a file you can write. Nothing was saved."
            ) from None
        self._cache = None

    def _set_active(self, table: str, active: bool) -> TableMapping:
        name, _ = self.resolve(table)
        data = self.load().dump()
        data[name]["isActive"] = active
        merged = parse(data, str(self.path))
        self._write(merged)
        store = self._store()
        try:
            store.mappings.set_active(self._mirror_name(name), active)
        except NotFound:
            self._mirror(name, merged.dump()[name], active)
        return merged.tables()[name]

    def activate(self, table: str) -> TableMapping:
        return self._set_active(table, True)

    def deactivate(self, table: str) -> TableMapping:
        return self._set_active(table, False)

    def check(self) -> list[drift.Finding]:
        """Every mapped table of this source against the live schema."""
        schema = {info.name: info for info in self.discover()}
        findings: list[drift.Finding] = []
        for name, mapping in self.tables().items():
            findings.extend(drift.check_table(name, mapping, schema.get(name)))
        return findings

    @staticmethod
    def schema() -> dict[str, Any]:
        return json_schema()


def _by_display_name(label: str, tables: dict[str, TableMapping]) -> str | None:
    """The one mapped table displayed as `label`, or None. Several are refused: two tables
    with one comment (`members` and its archive `members_old`, both '회원', as `suggest`
    names them) made a target `회원` the first in the file, the archive's 8 people."""
    named = [name for name, mapping in tables.items() if mapping.displayName == label]
    if len(named) > 1:
        raise ValidationError(
            f"{short(label)} is the display name of several mapped tables "
            f"({', '.join(map(short, named))}); name the table, or give each mapping its own "
            "displayName.",
            table=label,
        )
    return named[0] if named else None


def _refuse_ambiguous_consent(table: str, mapping: TableMapping) -> None:
    """An audience table whose consent (or night consent) is given by the role of several
    fields and no path: the run could not tell which to read (`TableMapping.consent_path`).
    Refused here for the audience only: another table may hold several consent flags a
    path reaches (`agree.sms_ok`); the target plan refuses any table it would read so."""
    if not mapping.audience:
        return
    for role in CONSENT_PATHS:
        try:
            mapping.consent_path(table, role)
        except ValidationError as exc:
            raise ValidationError(f"{exc.message} Nothing was saved.", **exc.fields) from None


def _refuse_opt_out_consent(
    table: str, mapping: TableMapping, comments: dict[str, str | None]
) -> None:
    """A consent flag that records a refusal (`sms_opt_out`, `수신거부`: 1 = refused) would
    message exactly the people who said no; the mapping has no inversion, so it is refused."""
    named = [(attr, getattr(mapping, attr)) for attr in ("consent", "nightConsent")]
    named += [
        (f"fields.{n}.role", n)
        for n, f in mapping.fields.items()
        if f.role in ("consent", "night_consent")
    ]
    for attr, path in named:
        if not path:
            continue
        leaf = path.rpartition(".")[2]
        if suggest.is_opt_out(leaf, comments.get(leaf) if "." not in path else None):
            raise ValidationError(
                f"{table}.{attr}: {leaf!r} looks like an opt-out flag (set = refused), not "
                "marketing consent (set = agreed); map a consent column instead. "
                "Nothing was saved.",
                path=f"{table}.{attr}",
            )
