"""Settings: secrets from the environment / `.env`, everything else from `config/*.yaml`.

Secrets (tokens, API keys) are read only here and only from the process environment or a
`.env` file; they are wrapped in `SecretStr` so that printing the settings never shows them,
and `secret_values()` feeds the log redactor. Every YAML error names the file, the key and
what is wrong, and the program refuses to start on any of them (`ConfigError`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.config_models import (
    AccountConfig,
    AccountsConfig,
    NotificationsConfig,
    ProtectionConfig,
    RiskConfig,
    SessionsConfig,
    WatchlistConfig,
)
from core.event_calendar import EventCalendar, EventCalendarError, load_event_calendar
from core.params import ParamsError, SignalParams, load_params

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG_DIR = REPO_ROOT / "config"
TELEGRAM_DEFAULT_API_BASE_URL = "https://api.telegram.org/bot"

ModelT = TypeVar("ModelT", bound=BaseModel)


class ConfigError(Exception):
    """Configuration that cannot be used; `problems` lists `file: key: what is wrong`."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))


def _parse_id_list(value: object) -> list[int]:
    if value is None or value == "":
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, list):
        return [int(v) for v in value]
    if isinstance(value, str):
        ids = []
        for part in value.replace(";", ",").split(","):
            part = part.strip()
            if not part:
                continue
            if not part.lstrip("-").isdigit():
                raise ValueError(f"{part!r} is not a numeric Telegram id")
            ids.append(int(part))
        return ids
    raise ValueError("expected a comma-separated list of numeric ids")


