"""How `vigil` finds the stack and its token, and reads its arguments (no servers needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.cli import Settings, TokenNotFound
from services.cli._ctl import resolve_component, short_name
from services.cli._runs import parse_params
from services.cli._settings import dial_address
from services.common import ConfigError, InvalidArgument
from tests.conftest import REPO

LOCAL = REPO / "deploy" / "local"


def test_addresses_follow_the_config_files_and_the_same_env_overrides() -> None:
    s = Settings.resolve(str(LOCAL), environ={})
    assert (s.address("healthd"), s.address("workflow"), s.address("security")) == (
        "127.0.0.1:50050",
        "127.0.0.1:50051",
        "127.0.0.1:50052",
    )
    moved = Settings.resolve(
        str(LOCAL),
        environ={
            "VIGIL_HEALTHD_SERVER__PORT": "51050",
            "VIGIL_WORKFLOW_SERVER__PORT": "51051",
            "VIGIL_HEALTHD_HTTP__PORT": "9050",
        },
    )
    assert moved.address("healthd") == "127.0.0.1:51050" and moved.address("workflow") == "127.0.0.1:51051"
    assert moved.dashboard_url() == "http://127.0.0.1:9050/"


def test_without_config_files_the_documented_defaults_apply(tmp_path: Path) -> None:
    s = Settings.resolve(str(tmp_path), environ={"VIGIL_SECURITY_SERVER__HOST": "0.0.0.0"})
    assert s.address("workflow") == "127.0.0.1:50051" and s.address("security") == "127.0.0.1:50052"


def test_a_bad_setting_is_the_loaders_one_line_error() -> None:
    s = Settings.resolve(str(LOCAL), environ={"VIGIL_WORKFLOW_SERVER__PORT": "lots"})
    with pytest.raises(ConfigError, match=r"VIGIL_WORKFLOW_SERVER__PORT: server\.port"):
        s.address("workflow")
    with pytest.raises(ValueError, match="does not exist"):
        Settings.resolve("/no/such/dir", environ={})


def test_wildcard_binds_are_dialled_on_loopback() -> None:
    assert dial_address("0.0.0.0", 1) == "127.0.0.1:1"
    assert dial_address("::", 2) == "[::1]:2"
    assert dial_address("::1", 3) == "[::1]:3"
    assert dial_address("10.0.0.5", 4) == "10.0.0.5:4"


def test_token_order_and_what_is_tried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    file = tmp_path / "t"
    file.write_text("from-file\n")
    s = Settings(None, {"VIGIL_TOKEN": "from-env"})
    assert s.token("flag", str(file)) == "flag"
    assert s.token(None, str(file)) == "from-file"
    assert s.token(None, None) == "from-env"
    bare = Settings(None, {})
    with pytest.raises(TokenNotFound) as missing:
        bare.token(None, None)
    for place in ("--token", "--token-file", "$VIGIL_TOKEN", str(tmp_path / ".vigil" / "dev-token")):
        assert place in str(missing.value)
    (tmp_path / ".vigil").mkdir()
    (tmp_path / ".vigil" / "dev-token").write_text("dev\n")
    assert bare.token(None, None) == "dev"
    (tmp_path / ".vigil" / "dev-token").write_text("")
    with pytest.raises(TokenNotFound, match="empty"):
        bare.token(None, None)


def test_short_component_names() -> None:
    names = ["workflow-store", "vigil.workflow.v1.WorkflowService", "vigil.security.v1.SecurityService"]
    assert [short_name(n) for n in names] == ["workflow-store", "workflow", "security"]
    assert resolve_component(names, "workflow") == "vigil.workflow.v1.WorkflowService"
    assert resolve_component(names, "workflow-store") == "workflow-store"
    assert resolve_component(names, "nonesuch") == "nonesuch"  # healthd answers NOT_FOUND
    with pytest.raises(InvalidArgument, match="ambiguous"):
        resolve_component([*names, "vigil.workflow.v2.WorkflowService"], "workflow")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[1,2]", "must be a JSON object, got a JSON list"),
        ("{", "is not valid JSON"),
        ("3", "got a JSON int"),
    ],
)
def test_params_must_be_a_json_object(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_params(text)


def test_params_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text('{"a": [1]}')
    assert parse_params(f"@{tmp_path / 'p.json'}") == {"a": [1]}
    with pytest.raises(ValueError, match="cannot read"):
        parse_params(f"@{tmp_path / 'missing.json'}")


def test_an_env_override_of_one_field_keeps_the_sections_other_defaults() -> None:
    from services.common import load_config
    from services.security._config import SecurityConfig

    cfg = load_config(
        SecurityConfig, None, env_prefix="VIGIL_SECURITY_", environ={"VIGIL_SECURITY_SERVER__HOST": "0.0.0.0"}
    )
    assert (cfg.server.host, cfg.server.port) == ("0.0.0.0", 50052)


def test_client_tls_flags_over_env_over_cli_yaml_and_a_tls_server_implies_tls(tmp_path: Path) -> None:
    from services.cli._settings import TlsFlags
    from services.common import ClientTLSConfig

    plain = Settings.resolve(str(LOCAL), environ={})
    assert plain.client_tls("workflow", TlsFlags()) is None
    assert plain.client_tls("workflow", TlsFlags(tls=True)) == ClientTLSConfig()
    env = {"VIGIL_CLI_TLS__CA_FILE": "/env/ca.pem", "VIGIL_CLI_TLS__SERVER_NAME": "vigil"}
    from_env = Settings.resolve(str(LOCAL), environ=env)
    assert from_env.client_tls("healthd", TlsFlags(ca_file="/flag/ca.pem")) == ClientTLSConfig(
        ca_file=Path("/flag/ca.pem"), server_name="vigil"
    )
    with pytest.raises(ValueError, match="TLS settings: cert_file and key_file must be set together"):
        from_env.client_tls("healthd", TlsFlags(cert_file="/c.pem"))
    (tmp_path / "cli.yaml").write_text("tls: {ca_file: /yaml/ca.pem}\n")
    (tmp_path / "workflow.yaml").write_text("server: {tls: {cert_file: /s.pem, key_file: /s-key.pem}}\n")
    configured = Settings.resolve(str(tmp_path), environ={})
    assert configured.client_tls("workflow", TlsFlags()) == ClientTLSConfig(ca_file=Path("/yaml/ca.pem"))
    (tmp_path / "cli.yaml").unlink()
    assert configured.client_tls("workflow", TlsFlags()) == ClientTLSConfig()  # the server serves TLS
    assert configured.client_tls("security", TlsFlags()) is None
    with pytest.raises(ConfigError, match="VIGIL_CLI_TLS__BOGUS"):
        Settings.resolve(str(tmp_path), environ={"VIGIL_CLI_TLS__BOGUS": "1"}).client_tls(
            "workflow", TlsFlags()
        )
