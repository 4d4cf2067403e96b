"""Layer one: the parser-based guard, table-driven (pure, no database)."""

from __future__ import annotations

import pytest

from hybridwb.errors import QueryError, ReadOnlyViolation
from hybridwb.source import guard

ATTACKS = {
    "delete": "DELETE FROM customers",
    "update": "UPDATE customers SET grade = 'VIP'",
    "insert": "INSERT INTO customers (name) VALUES ('x')",
    "insert-select": "INSERT INTO t SELECT * FROM customers",
    "replace": "REPLACE INTO customers VALUES (1)",
    "drop-table": "DROP TABLE customers",
    "drop-database": "DROP DATABASE shop",
    "truncate": "TRUNCATE TABLE payments",
    "alter": "ALTER TABLE customers ADD COLUMN x INT",
    "create-table": "CREATE TABLE x (a INT)",
    "create-temp": "CREATE TEMPORARY TABLE x AS SELECT 1",
    "create-view": "CREATE VIEW v AS SELECT 1",
    "grant": "GRANT ALL ON *.* TO 'x'@'%'",
    "set-var": "SET @a = 1",
    "set-session": "SET SESSION TRANSACTION READ WRITE",
    "set-global": "SET GLOBAL max_connections = 1",
    "use": "USE mysql",
    "call": "CALL do_things()",
    "do-sleep": "DO SLEEP(10)",
    "handler": "HANDLER customers OPEN",
    "load-data": "LOAD DATA INFILE '/etc/passwd' INTO TABLE t",
    "lock-tables": "LOCK TABLES customers WRITE",
    "unlock": "UNLOCK TABLES",
    "analyze-update": "ANALYZE UPDATE customers SET grade = 'x'",
    "analyze-delete": "ANALYZE DELETE FROM customers",
    "analyze-table": "ANALYZE TABLE customers",
    "explain-delete": "EXPLAIN DELETE FROM customers",
    "explain-update": "EXPLAIN UPDATE customers SET grade = 'x'",
    "two-statements": "SELECT 1; DROP TABLE customers",
    "two-selects": "SELECT 1; SELECT 2",
    "stacked-after-comment": "SELECT 1; -- harmless\nDELETE FROM customers",
    "exec-comment": "SELECT 1 /*! ; DROP TABLE customers */",
    "exec-comment-versioned": "SELECT 1 /*!50000 , SLEEP(10) */",
    "exec-comment-mariadb": "SELECT 1 /*M! , SLEEP(10) */",
    "exec-comment-mariadb-versioned": "SELECT 1 /*M!100100 , SLEEP(10) */",
    "exec-comment-only": "/*! DELETE FROM customers */",
    "exec-comment-in-where": "SELECT * FROM customers WHERE 1 /*! AND SLEEP(5) */",
    "into-outfile": "SELECT * FROM customers INTO OUTFILE '/tmp/x'",
    "into-dumpfile": "SELECT name FROM customers LIMIT 1 INTO DUMPFILE '/tmp/x'",
    "into-var": "SELECT name INTO @n FROM customers LIMIT 1",
    "into-var-end": "SELECT 1 INTO @x",
    "assign": "SELECT @a := 1",
    "assign-in-where": "SELECT * FROM customers WHERE (@n := @n + 1) > 0",
    "for-update": "SELECT * FROM customers FOR UPDATE",
    "for-update-nowait": "SELECT * FROM customers WHERE customer_id = 1 FOR UPDATE NOWAIT",
    "for-share": "SELECT * FROM customers FOR SHARE",
    "lock-in-share": "SELECT * FROM customers LOCK IN SHARE MODE",
    "subquery-for-update": "SELECT * FROM (SELECT * FROM customers FOR UPDATE) t",
    "sleep": "SELECT SLEEP(5)",
    "sleep-lower": "select sleep(5)",
    "sleep-in-where": "SELECT * FROM customers WHERE SLEEP(1) = 0",
    "benchmark": "SELECT BENCHMARK(100000000, MD5('a'))",
    "get-lock": "SELECT GET_LOCK('x', 10)",
    "release-lock": "SELECT RELEASE_LOCK('x')",
    "is-free-lock": "SELECT IS_FREE_LOCK('x')",
    "load-file": "SELECT LOAD_FILE('/etc/passwd')",
    "master-pos-wait": "SELECT MASTER_POS_WAIT('log', 4)",
    "nextval": "SELECT NEXTVAL(seq)",
    "next-value-for": "SELECT NEXT VALUE FOR seq",
    "setval": "SELECT SETVAL(seq, 100)",
    "last-insert-id-set": "SELECT LAST_INSERT_ID(42)",
    "sleep-in-cte": "WITH a AS (SELECT SLEEP(3) AS s) SELECT * FROM a",
    "sleep-in-union": "SELECT 1 UNION SELECT SLEEP(3)",
    "set-var-hint": "SELECT /*+ SET_VAR(sql_mode='') */ 1",
    "procedure-analyse": "SELECT * FROM customers PROCEDURE ANALYSE()",
    "flush": "FLUSH PRIVILEGES",
    "kill": "KILL 1",
    "shutdown": "SHUTDOWN",
    "rename": "RENAME TABLE a TO b",
    "optimize": "OPTIMIZE TABLE customers",
    "prepare": "PREPARE s FROM 'DELETE FROM customers'",
    "execute": "EXECUTE s",
    "start-transaction": "START TRANSACTION READ WRITE",
    "xa": "XA START 'x'",
    "install-plugin": "INSTALL PLUGIN x SONAME 'x.so'",
}

