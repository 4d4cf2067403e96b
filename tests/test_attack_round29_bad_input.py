"""Attack round 29 on the new public methods of a table mapping (`wb.mappings.tables()[t]`):
`consent_path(table, role)` answered a role it does not know ('marketing', None, a list)
with a raw KeyError / TypeError. Now one line naming the roles it takes.

Oracle: the exception's type and its one line.
"""

from __future__ import annotations

from typing import Any

import pytest

from hybridwb.errors import HybridwbError
from hybridwb.mapping.model import TableMapping

MAPPING = TableMapping.model_validate(
    {
        "displayName": "회원",
        "key": "code",
        "fields": {
            "code": {"displayName": "코드"},
            "ok": {"displayName": "동의", "type": "boolean", "role": "consent"},
        },
    }
)


@pytest.mark.parametrize("role", ["marketing", None, [], 1, "Consent"])
def test_an_unknown_consent_role_is_one_line(role: Any) -> None:
    with pytest.raises(HybridwbError) as caught:
        MAPPING.consent_path("members", role)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("role must be one of 'consent', 'night_consent'")


def test_the_known_roles_still_answer() -> None:
    assert MAPPING.consent_path("members", "consent") == "ok"
    assert MAPPING.consent_path("members", "night_consent") is None
