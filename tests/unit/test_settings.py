"""Settings: YAML defaults, .env and environment overrides, and the errors for bad values."""

import pytest

from lakehouse.errors import ConfigError
from lakehouse.settings import load_settings


@pytest.fixture
def isolated(clean_env):
    return clean_env


def test_yaml_values_are_the_defaults(isolated):
    settings = load_settings()
    assert settings.s3.port == 9000
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert settings.s3.warehouse == "s3://lakehouse/warehouse"
    assert settings.catalog.name == "lakehouse"


def test_environment_beats_dotenv_beats_yaml(isolated, monkeypatch):
    isolated.write_text("LAKEHOUSE_S3__PORT=9100\nLAKEHOUSE_KAFKA__PORT=9200\nLAKEHOUSE_S3__SECRET_KEY=from-dotenv\n")
    monkeypatch.setenv("LAKEHOUSE_KAFKA__PORT", "9300")
    settings = load_settings()
    assert settings.s3.port == 9100  # .env over YAML
    assert settings.kafka.port == 9300  # environment over .env
    assert settings.secret("s3", "secret_key") == "from-dotenv"


def test_missing_credential_names_the_variable(isolated, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_S3__ACCESS_KEY", "present")
    settings = load_settings()
    with pytest.raises(ConfigError, match=r"missing credential s3.secret_key .*LAKEHOUSE_S3__SECRET_KEY"):
        settings.require_secrets()


def test_secrets_are_not_printed(isolated, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_POSTGRES__PASSWORD", "hunter2-very-secret")
    settings = load_settings()
    assert "hunter2-very-secret" not in repr(settings)
    assert settings.secret("postgres", "password") == "hunter2-very-secret"


def test_invalid_value_names_key_and_variable(isolated, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_KAFKA__PORT", "not-a-port")
    with pytest.raises(ConfigError, match=r"kafka.port: .*LAKEHOUSE_KAFKA__PORT"):
        load_settings()


def test_out_of_range_port_is_refused(isolated, monkeypatch):
    monkeypatch.setenv("LAKEHOUSE_S3__PORT", "70000")
    with pytest.raises(ConfigError, match=r"s3.port"):
        load_settings()


def test_unknown_section_is_refused(isolated, monkeypatch, tmp_path):
    config = tmp_path / "lakehouse.yaml"
    config.write_text("s3:\n  port: 9000\nkafak:\n  port: 1\n")
    monkeypatch.setenv("LAKEHOUSE_CONFIG", str(config))
    with pytest.raises(ConfigError, match=r"kafak"):
        load_settings()


def test_missing_settings_file(isolated, monkeypatch, tmp_path):
    monkeypatch.setenv("LAKEHOUSE_CONFIG", str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match=r"settings file .*nope.yaml not found"):
        load_settings()
