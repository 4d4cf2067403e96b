"""Column lineage for masking: which output columns of a query carry pii (pure, no database)."""

from __future__ import annotations

import pytest

from hybridwb.lineage import pii_output_columns, tables_in

SCHEMA = {
    "customers": ["customer_id", "name", "email", "phone", "grade"],
    "orders": ["id", "customer_id", "amount", "memo"],
    "v_contacts": ["cid", "contact"],  # a view the mapping does not know
}
PII = {"customers": {"email", "phone"}}


def columns_of(table: str) -> list[str] | None:
    return SCHEMA.get(table)


# (sql, the result's columns as the server names them, the ones to mask)
CASES = [
    ("SELECT email, phone FROM customers", ["email", "phone"], {"email", "phone"}),
    ("SELECT email AS contact, phone tel FROM customers", ["contact", "tel"], {"contact", "tel"}),
    ("SELECT name, grade FROM customers", ["name", "grade"], set()),
    ("SELECT c.email AS x FROM customers c", ["x"], {"x"}),
    ("SELECT `EMAIL` AS X FROM Customers", ["X"], {"X"}),
    ("SELECT shop.customers.email AS e FROM shop.customers", ["e"], {"e"}),
    ("SELECT CONCAT(email, '') AS e FROM customers", ["e"], {"e"}),
    ("SELECT CONCAT(email, '')  FROM customers", ["CONCAT(email, '')"], {"CONCAT(email, '')"}),
    ("SELECT SUBSTR(phone, 1, 20) AS p FROM customers", ["p"], {"p"}),
    ("SELECT LOWER(email) AS e, UPPER(name) AS n FROM customers", ["e", "n"], {"e"}),
    ("SELECT REPLACE(phone, '-', '') AS digits FROM customers", ["digits"], {"digits"}),
    ("SELECT CASE WHEN grade = 'VIP' THEN email END AS e FROM customers", ["e"], {"e"}),
    ("SELECT COALESCE(email, phone) AS reach FROM customers", ["reach"], {"reach"}),
    ("SELECT COUNT(email) AS n FROM customers", ["n"], set()),
    ("SELECT grade, COUNT(*) AS n FROM customers GROUP BY grade", ["grade", "n"], set()),
    ("SELECT MAX(email) AS m FROM customers", ["m"], {"m"}),
    ("SELECT GROUP_CONCAT(phone) AS g FROM customers", ["g"], {"g"}),
    ("SELECT x FROM (SELECT email AS x FROM customers) t", ["x"], {"x"}),
    ("SELECT t.y FROM (SELECT name AS y FROM customers) AS t", ["y"], set()),
    ("WITH c AS (SELECT phone AS p FROM customers) SELECT p AS q FROM c", ["q"], {"q"}),
    ("WITH c AS (SELECT name FROM customers) SELECT name FROM c", ["name"], set()),
    ("SELECT name FROM customers UNION SELECT email FROM customers", ["name"], {"name"}),
    ("SELECT grade FROM customers UNION ALL SELECT memo FROM orders", ["grade"], set()),
    (
        "SELECT * FROM customers",
        SCHEMA["customers"],
        {"email", "phone"},
    ),
    (
        "SELECT c.*, o.amount FROM customers c JOIN orders o ON o.customer_id = c.customer_id",
        [*SCHEMA["customers"], "amount"],
        {"email", "phone"},
    ),
    ("SELECT o.* FROM orders o", SCHEMA["orders"], set()),
    (
        "SELECT o.amount, c.email AS who FROM orders o JOIN customers c USING (customer_id)",
        ["amount", "who"],
        {"who"},
    ),
    (
        "SELECT (SELECT c.email FROM customers c WHERE c.customer_id = o.customer_id) AS z "
        "FROM orders o",
        ["z"],
        {"z"},
    ),
    ("SELECT name FROM customers WHERE email = :who", ["name"], set()),
    ("SELECT 1 AS one, 'x' AS two", ["one", "two"], set()),
    ("SELECT contact AS c FROM v_contacts", ["c"], set()),  # the documented residue
    ("SELECT secret FROM nowhere", ["secret"], {"secret"}),  # unknown table: masked
    ("SELECT * FROM nowhere", ["a", "b"], {"a", "b"}),  # a star not expanded
    ("SELECT email, name AS email FROM customers", ["email", "email"], {"email"}),
    ("SELECT email FROM customers", ["email", "extra"], {"email", "extra"}),  # count mismatch
    ("SELEC broken FROM", ["a"], {"a"}),  # cannot parse
    ("SHOW TABLES", ["Tables_in_shop"], set()),
    ("DESCRIBE customers", ["Field", "Type"], set()),
]


