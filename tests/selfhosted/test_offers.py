"""Self-hosted offers, pure: simulated devices, the price table, bundles, picking GPUs."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from broker.settings import Settings
from providers.selfhosted.devices import parse_fake_gpus
from providers.selfhosted.offers import (
    DEFAULT_PRICES,
    build_offers,
    parse_prices,
    pick_devices,
)
from tests.selfhosted.support import real

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def test_fake_gpu_specs() -> None:
    devices = parse_fake_gpus("2xRTX 4090, 1x h100-80gb;A100-SXM4-40GB", "Lab 1")
    assert [(d.index, d.model, d.vram_gb, d.uuid) for d in devices] == [
        (0, "RTX 4090", 24, "GPU-sim-lab-1-0"),
        (1, "RTX 4090", 24, "GPU-sim-lab-1-1"),
        (2, "H100 SXM", 80, "GPU-sim-lab-1-2"),
        (3, "A100 40GB", 40, "GPU-sim-lab-1-3"),
    ]
    assert all(d.simulated and not d.busy for d in devices)
    assert parse_fake_gpus(None, "local") == parse_fake_gpus("  ", "local") == []


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("2xRTX 4900", "unknown GPU 'RTX 4900'.*RTX 4090"),
        ("0xRTX 4090", "declares no GPU"),
        ("65xL4", "at most 64"),
    ],
)
def test_bad_fake_gpu_specs_are_refused(spec: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_fake_gpus(spec, "local")


def test_bad_settings_fail_at_start_naming_the_setting() -> None:
    with pytest.raises(ValidationError, match="selfhosted_fake_gpus"):
        Settings(_env_file=None, selfhosted_fake_gpus="3xQuantum 9000")
    with pytest.raises(ValidationError, match="selfhosted_prices"):
        Settings(_env_file=None, selfhosted_prices={"H100": "-1"})
    settings = Settings(_env_file=None)
    assert settings.selfhosted_prices == DEFAULT_PRICES  # type: ignore[attr-defined]
    assert settings.selfhosted_region == "local"  # type: ignore[attr-defined]


def test_most_specific_price_wins() -> None:
    table = parse_prices(
        {"H100": "2.00", "h100 pcie": 1.75, "RTX4090": "0.40", "GTX 1080 Ti": "0.05", "*": "0.9"}
    )
    assert table.price_of("H100 SXM") == 2_000_000  # the family's price
    assert table.price_of("H100 NVL") == 2_000_000
    assert table.price_of("H100 PCIe") == 1_750_000  # its own price beats the family's
    assert table.price_of("RTX 4090") == 400_000
    assert table.price_of("NVIDIA GeForce GTX 1080 Ti") == 50_000  # unknown model, exact name
    assert table.price_of("L4") == 900_000  # the default
    assert parse_prices({"H100": "2"}).price_of("L4") is None


@pytest.mark.parametrize("bad", ["free", "-0.10", None, True])
def test_prices_must_be_amounts(bad: object) -> None:
    with pytest.raises(ValueError, match="price of 'L4'"):
        parse_prices({"L4": bad})


def test_offers_for_every_free_model_in_bundles() -> None:
    devices = [real(i, "H100 SXM", 80) for i in range(8)] + [real(8, "L4", 24)]
    allocated = {devices[0].uuid, devices[1].uuid, devices[2].uuid}  # 5 H100s left
    prices = parse_prices({"H100": "2.40", "L4": "0.45"})
    page = build_offers(devices, allocated, prices, "Berlin rack", NOW)
    shapes = {(o.gpu, o.gpu_count): o for o in page.offers}
    assert sorted(shapes) == [("H100 SXM", 1), ("H100 SXM", 2), ("H100 SXM", 4), ("L4", 1)]
    assert [shapes[("H100 SXM", n)].available_count for n in (1, 2, 4)] == [5, 2, 1]
    bundle = shapes[("H100 SXM", 4)]
    assert bundle.id == "selfhosted:berlin-rack:h100-sxm:4x"
    assert bundle.region == "Berlin rack"
    assert bundle.base_price_per_gpu_hour == 2_400_000
    assert (bundle.tier.value, bundle.instance_type.value) == ("on_demand", "container")
    assert bundle.interruption_probability == 0.0 and bundle.available
    assert bundle.ref == {
        "gpu": "H100 SXM",
        "vram_gb": "80",
        "gpu_count": "4",
        "simulated": "false",
    }
    assert page.skipped == []


def test_busy_and_allocated_gpus_are_not_offered() -> None:
    devices = [real(0, "RTX 4090", 24, busy=True), real(1, "RTX 4090", 24)]
    page = build_offers(devices, {devices[1].uuid}, parse_prices({"*": "1"}), "local", NOW)
    assert page.offers == []


def test_simulated_offers_say_so() -> None:
    devices = parse_fake_gpus("2xRTX 4090", "local")
    page = build_offers(devices, set(), parse_prices(DEFAULT_PRICES), "local", NOW)
    assert [o.id for o in page.offers] == [
        "selfhosted:sim:local:rtx-4090:1x",
        "selfhosted:sim:local:rtx-4090:2x",
    ]
    assert {o.region for o in page.offers} == {"local (simulated)"}
    assert {o.ref["simulated"] for o in page.offers} == {"true"}


def test_a_model_without_a_price_is_skipped_with_a_note() -> None:
    page = build_offers([real(0, "T4", 16)], set(), parse_prices({"H100": "2"}), "local", NOW)
    assert page.offers == []
    assert page.skipped == ["T4: no price in GPUBROKER_SELFHOSTED_PRICES and no '*'"]


def test_offer_ids_are_stable_while_gpus_come_and_go() -> None:
    devices = [real(i, "A100 80GB", 80) for i in range(4)]
    prices = parse_prices({"*": "1.3"})
    before = build_offers(devices, set(), prices, "local", NOW).offers
    after = build_offers(devices, {devices[3].uuid}, prices, "local", NOW).offers
    assert [o.id for o in after] == [o.id for o in before][:2]


def test_picking_gpus_for_an_offer() -> None:
    devices = [real(i, "RTX 4090", 24) for i in range(4)] + [real(4, "L4", 24)]
    prices = parse_prices({"*": "0.5"})
    page = build_offers(devices, set(), prices, "x", NOW)
    offers = {(o.gpu, o.gpu_count): o for o in page.offers}
    pair = offers[("RTX 4090", 2)]
    assert [d.index for d in pick_devices(devices, set(), pair)] == [0, 1]
    assert [d.index for d in pick_devices(devices, {devices[0].uuid}, pair)] == [1, 2]
    assert len(pick_devices(devices, {d.uuid for d in devices[:3]}, pair)) == 1  # short
    assert [d.index for d in pick_devices(devices, set(), offers[("L4", 1)])] == [4]
    simulated = replace(pair, ref={**pair.ref, "simulated": "true"})
    assert pick_devices(devices, set(), simulated) == []  # real devices never serve a sim offer
