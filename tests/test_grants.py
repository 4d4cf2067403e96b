"""Grant lines as data (pure): parsing, findings, role expansion, one rule per test.

tests/test_readonly_grants.py checks whole `SHOW GRANTS` lines against their REVOKEs and real
accounts on MariaDB; this file pins the parts, so `make mutation` sees a test fail for every
change to hybridwb/source/grants.py that changes a finding, a REVOKE or what is parsed.
"""

from __future__ import annotations

import dataclasses

import pytest

from hybridwb.source import grants
from hybridwb.source.grants import Finding, Grant, RoleGrant

U = "`u`@`%`"


# -- parsing one line ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        (
            "GRANT SELECT ON `shop`.* TO `u`@`%`",
            Grant(("SELECT",), "`shop`.*", "", U, False),
        ),
        (
            "grant select, show view on shop.* to 'u'@'localhost' with grant option",
            Grant(("select", "show view"), "shop.*", "", "'u'@'localhost'", True),
        ),
        (
            "GRANT SELECT,\n  UPDATE (`a`, `b`)\nON `shop`.`t`\nTO `u`@`%`",
            Grant(("SELECT", "UPDATE (`a`, `b`)"), "`shop`.`t`", "", U, False),
        ),
        (
            "GRANT SELECT (`a,b`, `c)`), INSERT ON `s`.`t` TO `u`@`%`",
            Grant(("SELECT (`a,b`, `c)`)", "INSERT"), "`s`.`t`", "", U, False),
        ),
        (
            "GRANT SELECT ('x,y'), INSERT (\"p,q\") ON `s`.`t` TO `u`@`%`",
            Grant(("SELECT ('x,y')", 'INSERT ("p,q")'), "`s`.`t`", "", U, False),
        ),
        (
            "GRANT UPDATE ((`a`), `b`), DELETE ON `s`.`t` TO `u`@`%`",
            Grant(("UPDATE ((`a`), `b`)", "DELETE"), "`s`.`t`", "", U, False),
        ),
        (
            "GRANT SELECT, , INSERT ON `s`.* TO `u`@`%`",
            Grant(("SELECT", "INSERT"), "`s`.*", "", U, False),
        ),
        (
            "GRANT EXECUTE ON function `shop`.`f` TO `u`@`%`",
            Grant(("EXECUTE",), "`shop`.`f`", "FUNCTION", U, False),
        ),
        (
            "GRANT USAGE ON *.* TO `u`@`%` IDENTIFIED BY PASSWORD '*12FB720E00C0031647E1'",
            Grant(("USAGE",), "*.*", "", U, False),
        ),
        (
            "GRANT USAGE ON *.* TO `u`@`%` IDENTIFIED VIA ed25519 USING 'abc' WITH GRANT OPTION",
            Grant(("USAGE",), "*.*", "", U, True),
        ),
        (
            "GRANT PROXY ON ''@'%' TO 'u'@'%'",
            Grant(("PROXY",), "''@'%'", "", "'u'@'%'", False),
        ),
        ("GRANT SELECT ON `s`.* TO `r`", Grant(("SELECT",), "`s`.*", "", "`r`", False)),
        ("GRANT SELECT ON `s`.* TO u@h", Grant(("SELECT",), "`s`.*", "", "u@h", False)),
        (
            "GRANT USAGE ON *.* TO u@h IDENTIFIED BY PASSWORD '*AB'",
            Grant(("USAGE",), "*.*", "", "u@h", False),
        ),
        (
            "GRANT INDEX, SELECT ON `s`.* TO `u`@`%`",
            Grant(("INDEX", "SELECT"), "`s`.*", "", U, False),
        ),
        ("GRANT `r1`, `r2` TO `u`@`%`", RoleGrant(("`r1`", "`r2`"), U)),
        ("grant `r1` to `u`@`%` with admin option", RoleGrant(("`r1`",), U)),
        ("GRANT `r on x` TO `u`@`%`", RoleGrant(("`r on x`",), U)),
        ("GRANT `r`\nTO `u`@`%`", RoleGrant(("`r`",), U)),
        ("  GRANT `r` TO `u`@`%`  ", RoleGrant(("`r`",), U)),
        ("SET DEFAULT ROLE `r1` FOR `u`@`%`", None),
        ("GRANTED `r` TO `u`", None),
        ("GRANT", None),
    ],
    ids=[
        "select-schema",
        "lower-case-and-grant-option",
        "multi-line",
        "comma-inside-backticks",
        "comma-inside-quotes",
        "nested-parentheses",
        "empty-item",
        "function",
        "password-hash-dropped",
        "auth-plugin-dropped-option-kept",
        "proxy",
        "to-a-role",
        "unquoted-grantee",
        "unquoted-grantee-password-dropped",
        "privilege-with-an-x",
        "two-roles",
        "lower-case-admin-option",
        "role-name-with-on",
        "role-multi-line",
        "padded",
        "default-role",
        "not-a-grant",
        "grant-alone",
    ],
)
def test_a_show_grants_line_parses_to(line: str, parsed: object) -> None:
    assert grants.parse(line) == parsed


