"""What a person sees while a run works: a live bar in the notebook, plain text in the run's
own notebook, and a link to the report at the end.

The run's kernel is another process, so the notebook that called `wb.workflows.run` follows
it the only honest way: by counting the run's rows in the store (frozen targets, records,
exclusions), the same counts the final status comes from. The bar is `tqdm.auto` (a widget in
JupyterLab, text elsewhere). Inside the run's kernel the bar is plain `tqdm` on stdout, so the
executed notebook holds one line of text, not a red stderr block.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hybridwb.platform.campaigns import Campaigns

POLL_S = 0.5


def in_notebook() -> bool:
    """True inside a Jupyter kernel (a notebook or papermill), not in a terminal or script."""
    shell_module = sys.modules.get("IPython")
    if shell_module is None:
        return False
    shell = shell_module.get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def kernel_bar(total: int, desc: str, *, disable: bool) -> Any:
    """The bar inside the run's kernel: plain text on stdout (what papermill keeps as a
    normal output), updated at most every few seconds so the notebook stays small."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        unit="target",
        desc=desc,
        disable=disable,
        file=sys.stdout,
        mininterval=2.0,
        ascii=True,
        dynamic_ncols=False,
        ncols=80,
    )


class RunProgress(threading.Thread):
    """Follows a run from the notebook that started it: a `tqdm.auto` bar of targets done."""

    def __init__(self, campaigns: Campaigns, run_id: Any, desc: str) -> None:
        super().__init__(daemon=True, name="hybridwb-progress")
        self.campaigns, self.run_id, self.desc = campaigns, run_id, desc
        self.done = threading.Event()
        self.bar: Any = None

    def _update(self) -> None:
        from tqdm.auto import tqdm

        counts = self.campaigns.counts(self.run_id)
        if not counts["targets"]:
            return  # not frozen yet
        if self.bar is None:
            self.bar = tqdm(total=counts["targets"], unit="target", desc=self.desc)
        self.bar.total = counts["targets"]
        self.bar.n = counts["records"] + counts["skipped"]
        self.bar.set_postfix(sent=counts["records"], excluded=counts["skipped"], refresh=False)
        self.bar.refresh()

    def run(self) -> None:
        while not self.done.wait(POLL_S):
            with contextlib.suppress(Exception):  # the store is busy: the next poll says it
                self._update()

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=5)
        with contextlib.suppress(Exception):
            self._update()  # the last counts, from the rows
        if self.bar is not None:
            self.bar.close()


def _relative_href(path: Path) -> str:
    try:
        href = os.path.relpath(path, Path.cwd())
    except ValueError:  # another drive: no relative link exists
        href = str(path)
    return Path(href).as_posix()


def show_report_link(path: Path, status: str, *, log: Path | None = None) -> None:
    """In a notebook: one line with the run's status and a link to its HTML report, and
    to the run kernel's own output (`log`) when that kernel wrote any."""
    from html import escape

    from IPython.display import HTML, display

    line = (
        f'run {escape(status)} · report: <a href="{escape(_relative_href(path))}" '
        f'target="_blank">{escape(path.name)}</a>'
    )
    if log is not None:
        line += (
            f' · kernel output: <a href="{escape(_relative_href(log))}" '
            f'target="_blank">{escape(log.name)}</a>'
        )
    display(HTML(line))
