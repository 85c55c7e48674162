"""The source catalogue: the shipped one loads, and a malformed one fails with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.catalogue import SYSTEMS, CatalogueError, host_pools, load_catalogue

SHIPPED = Path(__file__).resolve().parents[1] / "dags" / "sources.yml"

GOOD = """\
sources:
  - id: ninh_binh_registry
    name: Ninh Bình provincial STI registry
    province_code: "37"
    system: registry
    contract: registry-api-v1
    connection_id: ninh_binh_registry
    entities: [st_task, ip_right]
    schedule: "0 */6 * * *"
    owner: so-khcn-ninh-binh
    events:
      subscription: ninh-binh-registry
      signing_secret: ninh_binh_registry_events
  - id: national_exchange
    name: National technology exchange
    province_code: null
    system: exchange
    contract: exchange-api-v1
    connection_id: national_exchange
    entities: [listing, transaction]
    schedule: "20 * * * *"
    owner: techmart
"""


_OWNER = "    owner: so-khcn-ninh-binh\n"
_LATE_AFTER = "      signing_secret: ninh_binh_registry_events\n      max_pending_minutes: {}\n"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sources.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_catalogue_covers_three_provinces_every_system_and_entity():
    sources = load_catalogue(SHIPPED)
    assert {s.province_code for s in sources} == {"37", "38", "40", None}
    for system, kind in SYSTEMS.items():
        mine = [s for s in sources if s.system == system]
        assert mine, system
        assert all(s.entities == kind.entities for s in mine), system
    registries = [s for s in sources if s.system == "registry"]
    assert {s.province_code for s in registries} == {"37", "38", "40"}
    assert all(s.events is not None for s in sources if s.system != "spreadsheet_drop")


def test_a_good_catalogue_loads_with_its_event_subscription(tmp_path):
    registry, exchange = load_catalogue(_write(tmp_path, GOOD))
    assert registry.entities == ("st_task", "ip_right")
    assert registry.events.subscription == "ninh-binh-registry"
    assert registry.events.signing_secret == "ninh_binh_registry_events"
    assert (exchange.province_code, exchange.events) == (None, None)


def test_pools_bound_calls_per_source_host_and_late_events_have_a_limit(tmp_path):
    registry, exchange = load_catalogue(_write(tmp_path, GOOD))
    # Defaults: a pool of its own with 2 slots; events late after 15 minutes.
    assert host_pools([registry, exchange]) == {
        "source__ninh_binh_registry": 2,
        "source__national_exchange": 2,
    }
    assert registry.events.max_pending_minutes == 15
    shared = GOOD.replace(_OWNER, _OWNER + "    pool: {name: one_host, slots: 3}\n").replace(
        "    owner: techmart\n", "    owner: techmart\n    pool: {name: one_host, slots: 3}\n"
    )
    shared = shared.replace(
        "      signing_secret: ninh_binh_registry_events\n", _LATE_AFTER.format(60)
    )
    registry, exchange = load_catalogue(_write(tmp_path, shared))
    assert host_pools([registry, exchange]) == {"one_host": 3}
    assert registry.events.max_pending_minutes == 60


def test_sources_sharing_a_pool_must_agree_on_its_slots(tmp_path):
    text = GOOD.replace(_OWNER, _OWNER + "    pool: {name: one_host, slots: 3}\n").replace(
        "    owner: techmart\n", "    owner: techmart\n    pool: {name: one_host}\n"
    )
    message = r":15: pool .one_host. has 2 slots here and 3 at line 2"
    with pytest.raises(CatalogueError, match=message):
        load_catalogue(_write(tmp_path, text))


def test_a_duplicate_id_names_both_lines(tmp_path):
    first = GOOD.split("  - id: national_exchange", 1)[0]
    second = first.split("sources:\n", 1)[1]
    path = _write(tmp_path, first + second)
    with pytest.raises(CatalogueError, match=r"sources.yml:14: duplicate source id .* line 2"):
        load_catalogue(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("    owner: so-khcn-ninh-binh\n", ""), r":2: source is missing owner"),
        (("    owner: so", "    ownr: x\n    owner: so"), r":10: unknown key 'ownr'"),
        (('province_code: "37"', "province_code: 37"), r":4: province_code must be a quoted"),
        (("system: registry", "system: ftp"), r":5: unknown system 'ftp'"),
        (("contract: registry-api-v1", "contract: exchange-api-v1"), r":6: a registry speaks"),
        (("[st_task, ip_right]", "[st_task, rocket]"), r":8: unknown entity 'rocket'"),
        (("[st_task, ip_right]", "[st_task, listing]"), r":8: unknown entity 'listing' for a reg"),
        (("[st_task, ip_right]", "[st_task, st_task]"), r":8: entity 'st_task' listed twice"),
        (('"0 */6 * * *"', '"hourly"'), r":9: schedule must be a 5-field cron"),
        # Five fields are not enough: Airflow's croniter must accept it, and it must fire.
        (('"0 */6 * * *"', '"99 */6 * * *"'), r":9: schedule .*99 \*/6 .*out of range"),
        (('"0 */6 * * *"', '"a b c d e"'), r":9: schedule .*\[a b c d e\] is not acceptable"),
        (('"0 */6 * * *"', '"*/0 * * * *"'), r":9: schedule .*step '0'"),
        (('"0 */6 * * *"', '"0 0 31 2 *"'), r":9: schedule .*'0 0 31 2 \*' never fires"),
        (("      signing_secret: ninh_binh_registry_events\n", ""), r":12: events is missing"),
        (
            ("      subscription:", "      topic: x\n      subscription:"),
            r":12: unknown key 'topic'",
        ),
        (("id: ninh_binh_registry", "id: Ninh-Binh"), r":2: id 'Ninh-Binh' must be lower_snake"),
        (
            ("    owner: so-khcn", "    name: again\n    owner: so-khcn"),
            r":10: key 'name' repeated",
        ),
        (("sources:", "source:"), r":1: unknown top-level key 'source'"),
        (
            ("      signing_secret: ninh_binh_registry_events\n", _LATE_AFTER.format("0")),
            r":14: events.max_pending_minutes must be a whole number ≥ 1",
        ),
        ((_OWNER, _OWNER + "    pool: nb_host\n"), r":11: pool must be a mapping"),
        ((_OWNER, _OWNER + "    pool: {name: NB}\n"), r":11: pool.name must be lower_snake"),
        ((_OWNER, _OWNER + "    pool: {name: nb, slots: 0}\n"), r":11: pool.slots must be a whole"),
        ((_OWNER, _OWNER + "    pool: {name: nb, size: 2}\n"), r":11: unknown key 'size' in pool"),
    ],
)
def test_a_malformed_entry_fails_with_file_and_line(tmp_path, change, message):
    assert change[0] in GOOD
    path = _write(tmp_path, GOOD.replace(*change, 1))
    with pytest.raises(CatalogueError, match=message) as error:
        load_catalogue(path)
    assert str(path) in str(error.value)


def test_a_catalogue_that_is_not_utf8_names_the_file_line_and_byte(tmp_path):
    # "Bình" saved as Latin-1 (a legacy editor): ì is the lone byte 0xec.
    utf8 = GOOD.encode()
    offset = utf8.index("ì".encode())
    path = tmp_path / "sources.yml"
    path.write_bytes(utf8.replace("ì".encode(), "ì".encode("latin-1")))
    with pytest.raises(CatalogueError) as error:
        load_catalogue(path)
    assert str(error.value).startswith(f"{path}:3: not UTF-8 text (byte 0xec at offset {offset})")


def test_a_missing_catalogue_is_a_clear_error(tmp_path):
    with pytest.raises(CatalogueError, match="cannot read the source catalogue"):
        load_catalogue(tmp_path / "nope.yml")