def test_a_grantee_with_trailing_text_is_cut_to_the_account() -> None:
    parsed = grants.parse("GRANT SELECT ON `s`.* TO `u`@`%` REQUIRE SSL")
    assert isinstance(parsed, Grant) and parsed.grantee == U


# -- one grant's findings -----------------------------------------------------------------------
def _found(line: str, allowed: tuple[str, ...] = ()) -> list[tuple[str, str, str]]:
    parsed = grants.parse(line)
    assert isinstance(parsed, Grant)
    return [(f.privilege, f.on, f.revoke) for f in grants.unsafe(parsed, allowed)]


@pytest.mark.parametrize(
    ("line", "found"),
    [
        ("GRANT SELECT, SHOW VIEW ON `s`.* TO `u`@`%`", []),
        ("GRANT SHOW   VIEW ON `s`.* TO `u`@`%`", []),
        ("GRANT USAGE ON `mysql`.* TO `u`@`%`", []),
        (
            "GRANT USAGE, DELETE ON `s`.* TO `u`@`%`",
            [("DELETE", "`s`.*", "REVOKE DELETE ON `s`.* FROM `u`@`%`")],
        ),
        ("GRANT SELECT ON TABLE `s`.`t` TO `u`@`%`", []),
        (
            "GRANT SELECT ON `MySQL`.`user` TO `u`@`%`",
            [("SELECT", "`MySQL`.`user`", "REVOKE SELECT ON `MySQL`.`user` FROM `u`@`%`")],
        ),
        (
            "GRANT SHOW VIEW ON *.* TO `u`@`%`",
            [("SHOW VIEW", "*.*", "REVOKE SHOW VIEW ON *.* FROM `u`@`%`")],
        ),
        (
            "GRANT SELECT ON PROCEDURE `s`.`p` TO `u`@`%`",
            [("SELECT", "PROCEDURE `s`.`p`", "REVOKE SELECT ON PROCEDURE `s`.`p` FROM `u`@`%`")],
        ),
        (
            "GRANT ALL ON `s`.* TO `u`@`%`",
            [("ALL", "`s`.*", "REVOKE ALL ON `s`.* FROM `u`@`%`")],
        ),
        (
            "GRANT PROXY ON 'a'@'%' TO `u`@`%` WITH GRANT OPTION",
            [
                ("PROXY", "'a'@'%'", "REVOKE PROXY ON 'a'@'%' FROM `u`@`%`"),
                ("GRANT OPTION", "'a'@'%'", "REVOKE GRANT OPTION ON 'a'@'%' FROM `u`@`%`"),
            ],
        ),
        (
            "GRANT EXECUTE ON FUNCTION `s`.`f` TO `u`@`%`",
            [("EXECUTE", "FUNCTION `s`.`f`", "REVOKE EXECUTE ON FUNCTION `s`.`f` FROM `u`@`%`")],
        ),
    ],
    ids=[
        "select-show-view",
        "spaced-show-view",
        "usage-anywhere",
        "usage-then-delete",
        "select-on-table-kind",
        "mysql-schema-any-case",
        "global-show-view",
        "select-on-a-procedure",
        "all",
        "proxy-and-grant-option",
        "execute-not-allowlisted",
    ],
)
def test_unsafe_privileges_of_one_grant(line: str, found: list[tuple[str, str, str]]) -> None:
    assert _found(line) == found


def test_only_execute_is_forgiven_on_an_allowlisted_function() -> None:
    line = "GRANT EXECUTE, ALTER ROUTINE ON FUNCTION `s`.`f` TO `u`@`%`"
    assert _found(line, ("s.f",)) == [
        (
            "ALTER ROUTINE",
            "FUNCTION `s`.`f`",
            "REVOKE ALTER ROUTINE ON FUNCTION `s`.`f` FROM `u`@`%`",
        )
    ]