READS = {
    "simple": "SELECT * FROM customers",
    "where-bind": "SELECT * FROM customers WHERE grade = :grade",
    "in-bind": "SELECT * FROM customers WHERE customer_id IN :ids",
    "limit": "SELECT customer_id FROM customers ORDER BY customer_id LIMIT 10",
    "limit-offset": "SELECT customer_id FROM customers LIMIT 10 OFFSET 20",
    "join": "SELECT c.name, s.plan FROM customers c JOIN subscriptions s ON s.customer_id = c.customer_id",
    "left-join": "SELECT c.name, p.amount FROM customers c LEFT JOIN payments p ON p.customer_id = c.customer_id",
    "three-way-join": "SELECT c.name, s.plan, p.amount FROM customers c JOIN subscriptions s ON s.customer_id = c.customer_id JOIN payments p ON p.subscription_id = s.subscription_id",
    "group-by": "SELECT grade, COUNT(*) FROM customers GROUP BY grade",
    "having": "SELECT grade, COUNT(*) n FROM customers GROUP BY grade HAVING n > 10",
    "cte": "WITH vip AS (SELECT * FROM customers WHERE grade = 'VIP') SELECT COUNT(*) FROM vip",
    "two-ctes": "WITH a AS (SELECT 1 AS x), b AS (SELECT x + 1 AS y FROM a) SELECT * FROM b",
    "recursive-cte": "WITH RECURSIVE n AS (SELECT 1 AS i UNION ALL SELECT i + 1 FROM n WHERE i < 5) SELECT * FROM n",
    "window": "SELECT customer_id, ROW_NUMBER() OVER (PARTITION BY grade ORDER BY created_at) rn FROM customers",
    "window-sum": "SELECT customer_id, SUM(amount) OVER (ORDER BY paid_at) FROM payments",
    "union": "SELECT name FROM customers UNION SELECT plan FROM subscriptions",
    "union-all": "SELECT 1 UNION ALL SELECT 2",
    "subquery": "SELECT * FROM customers WHERE customer_id IN (SELECT customer_id FROM payments)",
    "exists": "SELECT * FROM customers c WHERE EXISTS (SELECT 1 FROM payments p WHERE p.customer_id = c.customer_id)",
    "derived": "SELECT t.g FROM (SELECT grade g FROM customers) t",
    "case": "SELECT CASE WHEN grade = 'VIP' THEN 1 ELSE 0 END FROM customers",
    "korean-literal": "SELECT * FROM customers WHERE name = '홍길동'",
    "korean-identifiers": "SELECT `고객명`, `등급` FROM `고객` WHERE `등급` = 'VIP'",
    "korean-alias": "SELECT name AS 고객명 FROM customers",
    "keyword-in-string": "SELECT * FROM customers WHERE name = 'DROP TABLE customers; DELETE'",
    "sleep-in-string": "SELECT 'SLEEP(5)' AS s",
    "into-in-string": "SELECT 'INTO OUTFILE /tmp/x' AS s",
    "exec-comment-in-string": "SELECT '/*! DROP */' AS s",
    "for-update-in-string": "SELECT * FROM t WHERE note = 'FOR UPDATE'",
    "lock-column-quoted": "SELECT `lock` FROM t",
    "semicolon-in-string": "SELECT 'a;b' AS s",
    "trailing-semicolon": "SELECT 1;",
    "line-comment": "SELECT 1 -- just a comment",
    "hash-comment": "SELECT 1 # a comment",
    "block-comment": "SELECT /* plain comment */ 1",
    "hint-index": "SELECT /*+ MAX_EXECUTION_TIME(1000) */ * FROM customers",
    "date-format": "SELECT DATE_FORMAT(created_at, '%Y-%m') m, COUNT(*) FROM customers GROUP BY m",
    "like": "SELECT * FROM customers WHERE name LIKE '김%'",
    "between": "SELECT * FROM payments WHERE paid_at BETWEEN '2026-01-01' AND '2026-02-01'",
    "show-tables": "SHOW TABLES",
    "show-full-tables": "SHOW FULL TABLES",
    "show-columns": "SHOW COLUMNS FROM customers",
    "show-index": "SHOW INDEX FROM customers",
    "show-create": "SHOW CREATE TABLE customers",
    "show-grants": "SHOW GRANTS",
    "describe": "DESCRIBE customers",
    "desc": "DESC customers",
    "explain": "EXPLAIN SELECT * FROM customers WHERE customer_id = 1",
    "explain-join": "EXPLAIN SELECT * FROM customers c JOIN payments p ON p.customer_id = c.customer_id",
    "colon-in-string": "SELECT * FROM t WHERE time = '12:30'",
    "system-var": "SELECT @@session.tx_read_only",
    "coalesce": "SELECT COALESCE(email, phone) FROM customers",
}


