"""`Source.sql(frame_type=...)`: the rows become a frame of that class once (the workbench's
masked frame), and anything that is not a DataFrame class is refused before any I/O."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from hybridwb.errors import BindError
from hybridwb.source import Source


@pytest.mark.parametrize("bad", [dict, "DataFrame", None, int], ids=["dict", "str", "none", "int"])
def test_a_frame_type_that_is_not_a_dataframe_class_is_refused(tmp_path: Path, bad: object) -> None:
    src = Source(URL.create("sqlite", database=str(tmp_path / "missing.db")))
    with pytest.raises(BindError, match="frame_type must be pandas.DataFrame"):
        src.sql("SELECT 1", frame_type=bad)  # type: ignore[arg-type]
