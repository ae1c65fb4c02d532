"""Where the client finds its broker and key: arguments, then the environment, then the profile.

The profile is `$XDG_CONFIG_HOME/gpubroker/config.toml` (`~/.config/...` without the variable),
written by `gpubroker login` with mode 0600 since it holds a secret:

    url = "https://broker.example.com"
    api_key = "gbk_..."
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8000"
URL_VARIABLE = "GPUBROKER_URL"
KEY_VARIABLE = "GPUBROKER_API_KEY"


def profile_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "gpubroker" / "config.toml"


@dataclass(frozen=True)
class Profile:
    url: str | None = None
    api_key: str | None = None


class ProfileError(Exception):
    """The profile file exists but cannot be read."""


def load_profile(path: Path | None = None) -> Profile:
    """The saved profile; an absent file is an empty profile."""
    path = path or profile_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Profile()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ProfileError(f"cannot read the profile {path}: {exc}") from None
    url, key = data.get("url"), data.get("api_key")
    return Profile(
        url=url if isinstance(url, str) else None, api_key=key if isinstance(key, str) else None
    )


def save_profile(profile: Profile, path: Path | None = None) -> Path:
    """Write the profile, readable by its owner only (0600, also when the file existed)."""
    path = path or profile_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # JSON strings are valid TOML basic strings for the characters a URL or key may hold.
    lines = [f"{name} = {json.dumps(value)}\n" for name, value in vars(profile).items() if value]
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.writelines(lines)
    return path


def remove_profile(path: Path | None = None) -> bool:
    """Delete the profile; False when there was none."""
    try:
        (path or profile_path()).unlink()
    except FileNotFoundError:
        return False
    return True


def resolve(url: str | None, api_key: str | None) -> tuple[str, str | None]:
    """The URL and key to use: given ones, then GPUBROKER_URL / GPUBROKER_API_KEY, then the
    profile, then the default URL (and no key)."""
    url = url or os.environ.get(URL_VARIABLE) or None
    api_key = api_key or os.environ.get(KEY_VARIABLE) or None
    if url is None or api_key is None:
        profile = load_profile()
        url = url or profile.url
        api_key = api_key or profile.api_key
    return (url or DEFAULT_URL).rstrip("/"), api_key