@pytest.mark.parametrize(
    ("sql", "columns", "masked"), CASES, ids=[c[0][:60] for c in CASES]
)  # fmt: skip
def test_outputs_derived_from_pii_are_masked(
    sql: str, columns: list[str], masked: set[str]
) -> None:
    assert pii_output_columns(sql, columns, PII, columns_of) == masked


def test_a_table_not_flagged_masks_nothing_it_does_not_know() -> None:
    """Without pii flags, lineage masks only what it cannot follow."""
    assert pii_output_columns("SELECT email AS e FROM customers", ["e"], {}, columns_of) == set()


def test_tables_in_names_what_a_statement_reads() -> None:
    got = tables_in("WITH c AS (SELECT 1) SELECT * FROM shop.Customers JOIN orders ON 1 = 1")
    assert got == {"customers", "orders"}
    assert tables_in("SELEC broken FROM") == set()


def test_a_wide_select_is_traced_with_work_linear_in_its_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """600 output columns (a 9 kB statement): each traced right (every `email` alias
    masked, every `name` one not), with the expression nodes made while tracing under 40
    per node of the statement. BREAK (fixed): sqlglot's lineage copied the whole SELECT
    for each column's label (`trim_selects`), ~600 nodes made per node: 1,000 columns took
    two minutes when the frame was shown."""
    import sqlglot
    from sqlglot import exp

    n = 600
    sql = "SELECT " + ", ".join(f"{'email' if i % 2 else 'name'} AS c{i}" for i in range(n))
    sql += " FROM customers"
    size = sum(1 for _ in sqlglot.parse_one(sql, read="mysql").walk())
    made = 0
    init = exp.Expression.__init__

    def counting(self: exp.Expression, **args: object) -> None:
        nonlocal made
        made += 1
        init(self, **args)

    monkeypatch.setattr(exp.Expression, "__init__", counting)
    columns = [f"c{i}" for i in range(n)]
    assert pii_output_columns(sql, columns, PII, columns_of) == {f"c{i}" for i in range(1, n, 2)}
    assert made < 40 * size, f"{made:,} nodes made for a statement of {size:,}"


@pytest.mark.parametrize(("shape", "n"), [("ctes", 2000), ("unions", 1500)])
def test_a_statement_of_thousands_of_query_bodies_is_masked_whole_at_a_bounded_cost(
    shape: str, n: int
) -> None:
    """Thousands of CTEs or UNION branches, each reading only `name`: over `MAX_SCOPES`
    the result is masked whole (fail-safe), with the Python calls made under 100 per node
    of the statement and the memory under 500 bytes per byte of it; at `MAX_SCOPES` it is
    still traced (`name` not masked). BREAK (fixed): sqlglot's scopes grew with the
    square: 2,000 CTEs took 242 MB (8,000, 222 kB of text under the guard's limit: 33 s
    and 2 GB), 1,500 branches 1,239 calls per node (2,000: 8 s), when the frame was shown."""
    import sys
    import tracemalloc

    import sqlglot

    from hybridwb import lineage

    def statement(n: int) -> str:
        if shape == "ctes":
            bodies = ", ".join(f"c{i} AS (SELECT name AS n FROM customers)" for i in range(n))
            return f"WITH {bodies} SELECT n FROM c{n - 1}"
        return " UNION ALL ".join("SELECT name AS n FROM customers" for _ in range(n + 1))

    assert pii_output_columns(statement(lineage.MAX_SCOPES), ["n"], PII, columns_of) == set()
    sql = statement(n)
    size = sum(1 for _ in sqlglot.parse_one(sql, read="mysql").walk())
    calls = 0

    def count(frame: object, event: str, arg: object) -> None:
        nonlocal calls
        calls += event == "call"

    tracemalloc.start()
    sys.setprofile(count)
    try:
        masked = pii_output_columns(sql, ["n"], PII, columns_of)
    finally:
        sys.setprofile(None)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert masked == {"n"}
    assert calls < 100 * size, f"{calls:,} calls for a statement of {size:,} nodes"
    assert peak < 500 * len(sql), f"{peak:,} bytes for a statement of {len(sql):,}"
