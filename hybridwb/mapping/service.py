"""`wb.mappings`: discover, suggest, get, save, activate, check — file first, store mirrored."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybridwb.errors import NotFound, ValidationError
from hybridwb.mapping import discovery, drift, suggest
from hybridwb.mapping.model import MappingFile, TableMapping, json_schema, parse
from hybridwb.source import Source

if TYPE_CHECKING:
    from hybridwb.platform.store import Store


class MappingService:
    """The table mappings analysts edit. Loading prefers the file; saving writes both."""

    def __init__(self, source: Source, store: Callable[[], Store], path: Path) -> None:
        self.source = source
        self._store = store
        self.path = path
        self._cache: tuple[float, MappingFile] | None = None

    # -- reading ---------------------------------------------------------------------------
    def load(self) -> MappingFile:
        if self.path.is_file():
            mtime = self.path.stat().st_mtime
            if self._cache and self._cache[0] == mtime:
                return self._cache[1]
            loaded = parse(self.path.read_bytes(), str(self.path))  # bytes: UTF-8 checked there
            self._cache = (mtime, loaded)
            return loaded
        mirrored = self._store().mappings.active()
        return parse(mirrored, "store mirror") if mirrored else MappingFile({})

    def tables(self) -> dict[str, TableMapping]:
        return self.load().tables()

    def get(self, table: str) -> TableMapping:
        tables = self.tables()
        if table in tables:
            return tables[table]
        for name, mapping in tables.items():  # by display name, as analysts say it
            if mapping.displayName == table:
                return tables[name]
        raise NotFound(
            f"No mapping for {table!r}; create one with wb.mappings.suggest({table!r}) and save it.",
            table=table,
        )

    def resolve(self, table: str) -> tuple[str, TableMapping]:
        """(table name, mapping) by table name or display name."""
        mapping = self.get(table)
        name = next(n for n, m in self.tables().items() if m is mapping)
        return name, mapping

    # -- the live schema -------------------------------------------------------------------
    def discover(self) -> list[discovery.TableInfo]:
        return discovery.discover(self.source)

    def describe(self, table: str) -> discovery.TableInfo:
        self._live_table(table)
        return discovery.describe(self.source, table)

    def sample(self, table: str, rows: int = 5) -> Any:
        """A few rows through the guarded source (the identifier comes from the live schema)."""
        name = self._live_table(table)
        return self.source.sql(f"SELECT * FROM `{name}` LIMIT {int(rows)}")

    def _live_table(self, table: str) -> str:
        if table not in self.source.table_names():
            raise NotFound(
                f"The source has no table {table!r}; see wb.mappings.discover().", table=table
            )
        return table

    def suggest(self, table: str) -> TableMapping:
        info = self.describe(table)
        name = self._live_table(table)
        sample = self.source.records(f"SELECT * FROM `{name}` LIMIT 50")
        others = [
            discovery.describe(self.source, t) for t in self.source.table_names() if t != table
        ]
        return suggest.suggest(info, sample, others)

    # -- writing ---------------------------------------------------------------------------
    def save(self, table: str, mapping: TableMapping | dict[str, Any]) -> TableMapping:
        """Validate against the model and the live table, then write the file and the mirror."""
        data = (
            mapping.model_dump(mode="json", exclude_unset=True)
            if isinstance(mapping, TableMapping)
            else mapping
        )
        current = self.load().dump()
        merged = parse({**current, table: data}, str(self.path))
        live = self.describe(table)
        columns = {c.name for c in live.columns}
        for field in merged.tables()[table].fields:
            if field not in columns:
                raise ValidationError(
                    f"{table}.fields.{field}: no such column in the live table; remove it or fix the name. Nothing was saved.",
                    path=f"{table}.fields.{field}",
                )
        self._write(merged)
        self._store().mappings.save(table, merged.dump()[table], merged.tables()[table].isActive)
        return merged.tables()[table]

    def _write(self, mappings: MappingFile) -> None:
        """Atomically: a half-written mapping file is never left behind."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(mappings.dump(), ensure_ascii=False, indent=2) + "\n"
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".table-mappings.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, self.path)
        self._cache = None

    def _set_active(self, table: str, active: bool) -> TableMapping:
        name, _ = self.resolve(table)
        data = self.load().dump()
        data[name]["isActive"] = active
        merged = parse(data, str(self.path))
        self._write(merged)
        store = self._store()
        try:
            store.mappings.set_active(name, active)
        except NotFound:
            store.mappings.save(name, merged.dump()[name], active)
        return merged.tables()[name]

    def activate(self, table: str) -> TableMapping:
        return self._set_active(table, True)

    def deactivate(self, table: str) -> TableMapping:
        return self._set_active(table, False)

    def check(self) -> list[drift.Finding]:
        """Every mapped table against the live schema."""
        live_names = set(self.source.table_names())
        findings: list[drift.Finding] = []
        for name, mapping in self.tables().items():
            live = discovery.describe(self.source, name) if name in live_names else None
            findings.extend(drift.check_table(name, mapping, live))
        return findings

    @staticmethod
    def schema() -> dict[str, Any]:
        return json_schema()
