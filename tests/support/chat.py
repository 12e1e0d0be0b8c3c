"""chatd against fake providers: the provider tables, keys and stack config of its tests.

Each provider table points at its own `FakeLLM` (a real HTTP server on loopback speaking that
provider's API), so a test scripts exactly the replies of the provider it exercises. Keys live
in environment variables the daemon inherits; the fakes refuse calls without them. Two more
providers cover the 503 paths: `vllm` points at a port nobody listens on, `groq` names a key
variable that is not set.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lakehouse_common.config import load_settings
from lakehouse_common.ops.stack import ephemeral_config
from tests.support.stack import LiveStack

KEYS = {
    "CHATD_TEST_OPENAI_KEY": "sk-test-openai-4f1d9c2b7a",
    "CHATD_TEST_ANTHROPIC_KEY": "sk-ant-test-8e3a5b1c6d",
    "CHATD_TEST_OPENROUTER_KEY": "sk-or-test-2c7e9f4a1b",
}
UNSET_KEY_ENV = "CHATD_TEST_UNSET_KEY"
TIMEOUT_S = 1.5
COLD_START_TIMEOUT_S = 10.0
# Short waits: the retry logic is under test, not the clock.
RETRY = {"max_retries": 2, "retry_backoff_s": 0.01, "retry_max_backoff_s": 1.0}
PROVIDERS = ("ollama", "openai", "anthropic", "openrouter", "openai_compatible")
KEY_OF = {
    "openai": "CHATD_TEST_OPENAI_KEY",
    "anthropic": "CHATD_TEST_ANTHROPIC_KEY",
    "openrouter": "CHATD_TEST_OPENROUTER_KEY",
}


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def chat_stack(
    root: Path, chat: Mapping[str, Any], providers: Mapping[str, Mapping[str, Any]]
) -> LiveStack:
    """A `LiveStack` whose config has the `[chat]` section given (lists included, which the
    generic config writer does not handle)."""
    path, _ = ephemeral_config(root, {"gateway": {"upstream_timeout_s": 30.0}})
    lines = ["", "[chat]", *(f"{k} = {_toml(v)}" for k, v in chat.items())]
    for name, table in providers.items():
        lines += ["", f"[chat.providers.{name}]", *(f"{k} = {_toml(v)}" for k, v in table.items())]
    with path.open("a") as fh:
        fh.write("\n".join(lines) + "\n")
    return LiveStack(path, load_settings(path, environ={}))


@contextmanager
def keys_in_environment(keys: Mapping[str, str]) -> Iterator[None]:
    """Put the keys where the daemon (a child process) inherits them; restore afterwards."""
    previous = {name: os.environ.get(name) for name in keys}
    os.environ.update(keys)
    os.environ.pop(UNSET_KEY_ENV, None)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]
