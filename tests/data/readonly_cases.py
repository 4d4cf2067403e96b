"""The read-only attack corpus and the legitimate reads (data only, grouped by class).

Every `Attack` is a statement a determined user could send through hybridwb with a writable
account; `error` is the exact refusal class the public API must raise (`None`: the statement
is harmless as sent and must run, e.g. a hostile value in a real bind). `text` is the final
text the driver would send for it: binds interpolated the way PyMySQL does, also inside
string literals — what the guard sees at the place a statement is sent.

Every `Read` is a legitimate read whose rows are compared with the same statement run directly
by PyMySQL. The objects the statements name (`hb_write()`, `hb_sink`, `hb_seq`, `hb_proc`)
are created by the corpus fixture in the throwaway test database.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from pymysql.converters import escape_item

from hybridwb.errors import BindError, HybridwbError, QueryError, ReadOnlyViolation

RUN = uuid.uuid4().hex[:8]
FILE = f"/tmp/hybridwb_attack_{RUN}"  # every file an attack names starts with this
LOCK = f"hb_lock_{RUN}"  # every named lock an attack names
_BIND = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def interpolate(sql: str, params: dict[str, Any] | None) -> str:
    """The text PyMySQL would send if every `:name` were a bind (even inside quotes)."""
    if not params:
        return sql

    def literal(value: Any) -> str:
        if isinstance(value, list | tuple):
            return "(" + ", ".join(escape_item(v, "utf8mb4") for v in value) + ")"
        return str(escape_item(value, "utf8mb4"))

    return _BIND.sub(lambda m: literal(params[m.group(1)]), sql)


@dataclass(frozen=True)
class Attack:
    id: str
    group: str
    sql: str
    params: dict[str, Any] | None = None
    error: type[HybridwbError] | None = ReadOnlyViolation  # through the public API
    guard_error: type[HybridwbError] | None = ReadOnlyViolation  # guard on the final text
    words: str = ""  # part of the refusal message

    @property
    def text(self) -> str:
        return interpolate(self.sql, self.params)

    @property
    def files(self) -> list[str]:
        return sorted(set(re.findall(re.escape(FILE) + r"[\w.-]*", self.text)))


@dataclass(frozen=True)
class Read:
    id: str
    group: str
    sql: str
    params: dict[str, Any] | None = None
    direct: str | None = None  # the PyMySQL (%(name)s) form when there are binds
    args: dict[str, Any] = field(default_factory=dict)


ATTACKS: list[Attack] = []
READS: list[Read] = []


def _a(group: str, id_: str, sql: str, words: str = "", **kw: Any) -> None:
    ATTACKS.append(Attack(f"{group}-{id_}", group, sql, words=words, **kw))


def _r(group: str, id_: str, sql: str, **kw: Any) -> None:
    READS.append(Read(f"{group}-{id_}", group, sql, **kw))


# -- DDL / DML / DCL ------------------------------------------------------------------------
for i, (sql, verb) in enumerate(
    [
        ("DELETE FROM customers", "DELETE"),
        ("DELETE c FROM customers c JOIN payments p USING (customer_id)", "DELETE"),
        ("UPDATE customers SET grade = 'VIP'", "UPDATE"),
        ("UPDATE customers c JOIN payments p USING (customer_id) SET c.grade = 'X'", "UPDATE"),
        ("INSERT INTO hb_sink VALUES (1)", "INSERT"),
        ("INSERT INTO hb_sink SELECT customer_id FROM customers", "INSERT"),
        ("INSERT IGNORE INTO hb_sink VALUES (2)", "INSERT"),
        ("INSERT INTO hb_sink VALUES (3) ON DUPLICATE KEY UPDATE n = 4", "INSERT"),
        ("REPLACE INTO hb_sink VALUES (1)", "REPLACE"),
        ("DROP TABLE customers", "DROP"),
        ("DROP TABLE IF EXISTS hb_sink", "DROP"),
        ("DROP VIEW IF EXISTS v", "DROP"),
        ("DROP DATABASE mysql", "DROP"),
        ("DROP FUNCTION hb_write", "DROP"),
        ("DROP PROCEDURE hb_proc", "DROP"),
        ("DROP SEQUENCE hb_seq", "DROP"),
        ("DROP USER 'root'@'localhost'", "DROP"),
        ("TRUNCATE TABLE payments", "TRUNCATE"),
        ("TRUNCATE payments", "TRUNCATE"),
        ("ALTER TABLE customers ADD COLUMN x INT", "ALTER"),
        ("ALTER TABLE customers ENGINE = MyISAM", "ALTER"),
        ("ALTER USER CURRENT_USER() IDENTIFIED BY 'x'", "ALTER"),
        ("ALTER DATABASE mysql CHARACTER SET latin1", "ALTER"),
        ("CREATE TABLE hb_new (a INT)", "CREATE"),
        ("CREATE TEMPORARY TABLE hb_tmp AS SELECT 1", "CREATE"),
        ("CREATE TABLE hb_copy AS SELECT * FROM customers", "CREATE"),
        ("CREATE VIEW hb_v AS SELECT 1", "CREATE"),
        ("CREATE OR REPLACE VIEW hb_v AS SELECT 1", "CREATE"),
        ("CREATE FUNCTION hb_f() RETURNS INT RETURN 1", "CREATE"),
        ("CREATE PROCEDURE hb_p() SELECT 1", "CREATE"),
        ("CREATE TRIGGER hb_t BEFORE INSERT ON hb_sink FOR EACH ROW SET NEW.n = 1", "CREATE"),
        ("CREATE EVENT hb_e ON SCHEDULE EVERY 1 DAY DO DELETE FROM customers", "CREATE"),
        ("CREATE USER 'hb_atk'@'%'", "CREATE"),
        ("CREATE ROLE hb_atk_role", "CREATE"),
        ("CREATE DATABASE hb_atk_db", "CREATE"),
        ("CREATE INDEX hb_i ON customers (name)", "CREATE"),
        ("CREATE SEQUENCE hb_seq2", "CREATE"),
        ("RENAME TABLE customers TO hb_gone", "RENAME"),
        ("RENAME USER 'root'@'localhost' TO 'x'@'%'", "RENAME"),
        ("GRANT ALL ON *.* TO 'hb_atk'@'%'", "GRANT"),
        ("REVOKE SELECT ON *.* FROM 'root'@'localhost'", "REVOKE"),
        ("WITH x AS (SELECT 1) DELETE FROM customers", "DELETE"),
        ("WITH x AS (SELECT 1) UPDATE customers SET grade = 'X'", "UPDATE"),
    ]
):
    _a(
        "ddl-dml-dcl",
        f"{i:02d}-{verb.lower()}",
        sql,
        f"{verb} is not a read statement" if not sql.startswith("WITH") else "",
    )

# -- SET / session changes ---------------------------------------------------------------------
for i, sql in enumerate(
    [
        "SET @a = 1",
        "SET SESSION TRANSACTION READ WRITE",
        "SET TRANSACTION READ WRITE",
        "SET SESSION tx_read_only = 0",
        "SET max_statement_time = 0",
        "SET SESSION max_statement_time = 0",
        "SET GLOBAL max_connections = 1",
        "SET GLOBAL read_only = 0",
        "SET NAMES latin1",
        "SET sql_mode = 'NO_BACKSLASH_ESCAPES'",
        "SET ROLE ALL",
        "SET DEFAULT ROLE NONE",
        "SET PASSWORD = PASSWORD('x')",
        "SET STATEMENT max_statement_time = 0 FOR SELECT 1",
        "SET autocommit = 1",
    ]
):
    _a("set-session", f"{i:02d}", sql, "SET is not a read statement")
for i, (sql, verb) in enumerate(
    [
        ("USE mysql", "USE"),
        ("START TRANSACTION READ WRITE", "START"),
        ("BEGIN", "BEGIN"),
        ("BEGIN NOT ATOMIC DELETE FROM customers; END", "BEGIN"),
        ("COMMIT", "COMMIT"),
        ("ROLLBACK", "ROLLBACK"),
        ("SAVEPOINT s", "SAVEPOINT"),
        ("XA START 'x'", "XA"),
        ("LOCK TABLES customers WRITE", "LOCK TABLES"),
        ("UNLOCK TABLES", "UNLOCK TABLES"),
    ]
):
    _a(
        "transactions",
        f"{i:02d}-{verb.lower().replace(' ', '-')}",
        sql,
        f"{verb} is not a read statement",
    )

# -- HANDLER / LOAD / CALL / DO -------------------------------------------------------------
for i, (sql, verb) in enumerate(
    [
        ("HANDLER customers OPEN", "HANDLER"),
        ("HANDLER customers READ FIRST", "HANDLER"),
        (f"LOAD DATA INFILE '{FILE}-in' INTO TABLE hb_sink", "LOAD"),
        (f"LOAD DATA LOCAL INFILE '{FILE}-in' INTO TABLE hb_sink", "LOAD"),
        (f"LOAD XML INFILE '{FILE}-in.xml' INTO TABLE hb_sink", "LOAD"),
        ("LOAD INDEX INTO CACHE customers", "LOAD"),
        ("CALL hb_proc()", "CALL"),
        ("CALL hb_proc", "CALL"),
        ("DO SLEEP(3)", "DO"),
        ("DO hb_write()", "DO"),
        (f"DO GET_LOCK('{LOCK}', 0)", "DO"),
        ("DO NEXTVAL(hb_seq)", "DO"),
    ]
):
    _a("handler-load-call-do", f"{i:02d}-{verb.lower()}", sql, f"{verb} is not a read statement")

# -- PREPARE / EXECUTE --------------------------------------------------------------------------
for i, (sql, verb) in enumerate(
    [
        ("PREPARE s FROM 'DELETE FROM customers'", "PREPARE"),
        ("PREPARE s FROM 'SELECT 1'", "PREPARE"),
        ("EXECUTE s", "EXECUTE"),
        ("EXECUTE IMMEDIATE 'DELETE FROM customers'", "EXECUTE"),
        ("EXECUTE IMMEDIATE CONCAT('DEL', 'ETE FROM customers')", "EXECUTE"),
        ("DEALLOCATE PREPARE s", "DEALLOCATE"),
    ]
):
    _a("prepare-execute", f"{i:02d}-{verb.lower()}", sql, f"{verb} is not a read statement")

# -- server administration ----------------------------------------------------------------
for i, (sql, verb) in enumerate(
    [
        ("SHUTDOWN", "SHUTDOWN"),
        ("FLUSH PRIVILEGES", "FLUSH"),
        ("FLUSH TABLES WITH READ LOCK", "FLUSH"),
        ("FLUSH LOGS", "FLUSH"),
        ("HELP 'SELECT'", "HELP"),
        ("KILL 1", "KILL"),
        ("KILL QUERY 1", "KILL"),
        ("RESET QUERY CACHE", "RESET"),
        ("PURGE BINARY LOGS BEFORE NOW()", "PURGE"),
        ("CHANGE MASTER TO MASTER_HOST = 'x'", "CHANGE"),
        ("STOP SLAVE", "STOP"),
        ("INSTALL PLUGIN x SONAME 'x.so'", "INSTALL"),
        ("INSTALL SONAME 'ha_blackhole'", "INSTALL"),
        ("UNINSTALL PLUGIN x", "UNINSTALL"),
        ("OPTIMIZE TABLE customers", "OPTIMIZE"),
        ("REPAIR TABLE customers", "REPAIR"),
        ("CHECK TABLE customers", "CHECK"),
        ("CHECKSUM TABLE customers", "CHECKSUM"),
        ("ANALYZE TABLE customers", "ANALYZE"),
        ("ANALYZE SELECT * FROM customers", "ANALYZE"),
        ("ANALYZE DELETE FROM customers", "ANALYZE"),
        ("ANALYZE UPDATE customers SET grade = 'x'", "ANALYZE"),
        ("CACHE INDEX customers IN hot", "CACHE"),
        ("BINLOG 'AAAA'", "BINLOG"),
        ("SIGNAL SQLSTATE '45000'", "SIGNAL"),
        ("BACKUP STAGE START", "BACKUP"),
        ("EXPLAIN DELETE FROM customers", "EXPLAIN DELETE"),
        ("EXPLAIN UPDATE customers SET grade = 'x'", "EXPLAIN UPDATE"),
        ("EXPLAIN INSERT INTO hb_sink VALUES (1)", "EXPLAIN INSERT"),
        ("DESCRIBE DELETE FROM customers", "DESCRIBE DELETE"),
        ("EXPLAIN FOR CONNECTION 1", "EXPLAIN FOR"),
    ]
):
    _a("admin", f"{i:02d}-{verb.lower().replace(' ', '-')}", sql, f"{verb} is not a read statement")

# -- stacked statements --------------------------------------------------------------------
for i, sql in enumerate(
    [
        "SELECT 1; DROP TABLE customers",
        "SELECT 1; SELECT 2",
        "SELECT 1;DELETE FROM customers",
        "SELECT 1 ; ; DELETE FROM customers",
        "SELECT 1; -- harmless\nDELETE FROM customers",
        "SELECT 1; # harmless\nDELETE FROM customers",
        "SELECT 1; /* harmless */ DELETE FROM customers",
        "SELECT 'a;b'; DELETE FROM customers",
        "SELECT `x;y` FROM (SELECT 1 AS `x;y`) t; DELETE FROM customers",
        "SELECT 1;\nSET SESSION TRANSACTION READ WRITE",
        "SELECT 1;\r\nUPDATE customers SET grade = 'x'",
        "(SELECT 1); INSERT INTO hb_sink VALUES (1)",
        "SHOW TABLES; DROP TABLE customers",
        "DESCRIBE customers; DROP TABLE customers",
        "SELECT 1; SELECT SLEEP(3)",
    ]
):
    _a("stacked", f"{i:02d}", sql, "statements in one query")

# -- executable comments -------------------------------------------------------------------
for i, sql in enumerate(
    [
        "SELECT 1 /*! ; DROP TABLE customers */",
        "SELECT 1 /*!50000 , SLEEP(3) */",
        "SELECT 1 /*M! , SLEEP(3) */",
        "SELECT 1 /*M!100100 , SLEEP(3) */",
        "/*! DELETE FROM customers */",
        "SELECT * FROM customers WHERE 1 /*! AND SLEEP(3) */",
        f"SELECT 1 /*! INTO OUTFILE '{FILE}-ec1' */",
        "SELECT 1 /*!99999 , hb_write() */",
        "SELECT 1 /*m! , SLEEP(3) */",
        "SELECT/*!*/1",
        "SELECT 1 FROM customers /*!LIMIT 1 FOR UPDATE */",
        "SHOW TABLES /*! WHERE SLEEP(3) */",
        "DESCRIBE customers /*! ; DROP TABLE customers */",
        "SELECT 1 -- x\n/*! , SLEEP(3) */",
        "SELECT 1 /*!\n, SLEEP(3) */",
    ]
):
    _a("executable-comment", f"{i:02d}", sql, "executable comment")

# -- INTO OUTFILE / DUMPFILE / variables -----------------------------------------------------
for i, sql in enumerate(
    [
        f"SELECT * FROM customers INTO OUTFILE '{FILE}-of1'",
        f"SELECT name FROM customers LIMIT 1 INTO DUMPFILE '{FILE}-df1'",
        f"SELECT * INTO OUTFILE '{FILE}-of2' FROM customers",
        f"SELECT 1 INTO OUTFILE '{FILE}-of3' FIELDS TERMINATED BY ','",
        f"SELECT * FROM customers INTO OUTFILE '{FILE}-of4' LINES TERMINATED BY '<?php ?>'",
        f"(SELECT 1) INTO OUTFILE '{FILE}-of5'",
        f"SELECT 1 UNION SELECT 2 INTO OUTFILE '{FILE}-of6'",
        f"WITH a AS (SELECT 1) SELECT * FROM a INTO DUMPFILE '{FILE}-df2'",
        f"select 1 into outfile '{FILE}-of7'",
        f"SELECT 1 INTO\nOUTFILE\n'{FILE}-of8'",
        f"SELECT 1 /* c */ INTO /* c */ OUTFILE '{FILE}-of9'",
        "SELECT name INTO @n FROM customers LIMIT 1",
        "SELECT 1 INTO @x",
        "SELECT 1, 2 INTO @x, @y",
        f"SELECT 1 FROM customers LIMIT 1 INTO OUTFILE '{FILE}-of10' CHARACTER SET utf8mb4",
    ]
):
    _a("into-file", f"{i:02d}", sql, "INTO")
for i, sql in enumerate(
    [
        "SELECT @a := 1",
        "SELECT * FROM customers WHERE (@n := customer_id) > 0",
        "SELECT @@session.max_statement_time := 0",
        "SELECT @a",
        "SELECT @`a`",
        "SELECT @'a'",
        'SELECT @"a"',
        "SELECT customer_id FROM customers WHERE customer_id = @id",
        "SELECT * FROM customers ORDER BY @x",
        "SELECT (SELECT @a := MAX(customer_id) FROM customers)",
        "SELECT x := 1",
        "SELECT 1 FROM customers HAVING @n := 1",
    ]
):
    words = "@variables" if re.search(r"(?<!@)@(?!@)", sql) else "assigns a variable"
    _a("variables", f"{i:02d}", sql, words)

# -- locks -------------------------------------------------------------------------------
for i, sql in enumerate(
    [
        "SELECT * FROM customers FOR UPDATE",
        "SELECT * FROM customers WHERE customer_id = 1 FOR UPDATE NOWAIT",
        "SELECT * FROM customers FOR UPDATE SKIP LOCKED",
        "SELECT * FROM customers FOR UPDATE WAIT 1",
        "SELECT * FROM customers FOR SHARE",
        "SELECT * FROM customers LOCK IN SHARE MODE",
        "SELECT * FROM (SELECT * FROM customers FOR UPDATE) t",
        "WITH a AS (SELECT * FROM customers FOR UPDATE) SELECT * FROM a",
        "SELECT 1 UNION SELECT 2 FOR UPDATE",
        "select * from customers for update",
        "SELECT * FROM customers\nFOR\nUPDATE",
        "SELECT * FROM customers /* x */ FOR /* y */ UPDATE",
    ]
):
    _a("row-locks", f"{i:02d}", sql, "row locks")
for i, sql in enumerate(
    [
        f"SELECT GET_LOCK('{LOCK}', 0)",
        f"SELECT RELEASE_LOCK('{LOCK}')",
        "SELECT RELEASE_ALL_LOCKS()",
        f"SELECT IS_FREE_LOCK('{LOCK}')",
        f"SELECT IS_USED_LOCK('{LOCK}')",
        f"SELECT * FROM customers WHERE GET_LOCK('{LOCK}', 0)",
        f"SELECT get_lock('{LOCK}', 0)",
        f"SELECT GET_LOCK ('{LOCK}', 0)",
        f"SELECT `GET_LOCK`('{LOCK}', 0)",
        f"SHOW TABLES WHERE GET_LOCK('{LOCK}', 0)",
    ]
):
    _a("named-locks", f"{i:02d}", sql, "can sleep, lock")

# -- sleep / benchmark in every place an expression can stand ---------------------------------
_CONTEXTS = {
    "select-list": "SELECT {f}",
    "where": "SELECT * FROM customers WHERE {f} = 0",
    "order-by": "SELECT * FROM customers ORDER BY {f}",
    "group-by": "SELECT COUNT(*) FROM customers GROUP BY {f}",
    "having": "SELECT grade FROM customers GROUP BY grade HAVING {f} = 0",
    "join-on": "SELECT 1 FROM customers c JOIN payments p ON {f} = 0",
    "cte": "WITH a AS (SELECT {f} AS s) SELECT * FROM a",
    "union": "SELECT 1 UNION SELECT {f}",
    "subquery": "SELECT (SELECT {f})",
    "derived": "SELECT * FROM (SELECT {f} AS s) t",
    "exists": "SELECT EXISTS (SELECT {f})",
    "case": "SELECT CASE WHEN {f} = 0 THEN 1 END",
    "nested-call": "SELECT COALESCE(IF({f}, 1, 2), 3)",
    "values": "VALUES ({f})",
    "explain": "EXPLAIN SELECT {f}",
    "show-where": "SHOW TABLES WHERE {f} = 0",
    "limit-parens": "(SELECT {f}) LIMIT 1",
    "window": "SELECT ROW_NUMBER() OVER (ORDER BY {f}) FROM customers",
}
for name, call in {
    "sleep": "SLEEP(3)",
    "benchmark": "BENCHMARK(50000000, MD5('a'))",
}.items():
    for ctx, tpl in _CONTEXTS.items():
        _a("sleep-benchmark", f"{name}-{ctx}", tpl.format(f=call), "can sleep, lock")
for i, sql in enumerate(
    [
        "select sleep(3)",
        "SELECT Sleep(3)",
        "SELECT SLEEP /* gap */ (3)",
        "SELECT SLEEP\n(3)",
        "SELECT `sleep`(3)",
    ]
):
    _a("sleep-benchmark", f"spelling-{i:02d}", sql, "can sleep, lock")
# `--1` is no comment to MySQL; sqlglot < 30 reads one, and the gap audit then refuses the
# text as read differently: either way a ReadOnlyViolation
_a("sleep-benchmark", "spelling-minus-minus", "SELECT 1--1, SLEEP(3)", "")

# -- other dangerous built-ins (files, replication waits, sequences) ---------------------------
for i, sql in enumerate(
    [
        "SELECT LOAD_FILE('/etc/passwd')",
        "SELECT load_file('/etc/hostname') AS x",
        "SELECT HEX(LOAD_FILE('/etc/passwd'))",
        "SELECT MASTER_POS_WAIT('log', 4, 3)",
        "SELECT MASTER_GTID_WAIT('0-1-1', 3)",
        "SELECT WSREP_SYNC_WAIT_UPTO_GTID('0-1-1')",
        "SELECT SOURCE_POS_WAIT('log', 4, 3)",
        "SELECT NEXTVAL(hb_seq)",
        "SELECT SETVAL(hb_seq, 100)",
        "SELECT LASTVAL(hb_seq)",
        "SELECT SYS_EXEC('touch /tmp/x')",
    ]
):
    _a("file-wait-sequence", f"{i:02d}", sql, "can sleep, lock")
_a("file-wait-sequence", "next-value-for", "SELECT NEXT VALUE FOR hb_seq", "sequence")
_a("file-wait-sequence", "previous-value-for", "SELECT PREVIOUS VALUE FOR hb_seq", "sequence")
_a("file-wait-sequence", "last-insert-id-set", "SELECT LAST_INSERT_ID(42)", "sets session state")
# round 30: DEFAULT(col) evaluates the column's default expression, here NEXTVAL(hb_seq)
# (hb_defaults.b): with the guard alone it advanced the sequence
for i, sql in enumerate(
    [
        "SELECT DEFAULT(b) FROM hb_defaults",
        "SELECT a, default (b) FROM hb_defaults",
    ]
):
    _a("file-wait-sequence", f"default-of-a-column-{i}", sql, "DEFAULT(col)")
_a(
    "file-wait-sequence",
    "procedure-analyse",
    "SELECT * FROM customers PROCEDURE ANALYSE()",
    "PROCEDURE",
)

# -- stored functions (server code the guard cannot see) ------------------------------------
for ctx, tpl in _CONTEXTS.items():
    _a("stored-function", f"hb-write-{ctx}", tpl.format(f="hb_write()"), "not a built-in")
for i, call in enumerate(
    [
        "hb_rw()",
        "hb_notimeout()",
        "HB_WRITE()",
        "`hb_write`()",
        "hb_write ()",
        "hb_write/**/()",
        "{db}.hb_write()",
        "`{db}`.`hb_write`()",
        "{db} . hb_write()",
        "hb_write(1)",
        "date_trunc('day', NOW())",
        "array_agg(1)",
        "regexp_like('a', 'b')",
        "1abs(1)",  # MySQL: one identifier `1abs`, a stored function
        "hb$abs(1)",
        "_abs(1)",
        "any_value(1)",
        "st_transform(1, 2)",
        "to_json(1)",
        "nvl3(1)",
        "percentile_approx(1)",
    ]
):
    _a("stored-function", f"call-{i:02d}", f"SELECT {call}", "not a built-in")

# -- comment and quote tricks --------------------------------------------------------------
for i, (sql, words, cls) in enumerate(
    [
        ("SELECT 1 /* /* */ , SLEEP(3) # */", "can sleep, lock", ReadOnlyViolation),
        ("SELECT 1 /* x */ , SLEEP(3)", "can sleep, lock", ReadOnlyViolation),
        ("SELECT '/*' , SLEEP(3), '*/'", "can sleep, lock", ReadOnlyViolation),
        ("SELECT '--' , SLEEP(3)", "can sleep, lock", ReadOnlyViolation),
        ("SELECT '#' , SLEEP(3)", "can sleep, lock", ReadOnlyViolation),
        ('SELECT "\'" , SLEEP(3), "\'"', "can sleep, lock", ReadOnlyViolation),
        ("SELECT 'a\\'' , SLEEP(3), '\\''", "can sleep, lock", ReadOnlyViolation),
        ("SELECT 'a''' , SLEEP(3), ''''", "can sleep, lock", ReadOnlyViolation),
        ("SELECT `a``` FROM (SELECT 1 AS `a```) t WHERE SLEEP(3)", "can sleep", ReadOnlyViolation),
        ("SELECT /*+ SET_VAR(max_statement_time=0) */ SLEEP(3)", "", ReadOnlyViolation),
        ("SELECT /*+ SET_VAR(sql_mode='') */ 1", "SET_VAR", ReadOnlyViolation),
        ("SELECT /*+ MAX_EXECUTION_TIME(100000000) */ 1", "MAX_EXECUTION_TIME", ReadOnlyViolation),
        ("SELECT /*+ RESOURCE_GROUP(rg) */ 1", "RESOURCE_GROUP", ReadOnlyViolation),
        ("SELECT 1 /*+ SET_VAR(x=1) */", "SET_VAR", ReadOnlyViolation),
        ("SELECT 1 /* never closed", "tokenize", QueryError),
        ("SELECT 'never closed", "tokenize", QueryError),
        ("SELECT 1 -- x\n; DELETE FROM customers", "statements", ReadOnlyViolation),
        ("SELECT 1 # x\r; DELETE FROM customers", "", None),  # \r does not end a # comment
        ("SELECT 1 #\n INTO @a", "INTO", ReadOnlyViolation),
        ("SELECT 'INTO OUTFILE' INTO @a", "INTO", ReadOnlyViolation),
        ("SELECT `INTO` FROM (SELECT 1 AS `INTO`) t FOR UPDATE", "row locks", ReadOnlyViolation),
        ("SELECT N'x' , SLEEP(3)", "can sleep", ReadOnlyViolation),
        ("SELECT _utf8mb4'x' , SLEEP(3)", "can sleep", ReadOnlyViolation),
        ("SELECT x'41' , SLEEP(3)", "can sleep", ReadOnlyViolation),
        ("SELECT 0x41 , SLEEP(3)", "can sleep", ReadOnlyViolation),
    ]
):
    _a("comment-quote", f"{i:02d}", sql, words, error=cls, guard_error=cls)

# -- unicode tricks -----------------------------------------------------------------------
for i, (sql, words) in enumerate(
    [
        ("SELECT\u00a01, SLEEP(3)", "reads differently"),
        ("SELECT 1,\u3000SLEEP(3)", "reads differently"),
        ("SELECT 1\u2028, SLEEP(3)", "reads differently"),
        ("SELECT \u0405LEEP(3)", "not a built-in"),  # Cyrillic S
        ("SELECT SL\u200bEEP(3)", "not a built-in"),  # zero-width space
        ("SELECT \uff33\uff2c\uff25\uff25\uff30(3)", "not a built-in"),  # fullwidth
        ("SELECT hb_\u200bwrite()", "not a built-in"),
        ("SELECT 1\u037e DELETE FROM customers", "reads differently"),  # Greek question mark
        ("SELECT 1\uff1b DELETE FROM customers", "reads differently"),  # fullwidth semicolon
        ("SELECT \u202eSLEEP(3)", "not a built-in"),  # right-to-left override
        ("SELECT 1 \u2013\u2013 x\n, SLEEP(3)", "can sleep"),  # en dashes: no comment
        ("SELECT 1 \ufe63\ufe63 x\n, SLEEP(3)", "can sleep"),
    ]
):
    cls = QueryError if words == "Syntax error" else ReadOnlyViolation
    _a("unicode", f"{i:02d}", sql, words, error=cls, guard_error=cls)

# -- very deep nesting --------------------------------------------------------------------
_a(
    "deep-nesting",
    "parens-3000",
    "SELECT " + "(" * 3000 + "1" + ")" * 3000,
    "nested",
    error=QueryError,
    guard_error=QueryError,
)
_a(
    "deep-nesting",
    "parens-3000-sleep",
    "SELECT " + "(" * 3000 + "SLEEP(3)" + ")" * 3000,
    "can sleep",
)
_a("deep-nesting", "parens-3000-delete", "(" * 3000 + "DELETE FROM customers", "DELETE")
_a(
    "deep-nesting",
    "not-3000",
    "SELECT " + "NOT " * 3000 + "1",
    "nested too deeply",
    error=QueryError,
    guard_error=QueryError,
)
_a(
    "deep-nesting",
    "minus-3000",
    "SELECT " + "- " * 3000 + "1",
    "nested too deeply",
    error=QueryError,
    guard_error=QueryError,
)
_a(
    "deep-nesting",
    "calls-100",
    "SELECT " + "ABS(" * 100 + "1" + ")" * 100,
    "nested",
    error=QueryError,
    guard_error=QueryError,
)

# -- binds inside literals, hostile values ------------------------------------------------------
_LOCK_HEX = "0x" + LOCK.encode().hex()
# values without quotes: PyMySQL's quotes around the value close and reopen the literal's own
# quotes, so the value lands outside any string (the issue's `':a/tmp/x-:b'` shape)
_OUTSIDE = {
    "outfile": (f"':a{FILE}-b1:b'", " OR 1=1 INTO OUTFILE", "#"),
    "dumpfile": (f"':a{FILE}-b2:b'", " OR 1=1 LIMIT 1 INTO DUMPFILE", "#"),
    "sleep": ("':a'", " OR SLEEP(3) OR ", None),
    "benchmark": ("':a'", " OR BENCHMARK(50000000, MD5(1)) OR ", None),
    "get-lock": ("':a'", f" OR GET_LOCK({_LOCK_HEX}, 0) OR ", None),
    "assign": ("':a'", " OR (@v := 1) OR ", None),
    "user-var": ("':a'", " OR @v OR ", None),
    "load-file": ("':a'", " UNION SELECT LOAD_FILE(0x2f6574632f706173737764) #", None),
    "stored": ("':a'", " OR hb_write() OR ", None),
    "stored-rw": ("':a'", " OR hb_rw() OR ", None),
    "stacked": ("':a'", "; DELETE FROM customers; #", None),
    "exec-comment": ("':a'", " /*! OR SLEEP(3) */ OR ", None),
    "for-update": ("':a'", " FOR UPDATE #", None),
    "into-var": ("':a'", " INTO @x #", None),
}
for name, (literal, a, b) in _OUTSIDE.items():
    params = {"a": a} if b is None else {"a": a, "b": b}
    _a(
        "bind-in-literal",
        f"{name}-inside",
        f"SELECT customer_id FROM customers WHERE name = {literal}",
        params=params,
        error=BindError,  # `:a` inside quotes is no bind: the parameter is unused
    )
    # a real bind with the same hostile value: one escaped literal, runs harmlessly
    _a(
        "bind-in-literal",
        f"{name}-real-bind",
        "SELECT customer_id FROM customers WHERE name = :a",
        params={"a": a},
        error=None,
        guard_error=None,
    )
for i, value in enumerate(
    [
        "\\' INTO OUTFILE '/tmp/x' #",
        "\\\\' , SLEEP(3) #",
        "' /* ",
        "*/ , SLEEP(3) /*",
        ":b INTO @x",
        "{{ a }}",
        "-- \n, SLEEP(3)",
        "# \n, SLEEP(3)",
        "\x1a' , SLEEP(3) #",
        "\u00a5' , SLEEP(3) #",  # yen sign: a backslash in some client charsets
    ]
):
    _a(
        "bind-in-literal",
        f"escape-{i:02d}",
        "SELECT :a AS v",
        params={"a": value},
        error=None,
        guard_error=None,
    )


# =========================== legitimate reads ===========================================
for i, sql in enumerate(
    [
        "SELECT * FROM customers ORDER BY customer_id LIMIT 50",
        "SELECT customer_id, name FROM customers WHERE grade = 'VIP' ORDER BY customer_id",
        "SELECT customer_id FROM customers ORDER BY customer_id LIMIT 10 OFFSET 20",
        "SELECT customer_id FROM customers ORDER BY customer_id LIMIT 20, 10",
        "SELECT c.name, s.plan FROM customers c JOIN subscriptions s ON s.customer_id = c.customer_id ORDER BY s.subscription_id LIMIT 30",
        "SELECT c.customer_id, p.amount FROM customers c LEFT JOIN payments p ON p.customer_id = c.customer_id ORDER BY c.customer_id, p.payment_id LIMIT 40",
        "SELECT grade, COUNT(*) FROM customers GROUP BY grade ORDER BY grade",
        "SELECT grade, COUNT(*) n FROM customers GROUP BY grade HAVING n > 10 ORDER BY grade",
        "SELECT grade, COUNT(*) FROM customers GROUP BY grade WITH ROLLUP",
        "SELECT DISTINCT grade FROM customers ORDER BY grade",
        "SELECT DISTINCTROW status FROM customers ORDER BY status",
        "SELECT SQL_NO_CACHE COUNT(*) FROM customers",
        "SELECT HIGH_PRIORITY COUNT(*) FROM payments",
        "SELECT STRAIGHT_JOIN COUNT(*) FROM customers c JOIN payments p ON p.customer_id = c.customer_id",
        "SELECT SQL_BUFFER_RESULT MAX(customer_id) FROM customers",
        "SELECT * FROM customers USE INDEX (PRIMARY) WHERE customer_id < 5 ORDER BY customer_id",
        "SELECT * FROM customers FORCE INDEX (PRIMARY) WHERE customer_id BETWEEN 3 AND 9 ORDER BY customer_id",
        "SELECT * FROM customers IGNORE INDEX FOR ORDER BY (PRIMARY) ORDER BY customer_id LIMIT 3",
        "SELECT 1 FROM dual",
        "SELECT 1",
        "(SELECT customer_id FROM customers ORDER BY customer_id LIMIT 3)",
        "(SELECT 1) UNION (SELECT 2) ORDER BY 1",
        "SELECT 1 UNION ALL SELECT 1 UNION SELECT 2",
        "SELECT customer_id FROM customers WHERE customer_id < 5 INTERSECT SELECT customer_id FROM payments",
        "SELECT customer_id FROM customers WHERE customer_id < 5 EXCEPT SELECT customer_id FROM payments",
        "SELECT * FROM customers LIMIT 5 ROWS EXAMINED 1000",
        "SELECT customer_id FROM customers ORDER BY customer_id DESC LIMIT 5",
        "SELECT * FROM payments WHERE paid_at BETWEEN '2025-01-01' AND '2026-12-31' ORDER BY payment_id LIMIT 25",
        "SELECT * FROM customers WHERE name LIKE '김%' ORDER BY customer_id LIMIT 10",
        "SELECT * FROM customers WHERE name NOT LIKE '%a%' ESCAPE '!' ORDER BY customer_id LIMIT 10",
        "SELECT * FROM customers WHERE email REGEXP '^[a-z]' ORDER BY customer_id LIMIT 10",
        "SELECT * FROM customers WHERE email RLIKE 'example' ORDER BY customer_id LIMIT 10",
        "SELECT * FROM customers WHERE phone IS NULL ORDER BY customer_id LIMIT 5",
        "SELECT * FROM customers WHERE customer_id IN (1, 2, 3) ORDER BY customer_id",
        "SELECT * FROM customers WHERE customer_id NOT IN (SELECT customer_id FROM payments) ORDER BY customer_id LIMIT 5",
        "SELECT * FROM customers c WHERE EXISTS (SELECT 1 FROM payments p WHERE p.customer_id = c.customer_id) ORDER BY customer_id LIMIT 5",
        "SELECT * FROM customers WHERE customer_id = ANY (SELECT customer_id FROM payments) ORDER BY customer_id LIMIT 5",
        "SELECT * FROM customers WHERE customer_id > ALL (SELECT 5) ORDER BY customer_id LIMIT 5",
        "SELECT * FROM customers WHERE customer_id = SOME (SELECT 7)",
        "SELECT t.g, t.n FROM (SELECT grade g, COUNT(*) n FROM customers GROUP BY grade) t ORDER BY t.g",
        "SELECT * FROM customers WHERE (grade, status) = ('VIP', 'active') ORDER BY customer_id LIMIT 5",
        "SELECT ROW(1, 2) = ROW(1, 2)",
        "SELECT customer_id FROM customers WHERE customer_id < 5 ORDER BY customer_id FOR SYSTEM_TIME ALL",
    ][:-1]
):
    _r("select", f"{i:02d}", sql)

for i, sql in enumerate(
    [
        "WITH vip AS (SELECT * FROM customers WHERE grade = 'VIP') SELECT COUNT(*) FROM vip",
        "WITH a AS (SELECT 1 AS x), b AS (SELECT x + 1 AS y FROM a) SELECT * FROM b",
        "WITH RECURSIVE n AS (SELECT 1 AS i UNION ALL SELECT i + 1 FROM n WHERE i < 5) SELECT * FROM n",
        "WITH x (a) AS (SELECT 1) SELECT * FROM x",
        "WITH x (a, b) AS (SELECT 1, 2), y (c) AS (SELECT 3) SELECT * FROM x, y",
        "WITH g AS (SELECT grade, COUNT(*) n FROM customers GROUP BY grade) SELECT * FROM g ORDER BY grade",
        "SELECT customer_id, ROW_NUMBER() OVER (PARTITION BY grade ORDER BY customer_id) rn FROM customers ORDER BY customer_id LIMIT 20",
        "SELECT payment_id, SUM(amount) OVER (ORDER BY payment_id) FROM payments ORDER BY payment_id LIMIT 20",
        "SELECT payment_id, LAG(amount) OVER (ORDER BY payment_id), LEAD(amount, 2) OVER (ORDER BY payment_id) FROM payments ORDER BY payment_id LIMIT 20",
        "SELECT grade, RANK() OVER (ORDER BY grade), DENSE_RANK() OVER (ORDER BY grade) FROM customers ORDER BY customer_id LIMIT 20",
        "SELECT customer_id, NTILE(4) OVER (ORDER BY customer_id) FROM customers ORDER BY customer_id LIMIT 20",
        "SELECT customer_id, FIRST_VALUE(customer_id) OVER w FROM customers WINDOW w AS (PARTITION BY grade ORDER BY customer_id) ORDER BY customer_id LIMIT 20",
        "SELECT amount, CUME_DIST() OVER (ORDER BY amount), PERCENT_RANK() OVER (ORDER BY amount) FROM payments ORDER BY payment_id LIMIT 10",
        "SELECT MEDIAN(amount) OVER () FROM payments LIMIT 1",
        "SELECT COUNT(*) OVER (ORDER BY customer_id ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) FROM customers ORDER BY customer_id LIMIT 10",
        "SELECT * FROM JSON_TABLE('[{\"a\":1},{\"a\":2}]', '$[*]' COLUMNS (a INT PATH '$.a')) AS jt",
        "SELECT * FROM JSON_TABLE('[1,2]', '$[*]' COLUMNS (i FOR ORDINALITY, v INT PATH '$')) jt",
    ]
):
    _r("cte-window", f"{i:02d}", sql)

_FUNCS = [
    "UPPER('abc')",
    "LOWER('ABC')",
    "LENGTH('한글')",
    "CHAR_LENGTH('한글')",
    "CONCAT('a', 'b', 1)",
    "CONCAT_WS('-', 'a', 'b')",
    "SUBSTRING('abcdef', 2, 3)",
    "SUBSTRING('abcdef' FROM 2 FOR 3)",
    "SUBSTR('abc', 2)",
    "MID('abcdef', 2, 2)",
    "LEFT('abc', 2)",
    "RIGHT('abc', 2)",
    "TRIM('  a ')",
    "TRIM(LEADING 'x' FROM 'xxa')",
    "LTRIM(' a')",
    "RTRIM('a ')",
    "LPAD('7', 3, '0')",
    "RPAD('7', 3, '0')",
    "REPLACE('aXb', 'X', '-')",
    "REPEAT('ab', 3)",
    "REVERSE('abc')",
    "INSERT('abcdef', 2, 2, 'XY')",
    "INSTR('abc', 'b')",
    "LOCATE('b', 'abc')",
    "POSITION('b' IN 'abc')",
    "FIELD('b', 'a', 'b')",
    "FIND_IN_SET('b', 'a,b,c')",
    "ELT(2, 'a', 'b')",
    "FORMAT(1234567.891, 2)",
    "HEX('abc')",
    "UNHEX('616263')",
    "MD5('a')",
    "SHA1('a')",
    "SHA2('a', 256)",
    "CRC32('a')",
    "TO_BASE64('a')",
    "FROM_BASE64('YQ==')",
    "QUOTE('a''b')",
    "SOUNDEX('Robert')",
    "SPACE(3)",
    "STRCMP('a', 'b')",
    "ASCII('A')",
    "ORD('A')",
    "CHAR(65)",
    "CHAR(0xC3A9 USING utf8mb4)",
    "CONVERT('abc' USING utf8mb4)",
    "CAST(1 AS CHAR)",
    "CAST('1.50' AS DECIMAL(10, 2))",
    "CAST('2026-01-02' AS DATE)",
    "CAST(1 AS SIGNED)",
    "CAST(-1 AS UNSIGNED)",
    "CONVERT('12', SIGNED)",
    "BINARY 'a' = 'A'",
    "'a' COLLATE utf8mb4_bin",
    "ABS(-3)",
    "CEIL(1.2)",
    "FLOOR(1.8)",
    "ROUND(2.567, 2)",
    "TRUNCATE(2.567, 1)",
    "MOD(10, 3)",
    "10 DIV 3",
    "10 % 3",
    "POW(2, 10)",
    "SQRT(16)",
    "EXP(0)",
    "LN(1)",
    "LOG(2, 8)",
    "LOG10(100)",
    "PI()",
    "SIGN(-2)",
    "GREATEST(1, 5, 3)",
    "LEAST(1, 5, 3)",
    "CONV(255, 10, 16)",
    "BIN(5)",
    "OCT(8)",
    "BIT_COUNT(7)",
    "7 & 3",
    "7 | 8",
    "1 << 3",
    "DEGREES(PI())",
    "RADIANS(180)",
    "DATE('2026-01-02 03:04:05')",
    "TIME('2026-01-02 03:04:05')",
    "YEAR('2026-01-02')",
    "MONTH('2026-01-02')",
    "DAY('2026-01-02')",
    "DAYOFWEEK('2026-01-02')",
    "DAYNAME('2026-01-02')",
    "MONTHNAME('2026-01-02')",
    "WEEK('2026-01-02')",
    "QUARTER('2026-05-02')",
    "DATE_ADD('2026-01-31', INTERVAL 1 MONTH)",
    "DATE_SUB('2026-01-31', INTERVAL 2 DAY)",
    "'2026-01-31' + INTERVAL 1 DAY",
    "DATEDIFF('2026-02-01', '2026-01-01')",
    "TIMESTAMPDIFF(HOUR, '2026-01-01', '2026-01-02')",
    "TIMESTAMPADD(MINUTE, 5, '2026-01-01')",
    "DATE_FORMAT('2026-01-02', '%Y-%m')",
    "STR_TO_DATE('02/01/2026', '%d/%m/%Y')",
    "LAST_DAY('2026-02-10')",
    "MAKEDATE(2026, 40)",
    "FROM_DAYS(739000)",
    "TO_DAYS('2026-01-01')",
    "EXTRACT(YEAR_MONTH FROM '2026-03-04')",
    "SEC_TO_TIME(3661)",
    "TIME_TO_SEC('01:01:01')",
    "UNIX_TIMESTAMP('2026-01-01 00:00:00')",
    "FROM_UNIXTIME(0, '%Y')",
    "CONVERT_TZ('2026-01-01 00:00:00', '+00:00', '+09:00')",
    "INTERVAL(5, 1, 3, 7)",
    "IF(1 > 0, 'y', 'n')",
    "IFNULL(NULL, 2)",
    "NULLIF(1, 1)",
    "COALESCE(NULL, NULL, 3)",
    "CASE 2 WHEN 1 THEN 'a' WHEN 2 THEN 'b' END",
    "NVL(NULL, 1)",
    "ISNULL(NULL)",
    "JSON_EXTRACT('{\"a\": 1}', '$.a')",
    "JSON_UNQUOTE(JSON_EXTRACT('{\"a\": \"x\"}', '$.a'))",
    "JSON_OBJECT('a', 1)",
    "JSON_ARRAY(1, 2)",
    "JSON_VALID('{}')",
    "JSON_KEYS('{\"a\":1}')",
    "JSON_LENGTH('[1,2]')",
    "JSON_VALUE('{\"a\":2}', '$.a')",
    "JSON_CONTAINS('[1,2]', '1')",
    "JSON_SET('{}', '$.a', 1)",
    "JSON_QUERY('{\"a\":[1]}', '$.a')",
    "JSON_TYPE('[]')",
    "EXTRACTVALUE('<a><b>x</b></a>', '/a/b')",
    "UPDATEXML('<a><b>x</b></a>', '/a/b', '<b>y</b>')",
    "REGEXP_REPLACE('abc', 'b', 'x')",
    "REGEXP_SUBSTR('abc123', '[0-9]+')",
    "REGEXP_INSTR('abc', 'c')",
    "'a' REGEXP 'b'",
    "'abc' LIKE 'a%'",
    "1 BETWEEN 0 AND 2",
    "1 IN (1, 2)",
    "NOT 0",
    "1 XOR 1",
    "1 <=> NULL",
    "INET_ATON('10.0.0.1')",
    "INET_NTOA(167772161)",
    "IS_IPV4('10.0.0.1')",
    "LAST_INSERT_ID()",
    "DATABASE() IS NOT NULL",
    "CHARSET('a')",
    "COLLATION(_latin1'a')",
    "COERCIBILITY('a')",
    "BIT_LENGTH('a')",
    "NATURAL_SORT_KEY('a10')",
    "SFORMAT('{} {}', 'a', 'b')",
    "WEIGHT_STRING('a') IS NOT NULL",
    "COMPRESS('a') IS NOT NULL",
    "UNCOMPRESS(COMPRESS('abc'))",
    "AES_DECRYPT(AES_ENCRYPT('a', 'k'), 'k')",
    "COLUMN_JSON(COLUMN_CREATE('a', 1))",
    "ST_ASTEXT(POINT(1, 2))",
    "ST_X(POINT(1, 2))",
    "VERSION() IS NOT NULL",
    "CURRENT_USER() IS NOT NULL",
    "FOUND_ROWS() >= 0",
]
for i, f in enumerate(_FUNCS):
    _r("builtin-function", f"{i:03d}", f"SELECT {f} AS v")
for i, sql in enumerate(
    [
        "SELECT grade, GROUP_CONCAT(customer_id ORDER BY customer_id SEPARATOR ',') FROM customers WHERE customer_id < 20 GROUP BY grade ORDER BY grade",
        "SELECT AVG(amount), MIN(amount), MAX(amount), SUM(amount) FROM payments",
        "SELECT STD(amount) IS NOT NULL, VARIANCE(amount) IS NOT NULL FROM payments",
        "SELECT BIT_OR(customer_id), BIT_AND(customer_id), BIT_XOR(customer_id) FROM customers",
        "SELECT COUNT(DISTINCT grade) FROM customers",
        "SELECT JSON_ARRAYAGG(customer_id) FROM customers WHERE customer_id < 5",
        "SELECT JSON_OBJECTAGG(customer_id, grade) FROM customers WHERE customer_id < 5",
        "SELECT DATE_FORMAT(created_at, '%Y-%m') m, COUNT(*) FROM customers GROUP BY m ORDER BY m",
        "SELECT YEAR(paid_at) y, SUM(amount) FROM payments GROUP BY y ORDER BY y",
    ]
):
    _r("aggregate", f"{i:02d}", sql)

# literals that hold what a bind, a comment or a statement looks like
for i, lit in enumerate(
    [
        "'12:30'",
        "' :c'",
        "'{\"a\" :1}'",
        "':name'",
        "'::x'",
        "'{{ a }}'",
        "'{% if %}'",
        "'a -- b'",
        "'a # b'",
        "'/* c */'",
        "'/*! x */'",
        "'a;b'",
        "'DROP TABLE customers; DELETE'",
        "'SLEEP(5)'",
        "'INTO OUTFILE /tmp/x'",
        "'FOR UPDATE'",
        "'@a := 1'",
        "'it''s'",
        "'it\\'s'",
        '"double"',
        '"it\'s"',
        "'back\\\\slash'",
        "'tab\\tnew\\nline'",
        "'%s %(x)s'",
        "'?'",
        "'홍길동'",
        "N'한글'",
        "_utf8mb4'é'",
        "x'414243'",
        "0x414243",
        "b'1010'",
        "'\\0'",
        "'${x}'",
        "'$$'",
    ]
):
    _r("tricky-literal", f"{i:02d}", f"SELECT {lit} AS v")
_r(
    "tricky-literal",
    "keyword-identifier",
    "SELECT `select`, `into`, `lock` FROM (SELECT 1 AS `select`, 2 AS `into`, 3 AS `lock`) t",
)
_r(
    "tricky-literal",
    "korean-identifiers",
    "SELECT `고객명` FROM (SELECT name AS `고객명` FROM customers ORDER BY customer_id LIMIT 3) t",
)
_r("tricky-literal", "comments", "SELECT /* a */ 1 -- b\n, 2 # c\n")
_r("tricky-literal", "hint", "SELECT /*+ NO_INDEX(customers) */ COUNT(*) FROM customers")
_r(
    "tricky-literal",
    "system-var",
    "SELECT @@version_comment IS NOT NULL, @@session.autocommit >= 0",
)
_r("tricky-literal", "trailing-semicolon", "SELECT 1;")
_r("tricky-literal", "minus-minus", "SELECT 1--1")

# binds (real ones) with values that look like SQL
for i, value in enumerate(
    [
        "VIP",
        "' OR 1=1 #",
        "'; DELETE FROM customers; --",
        "/*! SLEEP(3) */",
        ":grade",
        "{{ x }}",
        "\\",
        "홍길동",
        "a%b_c",
    ]
):
    _r(
        "bind",
        f"{i:02d}",
        "SELECT COUNT(*) FROM customers WHERE grade = :g",
        params={"g": value},
        direct="SELECT COUNT(*) FROM customers WHERE grade = %(g)s",
        args={"g": value},
    )
_r(
    "bind",
    "list",
    "SELECT customer_id FROM customers WHERE customer_id IN :ids ORDER BY customer_id",
    params={"ids": [1, 2, 3]},
    direct="SELECT customer_id FROM customers WHERE customer_id IN (1, 2, 3) ORDER BY customer_id",
)
_r(
    "bind",
    "limit",
    "SELECT customer_id FROM customers ORDER BY customer_id LIMIT :n",
    params={"n": 4},
    direct="SELECT customer_id FROM customers ORDER BY customer_id LIMIT %(n)s",
    args={"n": 4},
)

for i, sql in enumerate(
    [
        "SHOW TABLES",
        "SHOW FULL TABLES",
        "SHOW TABLES LIKE 'cust%'",
        "SHOW COLUMNS FROM customers",
        "SHOW FULL COLUMNS FROM customers",
        "SHOW INDEX FROM customers",
        "SHOW KEYS FROM customers",
        "SHOW CREATE TABLE customers",
        "SHOW GRANTS",
        "SHOW GRANTS FOR CURRENT_USER()",
        "SHOW GRANTS FOR CURRENT_USER",
        "SHOW VARIABLES LIKE 'version'",
        "SHOW CHARACTER SET LIKE 'utf8mb4'",
        "SHOW COLLATION LIKE 'utf8mb4_bin'",
        "SHOW ENGINES",
        "SHOW DATABASES LIKE 'mysql'",
        "SHOW TABLE STATUS LIKE 'nothing_%'",
        "SHOW CREATE FUNCTION hb_write",
        "DESCRIBE customers",
        "DESC customers",
        "DESCRIBE customers name",
        "DESCRIBE customers 'n%'",
        "EXPLAIN customers",
        "EXPLAIN SELECT * FROM customers WHERE customer_id = 1",
        "EXPLAIN PARTITIONS SELECT * FROM customers WHERE customer_id = 1",
        "EXPLAIN EXTENDED SELECT * FROM customers WHERE customer_id = 1",
        "EXPLAIN FORMAT=JSON SELECT * FROM customers WHERE customer_id = 1",
        "VALUES (1, 'a')",
        "VALUES (1, 'a'), (2, 'b')",
    ]
):
    _r("show-describe", f"{i:02d}", sql)
