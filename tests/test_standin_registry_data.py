"""The stand-in registries' data layer, in process: dirt schedules, the shared enterprise pool,
profiles, determinism, and the administrative units copy."""

from __future__ import annotations

import random
import time
import unicodedata
from dataclasses import replace
from pathlib import Path

import pytest
from stdnum.vn import mst

from connectors.vietnamese import repair_text
from local.registry.data import BAD_KINDS, bad_kind
from local.registry.enterprises import (
    POOL_SIZE,
    enterprise,
    name_variant,
    prominent,
    province_range,
    registered_in,
)
from local.registry.entities import ENTITY_PATHS
from local.registry.profiles import load_profiles
from local.registry.reference import build as reference_build
from local.registry.reference import new_province_codes, province
from local.registry.registries import RegistryData
from local.registry.store import RecordStore
from local.registry.synth import (
    UPDATED_AT_FIRST,
    UPDATED_AT_LAST,
    KindSchedule,
    Timeline,
    dirty_text,
)

SHARED_REFERENCE = Path(__file__).resolve().parents[2] / "shared/reference/admin_units_2025"


# --- Dirt schedules -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shares",
    [{"a": 0.01, "b": 0.005, "c": 0.02}, {"a": 0.3, "b": 0.3}, {"x": 0.0125} | {"y": 0.0375}],
)
def test_schedule_counts_are_exact(shares: dict[str, float]):
    schedule = KindSchedule(shares)
    for records in (0, 1, 99, 1000, 12_345):
        scanned = [schedule.kind(i) for i in range(records)]
        counts = schedule.counts(records)
        assert counts == {kind: scanned.count(kind) for kind in shares}
        dirty = schedule.dirty_indices(records)
        assert dirty == [i for i, kind in enumerate(scanned) if kind is not None]
    big = schedule.counts(1_000_000)
    for kind, share in shares.items():
        assert big[kind] == round(share * 1_000_000)


def test_schedule_spreads_kinds_and_reproduces_the_single_registry_bad_kinds():
    legacy = KindSchedule(dict.fromkeys(BAD_KINDS, 0.05 / 4))
    assert [legacy.kind(i) for i in range(2000)] == [bad_kind(i, 0.05) for i in range(2000)]
    mixed = KindSchedule({"common": 0.03, "rare": 0.01})
    assert mixed.cycle == ["common", "common", "rare", "common"]  # smooth, not in runs
    with pytest.raises(ValueError, match="more than 1"):
        KindSchedule({"a": 0.7, "b": 0.5})
    with pytest.raises(ValueError, match=r"within 0\.\.1"):
        KindSchedule({"a": -0.1})


def test_timeline_inverse_is_exact():
    for records in (1, 7, 1000, 123_457):
        timeline = Timeline(records)
        rng = random.Random(records)
        probes = [UPDATED_AT_FIRST - 5, UPDATED_AT_LAST + 5] + [
            rng.randint(UPDATED_AT_FIRST, UPDATED_AT_LAST) for _ in range(200)
        ]
        probes += [timeline.updated_at(rng.randrange(records)) for _ in range(50)]
        for moment in probes:
            first = timeline.first_index_updated_since(moment)
            assert first == records or timeline.updated_at(first) >= moment
            assert first == 0 or timeline.updated_at(first - 1) < moment


# --- The enterprise pool ----------------------------------------------------------------------


def test_pool_enterprises_have_valid_unique_codes_and_a_home_province():
    rng = random.Random(7)
    sample = set(range(2000)) | {POOL_SIZE - 1 - k for k in range(2000)}
    sample |= {rng.randrange(POOL_SIZE) for _ in range(30_000)}
    for code in new_province_codes():  # block boundaries
        block = province_range(code)
        sample |= {block.start, block.stop - 1}
    codes = {}
    for i in sample:
        code, name, home = enterprise(i)
        assert mst.is_valid(code), (i, code)
        assert code not in codes, (i, codes.get(code))
        codes[code] = i
        assert i in province_range(home)
        assert province("old", registered_in(i)).merged_into == home
        assert unicodedata.is_normalized("NFC", name)
    with pytest.raises(IndexError):
        enterprise(POOL_SIZE)


