"""The mapping model: `mappings/table-mappings.json`, validated with pydantic.

The original platform's shape loads unchanged (`displayName`, `description`, `fields` with
`displayName`, `type`, `filterable`); hybridwb adds optional keys per field (`role`,
`searchable`, `pii`, `aliases`) and per table (`key`, `isActive`, `relations`, and the
audience roles `audience`, `recipient`, `channel`, `consent`, `nightConsent`). A file of
another source than the sample shop names it in a top-level `"$source"` (see
`service.py`); `parse` ignores that key. A dump writes back only what was set, so an
original file round-trips byte for byte in content.
"""

from __future__ import annotations

import re
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, RootModel, model_validator
from pydantic import ValidationError as PydanticError

from hybridwb.errors import ValidationError
from hybridwb.validation import first_error, load_json, short

FieldType = Literal["string", "number", "date", "datetime", "boolean"]
Role = Literal[
    "id",  # the table's own key
    "reference",  # a foreign key to another table (never searched as the id)
    "name",  # a full name
    "first_name",
    "last_name",
    "phone",
    "email",
    "date",
    "amount",
    "status",
    "text",
    "flag",
    "consent",  # marketing (advertising) consent flag
    "night_consent",  # separate consent for advertising between 21:00 and 08:00 KST
    "other",
]
Channel = Literal["sms", "email", "other"]
#: the top-level key naming the source a mapping file belongs to (absent: the sample shop)
SOURCE_KEY = "$source"
#: a field, or relation names then a field: `phone`, `address.phone`; a name may hold a
#: space inside (`home address.phone`), not at either end (a path is read stripped)
_SEGMENT = r"[^.\s](?:[^.]*[^.\s])?"
PATH = re.compile(rf"{_SEGMENT}(\.{_SEGMENT})*")
FIELD_TYPES: tuple[str, ...] = get_args(FieldType)
#: each consent role and the mapping's key that names its path
CONSENT_PATHS = {"consent": "consent", "night_consent": "nightConsent"}
#: the role of a channel's address field (the recipient when no path names one)
CHANNEL_ROLE = {"sms": "phone", "email": "email"}
ROLES: tuple[str, ...] = get_args(Role)


def mappable(column: str) -> bool:
    """Whether a column can be a mapped field: no dot (a path's separator) and no space at
    either end (a path is read stripped), so its name read as a path is itself."""
    return "." not in column and column == column.strip()


def labelled(fields: dict[str, FieldMapping], label: str) -> str | None:
    """The field whose name, display name or alias is `label`, or None."""
    if label in fields:
        return label
    return next(
        (n for n, f in fields.items() if label == f.displayName or label in f.aliases), None
    )


def _refuse_label_of_another(fields: dict[str, FieldMapping]) -> None:
    """A display name or alias must not be another field's name, display name or alias: a
    path or variable is read by its label, so a consent `ok` was read from the field
    `ok_old` displayed as "ok" (everyone yes), a recipient `tel` from the old number `tel2`."""
    owner: dict[str, str] = {name: name for name in fields}
    for name, field in fields.items():
        for label in dict.fromkeys([field.displayName, *field.aliases]):
            other = owner.setdefault(label, name)
            if other != name:
                raise ValueError(
                    f"field {short(name)}: its display name or alias {short(label)} is also "
                    f"the name or label of field {short(other)}, so a path or variable {short(label)} "
                    "could read either column; give it another display name or alias"
                )


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class FieldMapping(_Model):
    displayName: str = Field(min_length=1)
    type: FieldType = "string"
    filterable: bool = False
    role: Role | None = None
    searchable: bool = False
    pii: bool = False
    aliases: list[str] = Field(default_factory=list)


class Relation(_Model):
    table: str
    localField: str
    foreignField: str
    kind: Literal["many-to-one", "one-to-many"] = "one-to-many"
    orderBy: str | None = None
    # the path segment this relation is reached by (`address` in `address.phone`);
    # defaults to the related table's name
    name: str | None = None

    @property
    def path_name(self) -> str:
        return self.name or self.table