@pytest.mark.parametrize("sql", ATTACKS.values(), ids=ATTACKS.keys())
def test_attack_is_refused(sql: str) -> None:
    with pytest.raises((ReadOnlyViolation, QueryError)):
        guard.check(sql)


@pytest.mark.parametrize("sql", READS.values(), ids=READS.keys())
def test_read_is_admitted(sql: str) -> None:
    checked = guard.check(sql)
    assert checked.kind in ("select", "show", "describe")


def test_there_are_enough_cases() -> None:
    assert len(ATTACKS) >= 60
    assert len(READS) >= 40


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("SELECT 1 /*! , 2 */", "executable comment"),
        ("SELECT * FROM t INTO OUTFILE '/x'", "INTO"),
        ("SELECT * FROM t FOR UPDATE", "row locks"),
        ("SELECT SLEEP(1)", "SLEEP()"),
        ("SELECT 1; SELECT 2", "2 statements"),
        ("DELETE FROM t", "DELETE is not a read statement"),
        ("ANALYZE DELETE FROM t", "ANALYZE is not a read statement"),
        ("SELECT @a := 1", "assigns a variable"),
    ],
    ids=["exec-comment", "outfile", "lock", "sleep", "stacked", "delete", "analyze", "assign"],
)
def test_refusal_says_why_in_one_line(sql: str, words: str) -> None:
    with pytest.raises(ReadOnlyViolation) as info:
        guard.check(sql)
    message = str(info.value)
    assert words in message
    assert "\n" not in message
    assert message.startswith("Refused:")


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("", "empty"),
        ("   ;  ", "empty"),
        ("-- only a comment", "only comments"),
        ("SELECT 'x\x00'", "NUL"),
        ("SELECT '\ud800'", "UTF-8"),
        (b"SELECT '\xff'", "UTF-8"),
        ("SELECT " + "1," * 600_000 + "1", "limit is"),
        ("SELEC * FROM t", "Syntax error"),
        (42, "must be text"),
    ],
    ids=[
        "empty",
        "semicolons",
        "comment-only",
        "nul",
        "surrogate",
        "bad-bytes",
        "one-megabyte",
        "typo",
        "not-text",
    ],
)
def test_bad_query_text_gets_a_clear_error(query: object, words: str) -> None:
    with pytest.raises(QueryError) as info:
        guard.check(query)
    assert words in str(info.value)


def test_syntax_error_carries_its_position() -> None:
    with pytest.raises(QueryError) as info:
        guard.check("SELECT * FROM customers WHERE")
    assert info.value.line == 1


def test_normalized_statement_has_no_literals() -> None:
    checked = guard.check("SELECT * FROM customers WHERE name = '홍길동' AND customer_id = 42")
    assert checked.normalized() == "SELECT * FROM customers WHERE name = ? AND customer_id = ?"
    assert "홍길동" not in guard.normalize("SELECT '홍길동'")