def test_pool_is_fixed_whatever_the_registry_or_profile():
    """Other stand-ins (the exchanges) rely on the same enterprise for the same index."""
    assert enterprise(0) == enterprise(0)
    first = enterprise(0)
    assert first.province_code == "01" and first.mst.startswith("01")
    ranges = [province_range(code) for code in new_province_codes()]
    assert sum(len(r) for r in ranges) == POOL_SIZE
    assert province_range("37") == range(
        province_range("35", old=True).start, province_range("37", old=True).stop
    )
    assert prominent(12345, "38") in province_range("38")
    assert prominent(99, "36", old=True) in province_range("36", old=True)


def _name_key(name: str) -> str:
    """What an entity resolver would compare: NFC, case, spacing and legal-form abbreviations."""
    text = " ".join(unicodedata.normalize("NFC", name).casefold().split())
    for written, form in (
        ("cty tnhh", "công ty tnhh"),
        ("công ty cp", "công ty cổ phần"),
        ("ctcp", "công ty cổ phần"),
        ("công ty trách nhiệm hữu hạn một thành viên", "công ty tnhh mtv"),
        ("công ty trách nhiệm hữu hạn", "công ty tnhh"),
        ("dntn", "doanh nghiệp tư nhân"),
        ("htx", "hợp tác xã"),
    ):
        if text.startswith(written + " "):
            return form + text[len(written) :]
    return text


def test_name_variants_are_written_differently_but_name_the_same_enterprise():
    for i in (3, 50_000, 777_777):
        name = enterprise(i).name
        variants = [name_variant(name, k) for k in range(8)]
        assert variants[0] == name
        assert len(set(variants)) >= 6
        assert {_name_key(v) for v in variants} == {_name_key(name)}
    assert name_variant("Công ty TNHH Cơ khí An Phát", 1) == "Cty TNHH Cơ khí An Phát"
    assert name_variant("Công ty Cổ phần Dược liệu Hà", 1) == "Công ty CP Dược liệu Hà"
    assert name_variant("Công ty Cổ phần Dược liệu Hà", 2) == "CÔNG TY CỔ PHẦN DƯỢC LIỆU HÀ"
    assert not unicodedata.is_normalized("NFC", name_variant("Công ty TNHH Cơ khí", 5))


# --- Dirt applied to text ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["tcvn3_text", "vni_text"])
def test_legacy_mojibake_repairs_back_to_the_text(kind: str):
    text = "Nghiên cứu ứng dụng công nghệ sinh học tại tỉnh Hà Nam"
    spoiled = dirty_text(text, kind)
    assert spoiled != text
    assert repair_text(spoiled) == (text, kind.removesuffix("_text"))


# --- Profiles ---------------------------------------------------------------------------------


