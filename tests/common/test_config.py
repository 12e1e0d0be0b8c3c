"""Config loading: TOML, LAKEHOUSE_CONFIG, env overrides, and errors naming file/key/reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakehouse_common.config import (
    DEFAULT_CONFIG,
    REPO_ROOT,
    ConfigError,
    LakehouseSettings,
    audit_key_path,
    is_loopback_host,
    load_settings,
)
from lakehouse_common.topology import DAEMONS


class TestShippedConfigs:
    def test_dev_config_has_spec_dev_ports(self) -> None:
        settings = load_settings(DEFAULT_CONFIG, environ={})
        for daemon in DAEMONS:
            assert settings.ports.of(daemon.name) == daemon.dev_port

    def test_persistent_config_has_spec_persistent_ports(self) -> None:
        settings = load_settings(REPO_ROOT / "configs/lakehouse-persistent.toml", environ={})
        for daemon in DAEMONS:
            assert settings.ports.of(daemon.name) == daemon.persistent_port
        assert settings.data_dir == Path("/var/lib/lakehouse")
        assert settings.server.env == "production"

    def test_dev_file_equals_builtin_defaults(self) -> None:
        from_file = load_settings(DEFAULT_CONFIG, environ={})
        builtin = LakehouseSettings()
        assert from_file.ports == builtin.ports
        assert from_file.storage == builtin.storage
        assert from_file.gateway == builtin.gateway
        assert from_file.client == builtin.client


class TestSelection:
    def test_lakehouse_config_env_chooses_the_file(self, tmp_path: Path) -> None:
        cfg = tmp_path / "c.toml"
        cfg.write_text("[ports]\ngateway = 5110\n")
        settings = load_settings(environ={"LAKEHOUSE_CONFIG": str(cfg)})
        assert settings.ports.gateway == 5110
        assert settings.source == str(cfg)

    def test_relative_data_dir_resolves_against_cwd(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        cfg = tmp_path / "c.toml"
        cfg.write_text('[server]\ndata_dir = "d"\n')
        assert load_settings(cfg, environ={}).data_dir == tmp_path / "d"

    def test_audit_key_relative_to_data_dir(self, tmp_path: Path) -> None:
        cfg = tmp_path / "c.toml"
        cfg.write_text(f'[server]\ndata_dir = "{tmp_path}"\n[audit]\nkey_file = "k/a.key"\n')
        assert audit_key_path(load_settings(cfg, environ={})) == tmp_path / "k/a.key"


class TestEnvironmentOverrides:
    def test_section_key_override(self, tmp_path: Path) -> None:
        settings = load_settings(
            DEFAULT_CONFIG,
            environ={"LAKEHOUSE_STORAGE__BACKEND": "s3", "LAKEHOUSE_PORTS__STORAGED": "5211"},
        )
        assert settings.storage.backend == "s3"
        assert settings.ports.storaged == 5211

    def test_nested_override_three_deep(self) -> None:
        settings = load_settings(
            DEFAULT_CONFIG,
            environ={"LAKEHOUSE_STORAGE__S3__ENDPOINT_URL": "http://127.0.0.1:9000"},
        )
        assert settings.storage.s3.endpoint_url == "http://127.0.0.1:9000"

    def test_json_value_override(self) -> None:
        settings = load_settings(
            DEFAULT_CONFIG, environ={"LAKEHOUSE_GATEWAY__ROUTES": '{"storage": "storaged"}'}
        )
        assert settings.gateway.routes == {"storage": "storaged"}

    def test_env_beats_file(self, tmp_path: Path) -> None:
        cfg = tmp_path / "c.toml"
        cfg.write_text('[server]\nlog_level = "debug"\n')
        settings = load_settings(cfg, environ={"LAKEHOUSE_SERVER__LOG_LEVEL": "error"})
        assert settings.server.log_level == "error"

    def test_vars_without_double_underscore_are_not_overrides(self) -> None:
        settings = load_settings(DEFAULT_CONFIG, environ={"LAKEHOUSE_SOMETHING": "x"})
        assert settings.ports.gateway == 3110

    def test_empty_auth_token_means_no_auth(self) -> None:
        settings = load_settings(DEFAULT_CONFIG, environ={"LAKEHOUSE_GATEWAY__AUTH_TOKEN": ""})
        assert settings.gateway.auth_token is None


class TestBadConfigFailsWithFileKeyReason:
    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match=r"nope\.toml: config file not found"):
            load_settings(tmp_path / "nope.toml", environ={})

    def test_invalid_toml_names_file_and_line(self, tmp_path: Path) -> None:
        cfg = tmp_path / "bad.toml"
        cfg.write_text("[server]\nhost = \n")
        with pytest.raises(ConfigError, match=r"bad\.toml: not valid TOML: .*line 2"):
            load_settings(cfg, environ={})

    def test_wrong_type_names_file_key_and_reason(self, tmp_path: Path) -> None:
        cfg = tmp_path / "bad.toml"
        cfg.write_text('[ports]\ngateway = "three"\n')
        with pytest.raises(ConfigError) as err:
            load_settings(cfg, environ={})
        assert f"{cfg}: ports.gateway: Input should be a valid integer" in str(err.value)

    def test_unknown_key_is_refused(self, tmp_path: Path) -> None:
        cfg = tmp_path / "bad.toml"
        cfg.write_text("[server]\nmax_body = 5\n")
        with pytest.raises(ConfigError, match=r"server\.max_body: unknown key"):
            load_settings(cfg, environ={})

    def test_bad_env_override_names_the_variable(self) -> None:
        with pytest.raises(ConfigError, match="environment LAKEHOUSE_PORTS__QUERYD: ports.queryd"):
            load_settings(DEFAULT_CONFIG, environ={"LAKEHOUSE_PORTS__QUERYD": "x"})

    def test_duplicate_ports_refused(self, tmp_path: Path) -> None:
        cfg = tmp_path / "bad.toml"
        cfg.write_text("[ports]\ngateway = 3211\n")
        with pytest.raises(ConfigError, match="both use port 3211"):
            load_settings(cfg, environ={})

    def test_route_to_unknown_daemon_refused(self) -> None:
        with pytest.raises(ConfigError, match="routes.x: 'nosuchd' is not a daemon"):
            load_settings(DEFAULT_CONFIG, environ={"LAKEHOUSE_GATEWAY__ROUTES": '{"x":"nosuchd"}'})

    def test_non_positive_body_limit_refused(self) -> None:
        with pytest.raises(ConfigError, match="server.max_body_bytes"):
            load_settings(DEFAULT_CONFIG, environ={"LAKEHOUSE_SERVER__MAX_BODY_BYTES": "0"})

    def test_gc_thresholds_must_be_three_or_none(self) -> None:
        with pytest.raises(ConfigError, match="server.gc_thresholds"):
            load_settings(DEFAULT_CONFIG, environ={"LAKEHOUSE_SERVER__GC_THRESHOLDS": "[700, 10]"})
        with pytest.raises(ConfigError, match="server.gc_thresholds"):
            load_settings(
                DEFAULT_CONFIG, environ={"LAKEHOUSE_SERVER__GC_THRESHOLDS": "[-1, 10, 10]"}
            )
        off = load_settings(DEFAULT_CONFIG, environ={"LAKEHOUSE_SERVER__GC_THRESHOLDS": "[]"})
        assert off.server.gc_thresholds == []

    def test_client_keepalive_must_stay_below_the_servers(self) -> None:
        env = {"LAKEHOUSE_SERVER__KEEP_ALIVE_S": "10", "LAKEHOUSE_CLIENT__KEEPALIVE_S": "10"}
        with pytest.raises(ConfigError, match=r"client.keepalive_s \(10.0\) must be below"):
            load_settings(DEFAULT_CONFIG, environ=env)
        env["LAKEHOUSE_CLIENT__KEEPALIVE_S"] = "9.5"
        assert load_settings(DEFAULT_CONFIG, environ=env).client.keepalive_s == 9.5

    def test_production_public_gateway_without_token_refused(self) -> None:
        env = {"LAKEHOUSE_SERVER__ENV": "production", "LAKEHOUSE_GATEWAY__HOST": "0.0.0.0"}
        with pytest.raises(ConfigError, match="without gateway.auth_token"):
            load_settings(DEFAULT_CONFIG, environ=env)
        env["LAKEHOUSE_GATEWAY__AUTH_TOKEN"] = "s3cret-token"
        assert load_settings(DEFAULT_CONFIG, environ=env).gateway.auth_token is not None

    @pytest.mark.parametrize("host", ["::1", "127.0.0.2", "localhost"])
    def test_production_loopback_gateway_needs_no_token(self, host: str) -> None:
        env = {"LAKEHOUSE_SERVER__ENV": "production", "LAKEHOUSE_GATEWAY__HOST": host}
        assert load_settings(DEFAULT_CONFIG, environ=env).gateway.auth_token is None

    def test_daemon_refuses_to_start_on_bad_config(self, tmp_path: Path) -> None:
        import subprocess
        import sys

        cfg = tmp_path / "bad.toml"
        cfg.write_text("[ports]\nstoraged = -1\n")
        proc = subprocess.run(
            [sys.executable, "-m", "services.storaged"],
            env={"LAKEHOUSE_CONFIG": str(cfg), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO_ROOT,
        )
        assert proc.returncode != 0
        assert f"{cfg}: ports" in proc.stderr
        assert "outside 1..65535" in proc.stderr


class TestIsLoopbackHost:
    @pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.1.2.3", "::1"])
    def test_loopback(self, host: str) -> None:
        assert is_loopback_host(host)

    @pytest.mark.parametrize(
        "host", ["0.0.0.0", "10.0.0.1", "::", "example.com", "localhost.example.com", ""]
    )
    def test_not_loopback(self, host: str) -> None:
        assert not is_loopback_host(host)
