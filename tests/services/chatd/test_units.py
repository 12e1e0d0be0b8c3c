"""chatd's pieces without a daemon: the `[chat]` config, model names, backoff, URLs."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from lakehouse_common.config import ChatSettings, ConfigError, load_settings
from lakehouse_common.contracts.chat import split_model
from services.chatd.providers import OpenAIProvider, safe_url
from services.chatd.service import ChatService, Target

REPO = Path(__file__).resolve().parents[3]


class TestConfig:
    def test_the_dev_config_declares_all_five_providers(self) -> None:
        settings = load_settings(REPO / "configs" / "lakehouse.toml", environ={})
        assert sorted(settings.chat.providers) == sorted(
            ["ollama", "openai", "anthropic", "openrouter", "openai_compatible"]
        )
        assert settings.chat.default_model == "ollama/qwen2.5"

    def test_an_environment_override_points_one_provider_elsewhere(self) -> None:
        env = {"LAKEHOUSE_CHAT__PROVIDERS__OPENAI_COMPATIBLE__BASE_URL": "http://127.0.0.1:9999"}
        settings = load_settings(REPO / "configs" / "lakehouse.toml", environ=env)
        provider = settings.chat.providers["openai_compatible"]
        assert provider.base_url == "http://127.0.0.1:9999"
        assert provider.api_key_env == "OPENAI_COMPATIBLE_API_KEY"  # the file's other keys stay
        assert len(settings.chat.providers) == 5

    def test_the_fallback_chain_can_come_from_the_environment(self) -> None:
        env = {"LAKEHOUSE_CHAT__FALLBACK": '["openai/gpt-4o-mini"]'}
        settings = load_settings(REPO / "configs" / "lakehouse.toml", environ=env)
        assert settings.chat.fallback == ["openai/gpt-4o-mini"]

    def test_a_provider_named_after_no_kind_needs_a_kind(self, tmp_path: Path) -> None:
        path = tmp_path / "c.toml"
        path.write_text('[chat.providers.vllm]\nbase_url = "http://x"\n')
        with pytest.raises(ConfigError, match="chat: .*providers.vllm: set kind"):
            load_settings(path, environ={})

    def test_embed_providers_keep_their_own_shape(self) -> None:
        settings = load_settings(REPO / "configs" / "lakehouse.toml", environ={})
        assert not hasattr(settings.embed.providers["ollama"], "cold_start_timeout_s")


class TestModelNames:
    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            ("ollama/qwen2.5", ("ollama", "qwen2.5")),
            ("qwen2.5:7b", ("ollama", "qwen2.5:7b")),
            ("openrouter/meta-llama/llama-3", ("openrouter", "meta-llama/llama-3")),
            ("hf.co/org/model", ("ollama", "hf.co/org/model")),
            ("vllm/m", ("vllm", "m")),
            ("anthropic/claude", ("anthropic", "claude")),  # a kind, even without a table
            ("ollama/", ("ollama", "ollama/")),
        ],
    )
    def test_split_model(self, name: str, expected: tuple[str, str]) -> None:
        assert split_model(name, {"ollama", "vllm"}, "ollama") == expected


class TestBackoff:
    async def test_backoff_is_jittered_capped_and_honours_retry_after(self) -> None:
        settings = ChatSettings(retry_backoff_s=1.0, retry_max_backoff_s=3.0)
        async with aiohttp.ClientSession() as session:
            service = ChatService(settings, session)
            waits = [service._backoff(2, None) for _ in range(200)]
            assert all(w is not None and 0 <= w <= 3.0 for w in waits)
            assert len({round(w or 0, 6) for w in waits}) > 100  # jittered, not fixed
            assert service._backoff(0, 2.5) == 2.5
            assert service._backoff(0, 30.0) is None  # longer than the cap: fail over instead

    async def test_the_chain_drops_duplicates(self) -> None:
        settings = ChatSettings(default_model="ollama/a", fallback=["ollama/a", "openai/b", "a"])
        async with aiohttp.ClientSession() as session:
            service = ChatService(settings, session)
            assert service.chain(None) == [Target("ollama", "a"), Target("openai", "b")]
            assert service.chain("x")[0] == Target("ollama", "x")


class TestUrls:
    def test_user_info_is_dropped_from_reported_urls(self) -> None:
        assert safe_url("https://u:secret@host:8443/v1") == "https://host:8443/v1"
        assert safe_url("http://127.0.0.1:11434") == "http://127.0.0.1:11434"

    @pytest.mark.parametrize(
        ("base", "url"),
        [
            ("https://api.openai.com/v1", "https://api.openai.com/v1/chat/completions"),
            ("https://openrouter.ai/api/v1", "https://openrouter.ai/api/v1/chat/completions"),
            ("http://127.0.0.1:8000", "http://127.0.0.1:8000/v1/chat/completions"),
        ],
    )
    async def test_openai_shape_urls(self, base: str, url: str) -> None:
        settings = ChatSettings().providers["openai"].model_copy(update={"base_url": base})
        async with aiohttp.ClientSession() as session:
            assert OpenAIProvider("openai", settings, session).chat_url() == url