class Secrets(BaseSettings):
    """Everything that comes from the environment (see `.env.example`)."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=True
    )

    TELEGRAM_BOT_TOKEN: SecretStr | None = None
    TELEGRAM_ALLOWED_USERS: str = ""
    TELEGRAM_ALLOWED_CHATS: str = ""
    TELEGRAM_API_BASE_URL: str = TELEGRAM_DEFAULT_API_BASE_URL
    CENTAUR_DB_URL: SecretStr | None = Field(
        default=None, description="a database URL may carry a password"
    )
    CENTAUR_LIVE: bool = False
    CENTAUR_DATA_DIR: Path = Path("data")
    CENTAUR_LOG_LEVEL: str = "INFO"
    IBKR_HOST: str | None = None
    IBKR_PORT: int = 4002
    IBKR_CLIENT_ID: int = 17

    @field_validator("TELEGRAM_ALLOWED_USERS", "TELEGRAM_ALLOWED_CHATS")
    @classmethod
    def _ids(cls, value: str) -> str:
        _parse_id_list(value)
        return value

    @property
    def allowed_user_ids(self) -> frozenset[int]:
        return frozenset(_parse_id_list(self.TELEGRAM_ALLOWED_USERS))

    @property
    def allowed_chat_ids(self) -> frozenset[int]:
        return frozenset(_parse_id_list(self.TELEGRAM_ALLOWED_CHATS))


@dataclass(frozen=True, slots=True)
class BrokerCredentials:
    key_id: SecretStr
    secret_key: SecretStr


def credentials_for(account: AccountConfig, environ: dict[str, str]) -> BrokerCredentials | None:
    """`<PREFIX>_KEY_ID` and `<PREFIX>_SECRET_KEY` from the environment (or .env)."""
    if account.credentials_env is None:
        return None
    key = environ.get(f"{account.credentials_env}_KEY_ID")
    secret = environ.get(f"{account.credentials_env}_SECRET_KEY")
    if not key or not secret:
        return None
    return BrokerCredentials(SecretStr(key), SecretStr(secret))


@dataclass(frozen=True)
class Settings:
    config_dir: Path
    watchlist: WatchlistConfig
    risk: RiskConfig
    protection: ProtectionConfig
    notifications: NotificationsConfig
    accounts: AccountsConfig
    sessions: SessionsConfig
    params: SignalParams
    events: EventCalendar
    secrets: Secrets
    environ: dict[str, str]

    @property
    def data_dir(self) -> Path:
        return self.secrets.CENTAUR_DATA_DIR

    def db_url(self) -> str:
        if self.secrets.CENTAUR_DB_URL is not None:
            return self.secrets.CENTAUR_DB_URL.get_secret_value()
        return f"sqlite:///{(self.data_dir / 'db' / 'centaur.db').as_posix()}"

    def credentials(self, account_name: str) -> BrokerCredentials | None:
        return credentials_for(self.accounts.get(account_name), self.environ)

    def secret_values(self) -> list[str]:
        """Every secret string, for the log redactor."""
        values = []
        if self.secrets.TELEGRAM_BOT_TOKEN is not None:
            values.append(self.secrets.TELEGRAM_BOT_TOKEN.get_secret_value())
        if self.secrets.CENTAUR_DB_URL is not None:
            values.extend(_url_password(self.secrets.CENTAUR_DB_URL.get_secret_value()))
        for account in self.accounts.accounts:
            creds = credentials_for(account, self.environ)
            if creds is not None:
                values += [creds.key_id.get_secret_value(), creds.secret_key.get_secret_value()]
        return [v for v in values if v]


def _url_password(url: str) -> list[str]:
    from urllib.parse import urlsplit

    try:
        password = urlsplit(url).password
    except ValueError:
        return []
    return [password] if password else []


def _format_validation_error(file: Path, error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key (typo?)"
        elif item["type"] == "missing":
            message = "required key is missing"
        problems.append(f"{file}: {key}: {message}")
    return problems


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError([f"{path}: file is missing"]) from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML: {exc}"]) from exc


def load_model(path: Path, model: type[ModelT]) -> ModelT:
    document = _read_yaml(path)
    if not isinstance(document, dict):
        raise ConfigError([f"{path}: (top level): expected a mapping of keys to values"])
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(path, exc)) from exc


CONFIG_FILES: dict[str, type[BaseModel]] = {
    "symbols.yaml": WatchlistConfig,
    "risk.yaml": RiskConfig,
    "protection.yaml": ProtectionConfig,
    "notifications.yaml": NotificationsConfig,
    "accounts.yaml": AccountsConfig,
    "sessions.yaml": SessionsConfig,
}


def resolve_config_dir(explicit: Path | None = None) -> Path:
    if explicit is not None:
        return explicit
    from_env = os.environ.get("CENTAUR_CONFIG_DIR")
    return Path(from_env) if from_env else DEFAULT_CONFIG_DIR


def load_settings(
    config_dir: Path | None = None,
    *,
    env_file: Path | None = Path(".env"),
    environ: dict[str, str] | None = None,
) -> Settings:
    """Load and validate everything; collects every problem before refusing."""
    directory = resolve_config_dir(config_dir)
    env = dict(os.environ if environ is None else environ)
    if env_file is not None and env_file.exists():
        from dotenv import dotenv_values

        for key, value in dotenv_values(env_file).items():
            if value:  # an empty line in .env (as in .env.example) means "not set"
                env.setdefault(key, value)
    problems: list[str] = []
    loaded: dict[str, Any] = {}
    for name, model in CONFIG_FILES.items():
        try:
            loaded[name] = load_model(directory / name, model)
        except ConfigError as exc:
            problems.extend(exc.problems)
    params: SignalParams | None = None
    try:
        params = load_params(directory / "params.yaml")
    except ParamsError as exc:
        problems.append(str(exc))
    events: EventCalendar | None = None
    try:
        events = load_event_calendar(directory / "events.yaml")
    except EventCalendarError as exc:
        problems.append(str(exc))
    secrets: Secrets | None = None
    try:
        # model_validate skips the settings sources: values come only from `env` above.
        secrets = Secrets.model_validate(_secret_fields(env))
    except ValidationError as exc:
        problems.extend(
            f"environment: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
    if problems or params is None or events is None or secrets is None:
        raise ConfigError(problems)
    return Settings(
        config_dir=directory,
        watchlist=loaded["symbols.yaml"],
        risk=loaded["risk.yaml"],
        protection=loaded["protection.yaml"],
        notifications=loaded["notifications.yaml"],
        accounts=loaded["accounts.yaml"],
        sessions=loaded["sessions.yaml"],
        params=params,
        events=events,
        secrets=secrets,
        environ=env,
    )


def _secret_fields(env: dict[str, str]) -> dict[str, str]:
    return {name: env[name] for name in Secrets.model_fields if env.get(name)}
