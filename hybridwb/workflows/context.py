"""The run context: what the kernel of a run receives, built in one place.

The parent's resolved `Settings` (every field, whichever route set it: `connect()`
arguments, environment, `.env`, `[tool.hybridwb]`) travel to the kernel as one JSON value
in the kernel's own environment — never in the notebook, its parameters or a run row — and
the kernel rebuilds exactly those settings. The calling process's `os.environ` is never
changed: the environment is handed to the kernel manager of this one kernel.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from hybridwb._run_kernel import ENV_VAR
from hybridwb.config import Settings
from hybridwb.errors import ConfigError

#: configuration a kernel must not pick up from the parent's environment besides ENV_VAR
CONFIG_PREFIXES = ("MYSQL_", "SUPABASE_", "NEXT_PUBLIC_SUPABASE_", "HYBRIDWB_")


def settings_payload(settings: Settings) -> str:
    """Every settings field as JSON, secrets revealed (only ever put in a child's env)."""
    data: dict[str, Any] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, Path):
            value = str(value if value.is_absolute() else Path.cwd() / value)
        data[name] = value
    return json.dumps(data, ensure_ascii=False)


def settings_from_payload(payload: str) -> Settings:
    settings = _settings_or_none(payload)
    if settings is None:
        # raised where neither the payload (every secret) nor a parser's error is in reach
        del payload
        raise ConfigError(
            f"{ENV_VAR} is not a hybridwb run context; start runs with `hybridwb run`."
        )
    return settings


def _settings_or_none(payload: str) -> Settings | None:
    try:
        return Settings(**json.loads(payload))
    except Exception:
        return None


def kernel_env(settings: Settings, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The kernel's complete environment: the parent's minus its hybridwb configuration,
    plus the run context."""
    base = os.environ if base is None else base
    env = {k: v for k, v in base.items() if not k.startswith(CONFIG_PREFIXES)}
    env[ENV_VAR] = settings_payload(settings)
    return env


def run_settings() -> Settings | None:
    """Inside a run's kernel: the parent's exact settings; None outside a run (a notebook
    opened by hand then uses `hybridwb.connect()`). The notebook builds the workbench, so
    workflows never import the workbench."""
    payload = os.environ.get(ENV_VAR)
    return settings_from_payload(payload) if payload else None


def kernel_manager_class(env: dict[str, str], ipc_dir: Path, *, log: Path | None = None) -> type:
    """A kernel manager that starts its kernel with `env` and talks over IPC sockets whose
    names live in `ipc_dir` (one private directory per run: concurrent runs never collide).

    `log`: the kernel's own stdout/stderr (start-up warnings, a crash before its first cell;
    not its cells' outputs, which reach the executed notebook over the kernel protocol) are
    appended to this file instead of being inherited. A run started from a notebook needs
    it: the notebook's kernel forwards everything written to its process's stderr into the
    cell as a red block, yet what a failing kernel said must stay findable."""
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class RunKernelManager(AsyncKernelManager):
        @default("transport")
        def _default_transport(self) -> str:
            return "ipc"

        @default("ip")
        def _default_ip(self) -> str:
            return str(ipc_dir / f"k{uuid.uuid4().hex[:8]}")

        async def _async_pre_start_kernel(self, **kw: Any) -> Any:
            kw["env"] = dict(env)
            return await super()._async_pre_start_kernel(**kw)

        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            if log is None:
                return await super()._async_launch_kernel(kernel_cmd, **kw)
            # Popen arguments, passed through by the local provisioner; the kernel holds its
            # own copy of the descriptor, so this one closes once the process is started
            with log.open("ab") as sink:
                kw["stdout"] = kw["stderr"] = sink
                return await super()._async_launch_kernel(kernel_cmd, **kw)

    return RunKernelManager


def kept_log(log: Path) -> Path | None:
    """The kernel log if the kernel wrote anything, else None (an empty log is removed)."""
    try:
        if log.stat().st_size:
            return log
        log.unlink()
    except OSError:
        pass
    return None


@contextmanager
def ipc_directory() -> Iterator[Path]:
    """A short private directory for socket files (UNIX socket paths are limited to ~100 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="hwb-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def running_cell(executed: Path) -> int | None:
    """The number of the cell papermill was running when the kernel was stopped: the last
    code cell that started in the executed notebook papermill saved (counting code cells,
    as execution counts do)."""
    import nbformat

    try:
        nb = nbformat.read(executed, as_version=4)
    except (OSError, ValueError):
        return None
    code = [c for c in nb.cells if c.cell_type == "code"]
    started = [
        n for n, c in enumerate(code, 1) if c.metadata.get("papermill", {}).get("start_time")
    ]
    return started[-1] if started else None
