"""connectors.standardise: field specs loaded from YAML, applied to records."""

from __future__ import annotations

import copy
import unicodedata
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectors.standardise import Standardiser, load_field_specs

CONTRACTS = Path(__file__).resolve().parents[2] / "connectors" / "contracts"

SPEC = """\
entities:
  st_task:
    title: text
    host_organisation_name: text
    budget_state_million_vnd: {kind: amount, unit: million_vnd}
    budget_other_vnd: {kind: amount, unit: vnd}
    start_date: date
    end_date: {kind: date, earliest: 2000-01-01, latest: "2040-12-31"}
    host_enterprise_code: mst
    application_number: {kind: ip_application_number, type_field: ip_type}
    count_of_things: number
  ip_right:
    number: ip_application_number
"""

CLEAN = {
    "id": "NB-2023-DT-0042",
    "version": 3,
    "updated_at": "2024-03-05T08:15:00Z",
    "deleted": False,
    "title": "Nghiên cứu ứng dụng công nghệ IoT trong sản xuất lúa tại Ninh Bình",
    "host_organisation_name": "Công ty Cổ phần Công nghệ Hà Nam",
    "budget_state_million_vnd": 1250,
    "budget_other_vnd": 350500000.5,
    "start_date": "2024-03-05",
    "end_date": "2026-12-31",
    "host_enterprise_code": "0101234565",
    "application_number": "1-2023-01234",
    "ip_type": "invention",
    "count_of_things": 7,
    "task_code": "C«ng",  # not in the spec: never touched
}


@pytest.fixture(scope="module")
def st_task(tmp_path_factory: pytest.TempPathFactory) -> Standardiser:
    path = tmp_path_factory.mktemp("spec") / "test_api_v1.fields.yml"
    path.write_text(SPEC, encoding="utf-8")
    specs = load_field_specs(path)
    assert set(specs) == {"st_task", "ip_right"}
    return specs["st_task"]


def test_a_clean_record_is_not_copied(st_task: Standardiser) -> None:
    outcome = st_task.apply(CLEAN)
    assert (outcome.record, outcome.repairs, outcome.issues) == (None, None, None)


def test_absent_and_null_fields_are_skipped(st_task: Standardiser) -> None:
    outcome = st_task.apply({"id": "x", "title": None, "start_date": None})
    assert (outcome.record, outcome.repairs, outcome.issues) == (None, None, None)


def test_dirty_values_are_repaired_and_recorded(st_task: Standardiser) -> None:
    title = "Công nghệ sinh học"
    record = dict(
        CLEAN,
        title=b"C\xabng ngh\xd6 sinh h\xe4c".decode("cp1252"),  # TCVN3 read as cp1252
        host_organisation_name=unicodedata.normalize("NFD", "Công ty Hà Nam"),
        budget_state_million_vnd="1,5 tỷ",
        budget_other_vnd="350.500.000",
        start_date="05/03/2024",
        host_enterprise_code="0101.234.565",
        application_number="1 2023 01234",
        count_of_things="1.234",
    )
    original = copy.deepcopy(record)
    outcome = st_task.apply(record)

    assert record == original  # the input is what lands as the raw payload
    assert outcome.issues is None
    assert outcome.record == dict(
        CLEAN,
        title=title,
        host_organisation_name="Công ty Hà Nam",
        budget_state_million_vnd=1500,
        budget_other_vnd=350500000,
        start_date="2024-03-05",
        application_number="1-2023-01234",
        count_of_things=1234,
    )
    assert outcome.repairs == [
        {"field": "title", "repair": "tcvn3", "from": record["title"], "to": title},
        {
            "field": "host_organisation_name",
            "repair": "nfc",
            "from": record["host_organisation_name"],
            "to": "Công ty Hà Nam",
        },
        {
            "field": "budget_state_million_vnd",
            "repair": "amount",
            "from": "1,5 tỷ",
            "to": 1500,
            "unit": "million_vnd",
            "conversion": "tỷ đồng → million VND",
        },
        {
            "field": "budget_other_vnd",
            "repair": "amount",
            "from": "350.500.000",
            "to": 350500000,
            "unit": "vnd",
            "conversion": None,
        },
        {"field": "start_date", "repair": "date", "from": "05/03/2024", "to": "2024-03-05"},
        {
            "field": "host_enterprise_code",
            "repair": "mst",
            "from": "0101.234.565",
            "to": "0101234565",
        },
        {
            "field": "application_number",
            "repair": "ip_application_number",
            "from": "1 2023 01234",
            "to": "1-2023-01234",
        },
        {"field": "count_of_things", "repair": "number", "from": "1.234", "to": 1234},
    ]
    # Everything lands as JSON.
    assert orjson.loads(orjson.dumps(outcome.record)) == outcome.record
    assert orjson.loads(orjson.dumps(outcome.repairs)) == outcome.repairs