def test_profiles_cover_the_34_provinces_and_size_the_national_one():
    profiles = load_profiles()
    national = profiles.profile("national")
    codes = sorted(profiles.registries[r].province_code for r in national.registries)
    assert codes == new_province_codes()  # the 34 of the reference list
    total = sum(
        sum(national.records_for(profiles.registries[r]).values()) for r in national.registries
    )
    assert 4_500_000 <= total <= 5_500_000
    demo = profiles.profile("demo")
    assert set(demo.registries) == {"ninh_binh", "thanh_hoa", "nghe_an"}
    for registry_id in demo.registries:
        assert 1000 <= sum(demo.records_for(profiles.registries[registry_id]).values()) <= 5000
    ninh_binh = profiles.registries["ninh_binh"]
    assert [o.name for o in ninh_binh.merged_from] == ["ha_nam", "nam_dinh", "ninh_binh"]
    assert not profiles.registries["thanh_hoa"].merged_from


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("  ninh_binh:", "  ninh_binh:\n    colour: red"), "unknown key"),
        (("share: 0.25}", "share: 0.5}"), "add up to 1"),
        (('province_code: "37"', 'province_code: "99"'), "not one of the 34"),
        (("      st_task: 500", "      st_tasks: 500"), "unknown key"),
        (("    nfd_text: 0.01", "    nfd_text: 2"), "within 0..1"),
    ],
)
def test_broken_profiles_are_refused_with_the_place(tmp_path: Path, edit, message):
    from local.registry.profiles import PROFILES_YML

    text = PROFILES_YML.read_text(encoding="utf-8")
    assert edit[0] in text
    broken = tmp_path / "profiles.yml"
    broken.write_text(text.replace(edit[0], edit[1], 1), encoding="utf-8")
    with pytest.raises(ValueError, match=message) as raised:
        load_profiles(broken)
    assert str(broken) in str(raised.value)


# --- Determinism and scale --------------------------------------------------------------------


def _sample(data: RegistryData, entity: str) -> list[dict]:
    generator = data.generator(entity)
    return [generator.record(i) for i in range(0, generator.records, 37)]


def test_same_profile_same_records_other_seed_other_records():
    demo = load_profiles().profile("demo")
    first = RegistryData.for_profile(demo, "nghe_an")
    again = RegistryData.for_profile(demo, "nghe_an")
    reseeded = RegistryData.for_profile(replace(demo, seed=43), "nghe_an")
    for entity in ENTITY_PATHS:
        assert _sample(first, entity) == _sample(again, entity), entity
        assert _sample(first, entity) != _sample(reseeded, entity), entity


def test_the_national_profile_starts_without_generating_and_pages_from_anywhere():
    national = load_profiles().profile("national")
    started = time.perf_counter()
    registries = {r: RegistryData.for_profile(national, r) for r in national.registries}
    assert time.perf_counter() - started < 2.0
    store = registries["ho_chi_minh"].store("innovation_survey")
    assert store.records == 60_000  # scale 2
    page = store.page(after_seq=59_990, updated_since=None, limit=100)
    assert len(page.records) == 9 and page.has_more is False
    assert page.records[-1]["updated_at"] <= "2026-06-30T23:59:59Z"


def test_changeable_records_are_clean_and_never_repeated():
    demo = load_profiles().profile("demo")
    generator = RegistryData.for_profile(demo, "ninh_binh").generator("ip_right")
    repeated = {
        generator.target(i)[0]
        for i in range(generator.records)
        if generator.kind(i) in ("resent", "deleted")
    }
    brute = [i for i in range(generator.records) if generator.kind(i) is None and i not in repeated]
    assert [i for i in range(generator.records) if generator.changeable(i)] == brute
    assert generator.changeable_count() == len(brute)
    store = RecordStore(generator)
    with pytest.raises(ValueError, match="remain"):
        store.apply_changes(len(brute) + 1, 0)
    updated, deleted = store.apply_changes(len(brute) - 1, 1)
    assert len(set(updated + deleted)) == len(brute)


def test_reports_are_fewer_when_the_tasks_run_out():
    single = RegistryData.single(records=20, seed=3, bad_share=0.0)
    reports = single.store("result_application")
    assert 0 < reports.records < 300  # 20 tasks cannot give the demo's 300 reports
    times = [reports.key_of(i) for i in range(reports.records)]
    assert times == sorted(times)


@pytest.mark.skipif(not SHARED_REFERENCE.exists(), reason="no ../shared/reference here")
def test_the_administrative_units_copy_matches_the_shared_reference(tmp_path: Path):
    reference_build.build(SHARED_REFERENCE, tmp_path)
    here = Path(reference_build.__file__).parent
    for name in ("provinces.csv", "communes.csv"):
        assert (tmp_path / name).read_bytes() == (here / name).read_bytes(), name