class TableMapping(_Model):
    displayName: str = Field(min_length=1)
    description: str = ""
    fields: dict[str, FieldMapping]
    key: str | None = None
    isActive: bool = True
    relations: list[Relation] = Field(default_factory=list)
    # Audience roles (nothing in the code names an audience table): an audience table's rows
    # can be targets; `key` must then be its primary key or a unique index. The paths below
    # are a field name or a dotted path through to-one relations (`address.phone`).
    audience: bool = False
    recipient: str | None = None  # the channel address (phone, email, ...)
    channel: Channel = "sms"
    consent: str | None = None  # marketing consent flag (truthy = consented)
    nightConsent: str | None = None  # night-time (21-08 KST) advertising consent flag

    @model_validator(mode="after")
    def _consistent(self) -> TableMapping:
        seen: dict[str, str] = {}
        for name, field in self.fields.items():
            if not mappable(name):
                # a dot separates relations in every path (`address.phone`): `agree.yn` as a
                # consent was read as relation `agree`'s `yn`, a key `id.no` was dropped; a
                # path is read stripped: ` ok` as a consent was read as the column `ok`
                raise ValueError(
                    f"field {short(name)}: a column whose name holds a dot, or starts or ends "
                    "with a space, cannot be mapped (a path reads it as another column); leave "
                    "it out, or read it through a view or saved query that renames it"
                )
            other = seen.get(field.displayName)
            if other is not None:
                raise ValueError(
                    f"fields {other!r} and {name!r} share the display name {field.displayName!r}; "
                    "give each field its own"
                )
            seen[field.displayName] = name
        _refuse_label_of_another(self.fields)
        if self.key is not None and self.key not in self.fields:
            raise ValueError(f"key {self.key!r} is not one of the mapped fields")
        names: set[str] = set()
        for relation in self.relations:
            if not mappable(relation.path_name):
                clean = re.sub(r"[.\s]+", "_", relation.path_name.strip()).strip("_") or "other"
                # `sales.customers.ok` was read as relation `sales`, then its `customers`:
                # another table, where everyone had said yes
                raise ValueError(
                    f"relation to {short(relation.table)}: its path name "
                    f"{short(relation.path_name)} holds a dot, or starts or ends with a space, "
                    "so a path reads it as other relations; give the relation a 'name' "
                    f"without one (e.g. 'name': {clean!r})"
                )
            holder = labelled(self.fields, relation.path_name)
            if holder is not None:
                # values are filled by name: `address` the field's text and `address.city`
                # through the relation cannot both be given, so a template using both
                # (reported mapped) failed every message of the run
                raise ValueError(
                    f"relation to {short(relation.table)}: its path name "
                    f"{short(relation.path_name)} is also the name or label of field "
                    f"{short(holder)}, so a template cannot use both; give the relation a "
                    f"'name' of its own (e.g. 'name': {relation.path_name + '_rel'!r})"
                )
            if relation.path_name in names:
                raise ValueError(
                    f"two relations are both reached as {relation.path_name!r}; "
                    "give one of them another name"
                )
            names.add(relation.path_name)
        for attr in ("recipient", "consent", "nightConsent"):
            path = getattr(self, attr)
            if path is not None and not PATH.fullmatch(path):
                raise ValueError(
                    f"{attr} {path!r} must be a field or a dotted path such as address.phone"
                )
        return self

    def recipient_path(self, table: str) -> str | None:
        """The path a run sends to: the mapping's `recipient`, else the one field whose
        role is the channel's (`CHANNEL_ROLE`: `phone` for SMS), else None.

        Several fields with that role and no path raise, as `consent_path` does: which is
        the recipient is not known, and a preview that showed the first one promised
        recipients the run then refused (`audience.audience_of`)."""
        return self._role_path(table, "recipient", CHANNEL_ROLE.get(self.channel), "recipient")

    def consent_path(self, table: str, role: str) -> str | None:
        """The path a run reads for a consent role (`consent`, `night_consent`): the
        mapping's path, else the one field with the role, else None.

        Several fields with the role and no path raise: which one is the consent is not
        known, and reading none of them fails open (an informational target's consent
        filter was dropped, so customers who said no were messaged)."""
        attr = CONSENT_PATHS.get(role) if isinstance(role, str) else None
        if attr is None:
            raise ValidationError(
                f"role must be one of {', '.join(map(repr, CONSENT_PATHS))}, not {short(role)}."
            )
        return self._role_path(table, attr, role, role.replace("_", " "))

    def _role_path(self, table: str, attr: str, role: str | None, label: str) -> str | None:
        """The mapping's path `attr`, else the one field with `role`, else None; several
        fields with the role and no path: one line naming them and what to do."""
        path: str | None = getattr(self, attr)
        if path is not None or role is None:
            return path
        found = [name for name, f in self.fields.items() if f.role == role]
        if len(found) > 1:
            named = ", ".join(repr(n) for n in found[:-1]) + f" and {found[-1]!r}"
            every = "both" if len(found) == 2 else "all"
            raise ValidationError(
                f"{table}.{attr}: fields {named} {every} have the role {role!r}, so which one "
                f"is the {label} is unknown; set the mapping's {attr!r} to one of them, or "
                "give the role to one field only.",
                path=f"{table}.{attr}",
            )
        return found[0] if found else None

    def field_by_label(self, label: str) -> str | None:
        """The field whose name, display name or alias is `label`: a field's own name first
        (a path written with a column's name reads that column, never another field's label)."""
        if label in self.fields:
            return label
        for name, field in self.fields.items():
            if label == field.displayName or label in field.aliases:
                return name
        return None


class MappingFile(RootModel[dict[str, TableMapping]]):
    def tables(self) -> dict[str, TableMapping]:
        return self.root

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True)


def parse(data: Any, source: str = "mapping") -> MappingFile:
    """Validate mapping data or raise one error naming the JSON path and what is wrong."""
    data = load_json(data, source)
    if isinstance(data, dict) and SOURCE_KEY in data:
        data = {k: v for k, v in data.items() if k != SOURCE_KEY}
    try:
        return MappingFile.model_validate(data)
    except PydanticError as exc:
        path, msg = first_error(exc)
        raise ValidationError(
            f"{source}: {path or '(top level)'} {msg}; nothing was saved.", path=path
        ) from None


def json_schema() -> dict[str, Any]:
    """The published JSON Schema of table-mappings.json."""
    schema = MappingFile.model_json_schema()
    schema["title"] = "hybridwb table mappings"
    schema["properties"] = {
        SOURCE_KEY: {
            "type": "string",
            "description": "the source these mappings belong to (absent: the sample shop)",
        }
    }
    return schema