def test_fractional_values_become_floats(st_task: Standardiser) -> None:
    outcome = st_task.apply(
        {"budget_state_million_vnd": "350.500.000 đ", "count_of_things": "12,5"}
    )
    assert outcome.record == {"budget_state_million_vnd": 350.5, "count_of_things": 12.5}
    assert type(outcome.record["count_of_things"]) is float


def test_what_cannot_be_repaired_is_an_issue_and_keeps_its_value(st_task: Standardiser) -> None:
    record = dict(
        CLEAN,
        title="Công nghệ",  # clean
        host_enterprise_code="0101234568",
        budget_state_million_vnd="1,5 USD",
        start_date="31/02/2024",
        end_date="01/01/2041",
        count_of_things="1.23.4",
        application_number="1-2023-00012",
        ip_type="nhãn hiệu",
    )
    outcome = st_task.apply(record)
    assert outcome.record is None  # nothing was changed: the title was clean
    assert outcome.repairs is None
    assert outcome.issues == [
        "budget_state_million_vnd: '1,5 USD' has an unknown unit 'USD'",
        "start_date: '31/02/2024' is not a valid date: day is out of range for month",
        "end_date: '01/01/2041' is after 2040-12-31",
        "host_enterprise_code: '0101234568' fails the MST check digit",
        "application_number: '1-2023-00012' is an invention application number (type 1),"
        " not a trademark (type 4)",
        "count_of_things: '1.23.4' is not a Vietnamese number: '.' separates thousands and must be"
        " followed by exactly three digits (a decimal is written with ',')",
    ]


def test_repairs_and_issues_together(st_task: Standardiser) -> None:
    record = {"title": b"Co\xe2ng nghe\xe4".decode("cp1252"), "host_enterprise_code": 101234565}
    outcome = st_task.apply(record)
    assert outcome.record == {"title": "Công nghệ", "host_enterprise_code": 101234565}
    assert [r["repair"] for r in outcome.repairs or []] == ["vni"]
    assert outcome.issues == [
        "host_enterprise_code: 101234565 is not text (an MST is a string of digits; a number"
        " loses its zeros)"
    ]


@pytest.mark.parametrize(
    ("field", "value", "issue"),
    [
        ("title", 4.5, "title: 4.5 is not text"),
        ("count_of_things", True, "count_of_things: True is not a number"),
        ("count_of_things", [1], "count_of_things: [1] is not a number"),
        ("start_date", 20240305, "start_date: 20240305 is not a date"),
        ("start_date", "2024-02-30", "start_date: '2024-02-30' is not a valid date"),
        ("start_date", "1944-12-31", "start_date: '1944-12-31' is before 1945-09-02"),
        ("budget_state_million_vnd", {"v": 1}, "is not an amount"),
        ("application_number", 1202301234, "is not an IP application number"),
    ],
)
def test_values_of_the_wrong_type_are_issues(
    st_task: Standardiser, field: str, value: Any, issue: str
) -> None:
    outcome = st_task.apply({field: value})
    assert outcome.record is None
    assert outcome.issues is not None and issue in outcome.issues[0]


