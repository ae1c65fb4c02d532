"""`gpubroker login`/`logout`, `topup`, `ledger`, `budget` and `keys` against a live broker."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from broker.cli import app as cli
from broker.settings import CoreSettings
from tests.cli.live import Live, live_broker

CHECKOUT = "https://pay.example/checkout?pi={payment_intent_id}"


def gpubroker(live: Live, *args: str, profile_only: bool = False, **env: str) -> Result:
    """`gpubroker ARGS`; with `profile_only`, no URL or key in the environment."""
    environment: dict[str, str | None] = {**live.env()}
    if profile_only:
        environment.update(GPUBROKER_URL=None, GPUBROKER_API_KEY=None)
    environment.update(env)
    return CliRunner().invoke(cli, list(args), env=environment)


def error_line(result: Result) -> str:
    assert result.stdout == "" and "Traceback" not in result.output
    (line,) = result.stderr.splitlines()
    return line


def test_login_saves_a_private_profile_and_flags_and_environment_come_first(live: Live) -> None:
    refused = gpubroker(
        live, "login", "--url", live.url, "--api-key", "gbk_wrong", profile_only=True
    )
    assert refused.exit_code == 1 and "unauthorized" in error_line(refused)
    no_key = gpubroker(live, "login", "--url", live.url, profile_only=True)
    assert no_key.exit_code == 2 and "--api-key" in error_line(no_key)
    profile = live.config_home / "gpubroker" / "config.toml"
    assert not profile.exists()

    login = ["login", "--url", live.url, "--api-key", live.api_key]
    assert gpubroker(live, *login, profile_only=True).exit_code == 0
    assert stat.S_IMODE(os.stat(profile).st_mode) == 0o600
    assert live.api_key in profile.read_text()
    wallet = gpubroker(live, "wallet", profile_only=True)
    assert wallet.stdout.startswith("available $20.00")

    wrong_env = gpubroker(live, "wallet", profile_only=True, GPUBROKER_API_KEY="gbk_wrong")
    assert wrong_env.exit_code == 1 and "gpubroker login" in error_line(wrong_env)
    flag_wins = gpubroker(
        live, "--api-key", live.api_key, "wallet", profile_only=True, GPUBROKER_API_KEY="gbk_x"
    )
    assert flag_wins.exit_code == 0, flag_wins.output

    assert "removed" in gpubroker(live, "logout").stdout and not profile.exists()
    logged_out = gpubroker(live, "wallet", profile_only=True, GPUBROKER_URL=live.url)
    assert logged_out.exit_code == 1 and "unauthorized" in error_line(logged_out)


def test_topup_says_what_to_do_with_the_payment_intent(live: Live) -> None:
    result = gpubroker(live, "topup", "10")
    assert result.exit_code == 0, result.output
    assert "top-up " in result.stdout and "$10.00" in result.stdout
    assert "client secret:  pi_" in result.stdout and "gpubroker wallet" in result.stdout
    too_little = gpubroker(live, "topup", "1", "--json")
    assert too_little.exit_code == 1
    assert json.loads(too_little.stderr)["error"]["code"] == "invalid_request"


@pytest.fixture
def checkout_live(make_settings: Callable[..., CoreSettings], tmp_path: Path) -> Iterator[Live]:
    with live_broker(make_settings, tmp_path / "config", stripe_checkout_url=CHECKOUT) as broker:
        yield broker


def test_topup_prints_the_checkout_link_when_the_operator_has_one(checkout_live: Live) -> None:
    result = gpubroker(checkout_live, "topup", "$25")
    assert result.exit_code == 0, result.output
    assert "pay here: https://pay.example/checkout?pi=pi_" in result.stdout


def test_ledger_pages_and_budget_shows_and_sets(live: Live) -> None:
    first = gpubroker(live, "topup", "10")
    assert first.exit_code == 0
    one = gpubroker(live, "ledger", "--limit", "1")
    assert "grant" in one.stdout or "topup" in one.stdout
    every = gpubroker(live, "ledger", "--all", "-o", "csv").stdout.splitlines()
    assert every[0] == "ID,TIME,KIND,AMOUNT,BALANCE,HELD,REFERENCE" and len(every) >= 2
    assert any(",grant,$20.00," in row for row in every)

    assert "no monthly limit" in gpubroker(live, "budget").stdout
    setting = ["budget", "--limit", "50", "--alert-at", "0.5,0.9", "--low-balance", "5"]
    shown = gpubroker(live, *setting)
    assert shown.exit_code == 0, shown.output
    assert "monthly limit $50.00" in shown.stdout and "50%, 90%" in shown.stdout
    body = json.loads(gpubroker(live, "budget", "--json").stdout)
    assert Decimal(body["monthly_limit"]) == 50 and Decimal(body["low_balance"]) == 5
    bad = gpubroker(live, "budget", "--alert-at", "2")
    assert bad.exit_code == 2 and "--alert-at" in error_line(bad)
    cleared = gpubroker(live, "budget", "--no-limit")
    assert "no monthly limit" in cleared.stdout


def test_keys_rotate_updates_the_profile_and_retires_the_old_key(live: Live) -> None:
    login = ["login", "--url", live.url, "--api-key", live.api_key]
    assert gpubroker(live, *login, profile_only=True).exit_code == 0
    listed = gpubroker(live, "keys", profile_only=True)
    assert listed.exit_code == 0 and "yes" in listed.stdout

    rotated = gpubroker(live, "keys", "rotate", profile_only=True)
    assert rotated.exit_code == 0, rotated.output
    assert "shown once" in rotated.stdout and "now uses the new key" in rotated.stdout
    assert live.api_key not in (live.config_home / "gpubroker" / "config.toml").read_text()
    assert gpubroker(live, "wallet", profile_only=True).exit_code == 0
    old = gpubroker(live, "wallet", profile_only=True, GPUBROKER_API_KEY=live.api_key)
    assert old.exit_code == 1 and "unauthorized" in error_line(old)

    missing = gpubroker(live, "keys", "revoke", "key_nope", profile_only=True)
    assert missing.exit_code == 1 and "gpubroker keys" in error_line(missing)