@pytest.mark.parametrize(
    ("line", "allowed"),
    [
        ("GRANT EXECUTE ON FUNCTION `s`.`f` TO `u`@`%`", ("f",)),
        ("GRANT EXECUTE ON FUNCTION `s`.`f` TO `u`@`%`", ("S.F",)),
        ("GRANT EXECUTE ON FUNCTION `s`.`F` TO `u`@`%`", ("s.f",)),
        ("GRANT EXECUTE ON FUNCTION `s`.`a.b` TO `u`@`%`", ("s.a.b",)),
        ("GRANT EXECUTE ON FUNCTION `my``s`.`f` TO `u`@`%`", ("my`s.f",)),
        ("GRANT EXECUTE ON FUNCTION s.f TO `u`@`%`", ("s.f",)),
    ],
    ids=["name", "qualified-upper", "name-upper", "dot-in-name", "backtick-in-schema", "bare"],
)
def test_execute_on_an_allowlisted_function_is_safe(line: str, allowed: tuple[str, ...]) -> None:
    assert _found(line, allowed) == []


@pytest.mark.parametrize(
    ("line", "allowed"),
    [
        ("GRANT EXECUTE ON PROCEDURE `s`.`f` TO `u`@`%`", ("f",)),
        ("GRANT EXECUTE ON `s`.* TO `u`@`%`", ("s.*",)),
        ("GRANT EXECUTE ON FUNCTION `s`.`f` TO `u`@`%`", ("t.f",)),
        ("GRANT EXECUTE ON FUNCTION `s`.`f` TO `u`@`%`", ("s",)),
        ("GRANT EXECUTE ON FUNCTION `s`.`f` TO `u`@`%`", ("`s`.`f`",)),
        ("GRANT EXECUTE ON FUNCTION `s`.`f` TO `u`@`%`", ("s.f.",)),
    ],
    ids=["procedure", "schema", "other-schema", "schema-name", "quoted", "trailing-dot"],
)
def test_execute_elsewhere_is_a_finding(line: str, allowed: tuple[str, ...]) -> None:
    assert [p for p, _, _ in _found(line, allowed)] == ["EXECUTE"]


def test_a_finding_says_what_and_through_which_role() -> None:
    plain = Finding("DELETE", "`s`.*", U, "REVOKE DELETE ON `s`.* FROM `u`@`%`")
    assert plain.via_role is None
    assert plain.describe() == "DELETE"
    assert dataclasses.replace(plain, via_role="`r`").describe() == "DELETE through role `r`"
    assert dataclasses.replace(plain, via_role="").describe() == "DELETE"


