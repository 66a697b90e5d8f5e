"""Settings: the shipped config loads; every error names file, key and problem; secrets
come only from the environment and never print."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.settings import DEFAULT_CONFIG_DIR, ConfigError, load_settings


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    target = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG_DIR, target)
    return target


def _load(config_dir: Path, **environ: str):  # type: ignore[no-untyped-def]
    return load_settings(config_dir, env_file=None, environ=dict(environ))


def test_shipped_config_is_valid(config_dir: Path) -> None:
    settings = _load(config_dir)
    assert settings.watchlist.watchlist
    assert settings.accounts.get(settings.accounts.default)
    assert settings.params is not None
    assert settings.db_url().startswith("sqlite:///")


def test_secrets_only_from_environment_and_never_printed(config_dir: Path) -> None:
    token = "7312345678:AAH3kJ9xQ2mZ8vN4pL6tR1sW0yU5eI7oAbC"
    settings = _load(
        config_dir,
        TELEGRAM_BOT_TOKEN=token,
        TELEGRAM_ALLOWED_USERS="111, 222",
        ALPACA_PAPER_KEY_ID="PKTESTKEY123456789",
        ALPACA_PAPER_SECRET_KEY="secretsecretsecret",
    )
    assert settings.secrets.allowed_user_ids == {111, 222}
    assert token not in repr(settings.secrets)
    assert token in settings.secret_values()
    creds = settings.credentials("alpaca-paper")
    assert creds is not None and creds.key_id.get_secret_value() == "PKTESTKEY123456789"
    assert "PKTESTKEY123456789" not in repr(creds)


def test_env_file_is_read(config_dir: Path, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("TELEGRAM_ALLOWED_USERS=42\nCENTAUR_DB_URL=sqlite:///x.db\n")
    settings = load_settings(config_dir, env_file=env_file, environ={})
    assert settings.secrets.allowed_user_ids == {42}
    assert settings.db_url() == "sqlite:///x.db"


def test_missing_credentials_are_none(config_dir: Path) -> None:
    assert _load(config_dir).credentials("alpaca-paper") is None


@pytest.mark.parametrize(
    ("file", "replace", "by", "expected"),
    [
        (
            "risk.yaml",
            "max_trades_per_day: 3",
            "max_trades_per_day: 0",
            "risk.yaml: max_trades_per_day: Input should be greater than or equal to 1",
        ),
        (
            "risk.yaml",
            "cooldown_minutes: 15",
            "cooldown_minuts: 15",
            "risk.yaml: cooldown_minuts: unknown key (typo?)",
        ),
        ("risk.yaml", 'entry_cutoff: "15:30"', 'entry_cutoff: "25:99"', "risk.yaml: entry_cutoff:"),
        (
            "symbols.yaml",
            "watchlist: [SPY,",
            "watchlist: [SPY, 'bad symbol!',",
            "symbols.yaml: watchlist: Value error, 'bad symbol!' is not a US stock symbol",
        ),
        (
            "accounts.yaml",
            "default: sim",
            "default: nope",
            "accounts.yaml: (top level): Value error, default account 'nope' is not in accounts",
        ),
        (
            "notifications.yaml",
            "protection: on",
            "protection: off",
            "notifications.yaml: kinds: Value error, 'protection' alerts protect money",
        ),
        (
            "sessions.yaml",
            'flatten_at: "15:55"',
            'flatten_at: "08:00"',
            "sessions.yaml: (top level): Value error, expected brief_at < allow_prompt_at",
        ),
        (
            "protection.yaml",
            "event_day_widen_factor: 1.5",
            "event_day_widen_factor: abc",
            "protection.yaml: event_day_widen_factor:",
        ),
    ],
)
def test_errors_name_file_key_and_problem(
    config_dir: Path, file: str, replace: str, by: str, expected: str
) -> None:
    path = config_dir / file
    text = path.read_text()
    assert replace in text, f"fixture drift: {replace!r} not in {file}"
    path.write_text(text.replace(replace, by))
    with pytest.raises(ConfigError) as info:
        _load(config_dir)
    assert any(expected in problem for problem in info.value.problems), info.value.problems


def test_all_problems_reported_at_once(config_dir: Path) -> None:
    (config_dir / "risk.yaml").write_text("max_trades_per_day: 3\n")
    (config_dir / "symbols.yaml").write_text("watchlist: []\n")
    with pytest.raises(ConfigError) as info:
        _load(config_dir)
    files = {p.split(":")[0].rsplit("/", 1)[-1] for p in info.value.problems}
    assert {"risk.yaml", "symbols.yaml"} <= files


def test_missing_file_and_broken_yaml(config_dir: Path) -> None:
    (config_dir / "sessions.yaml").unlink()
    (config_dir / "risk.yaml").write_text("max_trades_per_day: [1,\n")
    with pytest.raises(ConfigError) as info:
        _load(config_dir)
    text = "\n".join(info.value.problems)
    assert "sessions.yaml: file is missing" in text
    assert "risk.yaml: not valid YAML" in text


def test_bad_allowed_users_in_environment(config_dir: Path) -> None:
    with pytest.raises(ConfigError, match="TELEGRAM_ALLOWED_USERS"):
        _load(config_dir, TELEGRAM_ALLOWED_USERS="alice")


def test_alpaca_account_without_credentials_env_is_refused(config_dir: Path) -> None:
    path = config_dir / "accounts.yaml"
    path.write_text(path.read_text().replace(", credentials_env: ALPACA_PAPER", ""))
    with pytest.raises(ConfigError, match="needs credentials_env"):
        _load(config_dir)