def test_the_type_field_may_be_named_in_vietnamese_even_as_mojibake(st_task: Standardiser) -> None:
    for ip_type in ("Nhãn hiệu", "trademark", b"Nh\xb7n hi\xd6u".decode("cp1252")):
        outcome = st_task.apply({"application_number": "4-2023-00012", "ip_type": ip_type})
        assert outcome.issues is None, ip_type
    outcome = st_task.apply({"application_number": "4-2023-00012", "ip_type": "patent"})
    assert outcome.issues and "unknown IP type 'patent'" in outcome.issues[0]


def test_only_text_fields_get_text_repair(tmp_path: Path) -> None:
    path = tmp_path / "x.fields.yml"
    path.write_text("entities:\n  e:\n    name: text\n", encoding="utf-8")
    standardiser = load_field_specs(path)["e"]
    mojibake = b"C\xabng ngh\xd6".decode("cp1252")
    outcome = standardiser.apply({"name": mojibake, "code": mojibake})
    assert outcome.record == {"name": "Công nghệ", "code": mojibake}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("entities:\n  e:\n    f: colour\n", "entities.e.f: unknown kind 'colour'"),
        ("entities:\n  e:\n    f: {kind: amount}\n", "entities.e.f: kind 'amount' needs 'unit'"),
        ("entities:\n  e:\n    f: {kind: amount, unit: usd}\n", "entities.e.f: unit 'usd'"),
        (
            "entities:\n  e:\n    f: {kind: text, unit: vnd}\n",
            "entities.e.f: unknown key(s) ['unit']",
        ),
        ("entities:\n  e:\n    f: {kind: date, earliest: soon}\n", "entities.e.f.earliest"),
        ("entities:\n  e:\n    f: [text]\n", "entities.e.f: expected a kind"),
        ("entities:\n  e: text\n", "entities.e: expected a mapping"),
        ("entities:\n  e:\n    f: text\nversion: 2\n", "unknown top-level key(s) ['version']"),
        ("- text\n", "expected a mapping with the key 'entities'"),
        ("entities: {}\n", "'entities' must map"),
        ("entities:\n  e:\n    f: {kind: ip_application_number, type_field: f}\n", "itself"),
        ("entities: [\n", "not valid YAML"),
    ],
)
def test_invalid_specs_name_the_file_and_the_field(tmp_path: Path, spec: str, message: str) -> None:
    path = tmp_path / "broken.fields.yml"
    path.write_text(spec, encoding="utf-8")
    with pytest.raises(ValueError) as caught:
        load_field_specs(path)
    assert str(caught.value).startswith(str(path))
    assert message in str(caught.value)


@pytest.mark.parametrize("path", sorted(CONTRACTS.glob("*.fields.yml")), ids=lambda p: p.name)
def test_every_contract_field_spec_loads(path: Path) -> None:
    assert load_field_specs(path)


def test_a_spreadsheet_number_in_a_text_or_mst_field_becomes_its_digits(
    st_task: Standardiser,
) -> None:
    outcome = st_task.apply({"title": 20312, "host_enterprise_code": 2700100229})
    assert outcome.issues is None
    assert outcome.record == {"title": "20312", "host_enterprise_code": "2700100229"}
    assert [(r["repair"], r["from"]) for r in outcome.repairs or []] == [
        ("number_as_text", 20312),
        ("mst", 2700100229),
    ]


def test_a_negotiable_price_is_no_price_not_an_issue(st_task: Standardiser) -> None:
    for word in ("Thỏa thuận", "thoả thuận ", "Liên hệ"):
        outcome = st_task.apply({"budget_state_million_vnd": word})
        assert outcome.issues is None, word
        assert outcome.record == {"budget_state_million_vnd": None}
        assert [r["repair"] for r in outcome.repairs or []] == ["negotiable"]
    outcome = st_task.apply({"budget_state_million_vnd": "hỏi giá"})
    assert outcome.issues and "not an amount" in outcome.issues[0]