def test_findings_are_values_that_can_be_deduplicated() -> None:
    a = Finding("DELETE", "`s`.*", U, "REVOKE DELETE ON `s`.* FROM `u`@`%`")
    b = Finding("DELETE", "`s`.*", U, "REVOKE DELETE ON `s`.* FROM `u`@`%`")
    assert len({a, b}) == 1
    for value in (a, grants.parse("GRANT `r` TO `u`"), grants.parse("GRANT SELECT ON s.* TO u")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            value.grantee = "x"  # type: ignore[union-attr,misc]


@pytest.mark.parametrize(
    ("part", "name"),
    [("`a`", "a"), ("`a``b`", "a`b"), ("a", "a"), ("`a", "`a"), ("a`", "a`"), ("*", "*")],
    ids=["quoted", "doubled-backtick", "bare", "open-only", "close-only", "star"],
)
def test_a_name_is_unquoted_only_when_quoted_on_both_sides(part: str, name: str) -> None:
    assert grants._unquote(part) == name


# -- the account and its roles ------------------------------------------------------------------
def test_review_reports_each_finding_once_with_its_role() -> None:
    found = grants.review(
        {
            None: ["GRANT DELETE ON `s`.* TO `u`@`%`", "GRANT DELETE ON `s`.* TO `u`@`%`"],
            "`r`": ["GRANT DELETE ON `s`.* TO `r`", "SET DEFAULT ROLE `r` FOR `u`@`%`"],
        }
    )
    assert [(f.revoke, f.via_role) for f in found] == [
        ("REVOKE DELETE ON `s`.* FROM `u`@`%`", None),
        ("REVOKE DELETE ON `s`.* FROM `r`", "`r`"),
    ]


def test_an_unreadable_role_is_a_finding_unless_its_grants_show_elsewhere() -> None:
    found = grants.review(
        {
            None: ["GRANT `a` TO `u`@`%`", "GRANT `b` TO `x`@`h`"],
            "`a`": None,
            "`b`": None,
            "`c`": None,
            "`seen`": None,
            "`other`": ["GRANT SELECT ON `s`.* TO `seen`"],
        }
    )
    assert [(f.privilege, f.on, f.grantee, f.revoke, f.via_role) for f in found] == [
        (
            "ROLE (its grants cannot be read while it is not active)",
            "`a`",
            U,
            "REVOKE `a` FROM `u`@`%`",
            "`a`",
        ),
        (
            "ROLE (its grants cannot be read while it is not active)",
            "`b`",
            "`x`@`h`",
            "REVOKE `b` FROM `x`@`h`",
            "`b`",
        ),
        (
            "ROLE (its grants cannot be read while it is not active)",
            "`c`",
            "CURRENT_USER",
            "REVOKE `c` FROM CURRENT_USER",
            "`c`",
        ),
    ]


def test_the_first_grantee_of_a_role_is_named() -> None:
    found = grants.review(
        {None: ["GRANT `a` TO `u`@`%`"], "`x`": ["GRANT `a` TO `v`@`%`"], "`a`": None}
    )
    assert [f.grantee for f in found] == [U]


def test_roles_lists_each_granted_role_once_in_order() -> None:
    lines = [
        "GRANT `b`, `a` TO `u`@`%`",
        "GRANT SELECT ON `s`.* TO `u`@`%`",
        "GRANT `a`, `c` TO `u`@`%`",
        "SET DEFAULT ROLE `b` FOR `u`@`%`",
    ]
    assert grants.roles(lines) == ["`b`", "`a`", "`c`"]


def test_expand_follows_roles_breadth_first_and_asks_each_once() -> None:
    server = {
        None: ["GRANT `a`, `b` TO `u`@`%`"],
        "`a`": ["GRANT `b`, `c` TO `a`"],
        "`b`": ["GRANT `c` TO `b`", "GRANT `a` TO `b`"],
        "`c`": [],
    }
    asked: list[str | None] = []

    def fetch(role: str | None) -> list[str]:
        asked.append(role)
        return server[role]

    assert grants.expand(fetch) == server
    assert asked == [None, "`a`", "`b`", "`c`"]


def test_expand_stops_after_fifty_roles() -> None:
    def fetch(role: str | None) -> list[str]:
        n = 0 if role is None else int(role.strip("`r")) + 1
        return [f"GRANT `r{n}` TO `x`"]

    found = grants.expand(fetch)
    assert len(found) == 51  # the account and 50 roles, however deep the chain goes
    assert list(found)[-1] == "`r49`"


def test_a_role_the_server_will_not_show_is_none_and_its_roles_are_not_followed() -> None:
    class Denied(Exception):
        pass

    def fetch(role: str | None) -> list[str]:
        if role == "`a`":
            raise Denied
        return {None: ["GRANT `a`, `b` TO `u`@`%`"], "`b`": []}[role]

    assert grants.expand(fetch, (Denied,)) == {
        None: ["GRANT `a`, `b` TO `u`@`%`"],
        "`a`": None,
        "`b`": [],
    }
    with pytest.raises(Denied):
        grants.expand(fetch)


def test_write_privileges_names_each_unsafe_privilege_once() -> None:
    lines = [
        "GRANT SELECT, UPDATE (`a`), update (`b`) ON `s`.`t` TO `u`@`%`",
        "GRANT ALL ON `x`.* TO `u`@`%` WITH GRANT OPTION",
        "GRANT SHOW  VIEW, DELETE ON *.* TO `u`@`%`",
    ]
    assert grants.write_privileges(lines) == [
        "UPDATE",
        "ALL PRIVILEGES",
        "GRANT OPTION",
        "SHOW VIEW",
        "DELETE",
    ]


@pytest.mark.parametrize("role", ["`r`", "`r``x`", "`r`@`h`", "'r'", "'r'@'%'", "`r`@``"], ids=repr)
def test_show_grants_for_a_role_as_the_server_quoted_it(role: str) -> None:
    assert grants.show_grants_for(role) == f"SHOW GRANTS FOR {role}"


@pytest.mark.parametrize("role", ["r", "``", "`r`x", "`r` ; DROP", "'r", "''", "`r`@h"], ids=repr)
def test_any_other_role_text_is_refused(role: str) -> None:
    with pytest.raises(ValueError) as info:
        grants.show_grants_for(role)
    assert str(info.value) == f"not a role name quoted by the server: {role!r}"
