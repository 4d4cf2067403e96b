"""The README shows three screenshots the browser tests take (`reports/screenshots/`,
copied to `docs/screenshots/`): each image it names exists and is a real PNG of some size."""

from __future__ import annotations

import re
import struct

from tests.conftest import REPO


def test_the_readme_shows_three_screenshots_that_exist() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    shown = re.findall(r"!\[[^\]]+\]\((docs/screenshots/[^)]+\.png)\)", readme)
    assert len(set(shown)) >= 3, shown
    for name in shown:
        data = (REPO / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{name} is not a PNG"
        width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
        assert width >= 300 and height >= 100, f"{name} is {width}x{height}"
