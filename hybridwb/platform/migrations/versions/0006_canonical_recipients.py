"""Send history in one spelling per phone: legacy recipients rewritten to E.164.

Versions before E.164 phones stored a phone's digits (`01055550001`, `00821055550001`);
until now every batch's history look-up probed the canonical spelling and four legacy ones
per recipient, the largest server cost of a run. This revision rewrites each digit-only
recipient in `send_records` to the canonical phone it stands for
(`spelling.legacy_canonical`: the one near form that claims it) and adds a partial index
of the digit-only recipients left (`schema.LEGACY_RECIPIENT_INDEX`). A run asks that index
once per batch: while it is empty, history is probed by the canonical spelling alone;
while it is not (a spelling claimed by no phone or by several, left as it was; a row
written since by something older than this revision), by every spelling, as before.

An older hybridwb refuses a store at this revision (`Backend.ready` compares the schema),
so it cannot add legacy rows later; one already running when this migration ran, or
another program writing `send_records`, still could: the per-batch check then sends runs
back to the slow probe, they never miss such a row.

The offline script (`hybridwb init --sql`) only creates the index: it cannot read the
rows. Runs on such a store find the legacy rows and probe every spelling until
`hybridwb init` (online) rewrites them. The rewrite is not undone by a downgrade (the
canonical spelling is what the older code probes first).

Cost: about 0.1-15 ms of phone parsing per distinct digit-only recipient, once.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from hybridwb.platform import schema

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

#: recipients rewritten per UPDATE statement
CHUNK = 1000


def upgrade() -> None:
    context = op.get_context()
    dialect = context.dialect.name
    predicate = schema.LEGACY_RECIPIENT[dialect]
    if not context.as_sql:
        _rewrite(op.get_bind(), predicate)
        indexes = {i["name"] for i in sa.inspect(op.get_bind()).get_indexes("send_records")}
        if schema.LEGACY_RECIPIENT_INDEX in indexes:
            return
    op.create_index(
        schema.LEGACY_RECIPIENT_INDEX,
        "send_records",
        ["recipient"],
        postgresql_where=sa.text(predicate),
        sqlite_where=sa.text(predicate),
    )


def _rewrite(bind: sa.Connection, predicate: str) -> None:
    # the phone rules live with the send policies (workflows/policies.py); a migration
    # is the one place below them that needs them, so it imports them here
    from hybridwb.workflows.spelling import legacy_canonical

    records = sa.table("send_records", sa.column("recipient", sa.String))
    found = bind.execute(
        sa.select(records.c.recipient).distinct().where(sa.text(predicate))
    ).scalars()
    pairs = [
        {"old": spelling, "new": canonical}
        for spelling in found
        if (canonical := legacy_canonical(spelling)) is not None
    ]
    stmt = (
        sa.update(records)
        .where(records.c.recipient == sa.bindparam("old"))
        .values(recipient=sa.bindparam("new"))
    )
    for start in range(0, len(pairs), CHUNK):
        bind.execute(stmt, pairs[start : start + CHUNK])


def downgrade() -> None:
    op.drop_index(schema.LEGACY_RECIPIENT_INDEX, table_name="send_records")
