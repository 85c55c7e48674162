"""The stand-in registries of a profile, over real HTTP: every entity against the OpenAPI
contract, the dirt they carry (counted from the records themselves and compared with
/_standin/stats), pre-merger records, cross-registry enterprises, and separate credentials.

One server serves the demo profile's three registries (Ninh Bình, Thanh Hóa, Nghệ An) for the
whole module; tests that change data start their own.
"""

from __future__ import annotations

import unicodedata
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import requests
from openapi_core import Config, OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from stdnum.vn import mst

from connectors.registry_api import RegistryClient
from connectors.vietnamese import repair_text
from local.registry.entities import BAD_KINDS, ENTITY_PATHS, unit_date
from local.registry.ip import IP_TYPES
from local.registry.process import RunningRegistry, run_registries, run_registry
from local.registry.profiles import load_profiles
from local.registry.reference import communes, lower_unit_word, province
from local.registry.registries import RegistryData
from tests.test_standin_registry import CONTRACT, known_field_codes, observed_defect

REGISTRIES = ("ninh_binh", "thanh_hoa", "nghe_an")
MERGER = "2025-07-01"

# Where each entity keeps what the dirt kinds spoil (see local/registry/*.py).
TEXT_FIELDS = {
    "st_task": ("title", "host_organisation_name", "principal_investigator"),
    "result_application": ("effect", "application_place", "beneficiary_enterprise_name"),
    "ip_right": ("title", "applicant_name", "applicant_address"),
    "organisation": ("name", "address"),
    "expert": ("full_name", "organisation_name", "specialisation"),
    "technology": ("name", "description", "owner_name", "address"),
    "technology_demand": ("description", "enterprise_name", "address"),
    "innovation_project": ("project_name", "enterprise_name", "address"),
    "innovation_survey": ("enterprise_name", "address"),
    "capability_assessment": ("enterprise_name", "address"),
}
MST_FIELD = {
    "st_task": "host_organisation_code",
    "result_application": "beneficiary_enterprise_code",
    "ip_right": "applicant_enterprise_code",
    "organisation": "enterprise_code",
    "technology": "owner_enterprise_code",
    "technology_demand": "enterprise_code",
    "innovation_project": "enterprise_code",
    "innovation_survey": "enterprise_code",
    "capability_assessment": "enterprise_code",
}
NAME_FIELD = {
    "result_application": "beneficiary_enterprise_name",
    "ip_right": "applicant_name",
    "organisation": "name",
    "technology": "owner_name",
    "technology_demand": "enterprise_name",
    "innovation_project": "enterprise_name",
    "innovation_survey": "enterprise_name",
    "capability_assessment": "enterprise_name",
}
AMOUNT_FIELDS = (
    "budget_state_million_vnd", "revenue_million_vnd", "budget_million_vnd",
    "support_amount_million_vnd", "rd_expenditure_million_vnd",
)  # fmt: skip
# Dates a record holds as of its update (planned task dates may lie ahead).
EVENT_DATES = (
    "report_date", "filing_date", "publication_date", "grant_date", "st_registration_date",
    "established_date", "registered_date", "posted_date", "decision_date", "submitted_date",
    "assessment_date",
)  # fmt: skip


@pytest.fixture(scope="module")
def contract() -> OpenAPI:
    config = Config(extra_media_type_deserializers={"application/problem+json": orjson.loads})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return OpenAPI.from_file_path(str(CONTRACT), config=config)


@pytest.fixture(scope="module")
def registries() -> Iterator[dict[str, RunningRegistry]]:
    with run_registries("demo", list(REGISTRIES)) as running:
        yield running


class Session:
    """A token-holding session on one registry, optionally validating against the contract."""

    def __init__(self, registry: RunningRegistry, contract: OpenAPI | None = None) -> None:
        self.registry, self.contract = registry, contract
        self.http = requests.Session()
        self.http.trust_env = False
        self._token: str | None = None

    def token(self) -> str:
        if self._token is None:
            response = self.http.post(
                self.registry.base_url + "/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.registry.client_id,
                    "client_secret": self.registry.client_secret,
                },
                timeout=30,
            )
            assert response.status_code == 200, response.text
            self._token = response.json()["access_token"]
        return self._token

    def get(self, path: str, params: dict[str, Any] | None = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token()}"}
        response = self.http.get(
            self.registry.base_url + path, params=params, headers=headers, timeout=30
        )
        if self.contract is not None:
            request = RequestsOpenAPIRequest(response.request)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                self.contract.validate_request(request)
                self.contract.validate_response(request, RequestsOpenAPIResponse(response))
        return response

    def traverse(self, path: str, limit: int = 1000, **params: Any) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        query: dict[str, Any] = {"limit": limit, **params}
        while True:
            response = self.get(f"/v1/{path}", query)
            assert response.status_code == 200, response.text
            page = response.json()
            records += page["data"]
            if not page["has_more"]:
                return records
            query = {"limit": limit, "cursor": page["next_cursor"]}

    def stats(self) -> dict[str, Any]:
        return self.http.get(self.registry.base_url + "/_standin/stats", timeout=30).json()


@pytest.fixture(scope="module")
def everything(registries: dict[str, RunningRegistry]) -> dict[str, dict[str, list[dict]]]:
    """registry -> entity -> every record of a full extraction, in order."""
    return {
        registry_id: {
            entity: Session(registry).traverse(path) for entity, path in ENTITY_PATHS.items()
        }
        for registry_id, registry in registries.items()
    }


# --- Contract -------------------------------------------------------------------------------


@pytest.mark.parametrize("entity", list(ENTITY_PATHS))
def test_a_page_of_every_entity_conforms_to_the_contract(
    registries: dict[str, RunningRegistry], contract: OpenAPI, entity: str
):
    for registry in registries.values():
        session = Session(registry, contract)
        page = session.get(f"/v1/{ENTITY_PATHS[entity]}", {"limit": 100}).json()
        assert len(page["data"]) == 100 and page["has_more"]
        # A later page too: past the 2025 merger the codes change, dirt is spread evenly.
        since = {"updated_since": "2025-09-01T00:00:00Z", "limit": 100}
        later = session.get(f"/v1/{ENTITY_PATHS[entity]}", since).json()["data"]
        assert later and all(r["updated_at"] >= "2025-09-01" for r in later)


def test_every_field_served_is_declared_by_the_contract(everything):
    """Drift detection compares landed records with the contract: nothing may be undeclared."""
    from connectors.drift import record_shape

    for registry_id, entities in everything.items():
        for entity, records in entities.items():
            shape = record_shape("registry-api-v1", entity)
            served = {key for record in records for key in record}
            assert served <= set(shape.fields), (registry_id, entity, served - set(shape.fields))
            assert shape.required <= served, (entity, shape.required - served)


# --- Dirt -----------------------------------------------------------------------------------


def observed_kind(entity: str, record: dict[str, Any], earlier: dict[str, int]) -> str | None:
    """The defect or dirt a record shows, judged from its content (and the ids served before)."""
    if record["deleted"]:
        return "deleted"
    if (
        record["id"] is not None
        and earlier.get(record["id"], record["version"]) < record["version"]
    ):
        return "resent"
    if entity == "st_task":
        defect = observed_defect(record, FIELD_CODES)
        if defect is not None:
            return defect
    for field in TEXT_FIELDS[entity]:
        value = record.get(field)
        if isinstance(value, str):
            if not unicodedata.is_normalized("NFC", value):
                return "nfd_text"
            repair = repair_text(value)[1]
            if repair in ("tcvn3", "vni"):
                return f"{repair}_text"
    code = record.get(MST_FIELD.get(entity, ""))
    if code is not None and not mst.is_valid(code):
        return "mst_check_digit"
    if entity == "ip_right" and record["application_number"][0] != str(IP_TYPES[record["ip_type"]]):
        return "ip_type_digit"
    if any(str(record.get(f))[:4] in ("1900", "2099") for f in EVENT_DATES):
        return "date_out_of_range"
    if any((record.get(f) or 0) >= 1_000_000 for f in AMOUNT_FIELDS):  # > a trillion VND
        return "amount_wrong_unit"
    return None


FIELD_CODES = known_field_codes()


def test_dirt_seen_in_the_records_matches_the_stats(registries, everything):
    for registry_id, entities in everything.items():
        stats = Session(registries[registry_id]).stats()
        assert stats["registry"] == registry_id
        for entity, records in entities.items():
            earlier: dict[str, int] = {}
            seen = Counter()
            for record in records:
                seen[observed_kind(entity, record, earlier)] += 1
                if record["id"] is not None:
                    earlier.setdefault(record["id"], record["version"])
            expected = stats["entities"][entity]
            assert len(records) == expected["records"] > 0
            counted = {**expected["bad"], **expected["dirt"]}
            assert {k: n for k, n in seen.items() if k is not None} == {
                k: n for k, n in counted.items() if n
            }, (registry_id, entity)
            assert seen[None] == len(records) - sum(counted.values())
            if len(records) >= 250:  # enough records for every kind the entity can carry
                assert all(n > 0 for n in expected["dirt"].values()), (entity, expected["dirt"])
        assert stats["records"] == stats["entities"]["st_task"]["records"]
        assert set(stats["bad"]) == set(BAD_KINDS)


def test_resent_and_deleted_records_repeat_an_earlier_one_with_a_higher_version(everything):
    records = everything["thanh_hoa"]["ip_right"]
    first = {}
    repeats = 0
    for record in records:
        if record["id"] in first:
            repeats += 1
            original = first[record["id"]]
            assert record["version"] > original["version"]
            assert record["updated_at"] >= original["updated_at"]
            ignored = {"version": 0, "updated_at": "", "deleted": False}
            assert {**record, **ignored} == {**original, **ignored}
        else:
            first[record["id"]] = record
            assert record["version"] == 1
    assert repeats > 0


# --- Pre-merger records and administrative units --------------------------------------------


def codes(period: str, province_code: str) -> set[str]:
    return {commune.code for commune in communes(period, province_code)}


def test_ninh_binh_carries_ha_nam_and_nam_dinh_records_with_old_codes(everything):
    old = {"ha_nam": "35", "nam_dinh": "36", "ninh_binh": "37"}
    origins = Counter()
    for entity, records in everything["ninh_binh"].items():
        for record in records:
            origin = record["origin_registry"]
            origins[entity, origin] += 1
            province = (
                record.get("province_code")
                or record.get("applicant_province_code")
                or (record.get("application_province_code"))
            )
            commune = (
                record.get("commune_code")
                or record.get("applicant_commune_code")
                or (record.get("application_commune_code"))
            )
            if record["updated_at"] < MERGER:
                for field in EVENT_DATES:
                    value = record.get(field)
                    if value and not value.startswith(("1900", "2099")):
                        assert value < MERGER, (field, record)
            dated = unit_date(entity, record)
            if dated.startswith(("1900", "2099")) or _swapped_dates(entity, record):
                continue  # its date was spoiled on purpose
            # Codes are those of the record's own date (as its suite reads them), not of its
            # last update: a record filed in June 2025 and updated in August is Nam Định's.
            if dated < MERGER:
                assert origin in old, record
                assert province == old[origin], record
                if commune is not None:
                    assert commune in codes("old", old[origin]), record
            else:
                assert origin == "ninh_binh" and province == "37", record
                if commune is not None:
                    assert commune in codes("new", "37"), record
    for entity in ENTITY_PATHS:
        assert origins[entity, "ha_nam"] > 0 and origins[entity, "nam_dinh"] > 0, entity
    # Pre-merger ids use the old registries' prefixes.
    tasks = everything["ninh_binh"]["st_task"]
    assert any(t["id"] and t["id"].startswith("HNA-") for t in tasks)
    assert any(t["id"] and t["id"].startswith("NDI-") for t in tasks)


def _swapped_dates(entity: str, record: dict) -> bool:
    """An S&T task spoiled with its end before its start (its start date is not its own)."""
    return entity == "st_task" and record["end_date"] < record["start_date"]


@pytest.mark.parametrize(("registry_id", "code"), [("thanh_hoa", "38"), ("nghe_an", "40")])
def test_communes_are_old_before_the_merger_and_new_after(everything, registry_id, code):
    before = after = 0
    dated = [("organisation", r) for r in everything[registry_id]["organisation"]]
    dated += [("ip_right", r) for r in everything[registry_id]["ip_right"]]
    for entity, record in dated:
        day = unit_date(entity, record)
        if day.startswith(("1900", "2099")):
            continue  # its date was spoiled on purpose
        commune = record.get("commune_code") or record["applicant_commune_code"]
        period = "old" if day < MERGER else "new"
        assert commune in codes(period, code), record
        assert record["origin_registry"] == registry_id
        before, after = before + (period == "old"), after + (period == "new")
    assert before > 0 and after > 0
    assert codes("old", code) != codes("new", code)


PLACE_FIELDS = {  # entity -> (province, commune, address) fields
    "ip_right": ("applicant_province_code", "applicant_commune_code", "applicant_address"),
    "result_application": (
        "application_province_code", "application_commune_code", "application_place",
    ),
    "expert": ("province_code", None, None),
    "st_task": ("province_code", None, None),
}  # fmt: skip


@pytest.mark.parametrize("registry_id", REGISTRIES)
def test_unit_codes_and_addresses_are_those_of_the_records_own_date(registry_id):
    """Province, commune and address text of every record are in force, and agree, on the date
    the record's suite reads them on, whatever the date of its last update."""
    data = RegistryData.for_profile(load_profiles().profile("demo"), registry_id)
    wrong, dated_before_updated_after = [], 0
    for entity in ENTITY_PATHS:
        generator = data.generator(entity)
        fields = PLACE_FIELDS.get(entity, ("province_code", "commune_code", "address"))
        for i in range(generator.records):
            if generator.kind(i) not in (None, "resent", "deleted"):
                continue  # dirt changes dates, codes or text on purpose
            record = generator.record(i)
            day = unit_date(entity, record)
            period = "old" if day < MERGER else "new"
            dated_before_updated_after += period == "old" and record["updated_at"] >= MERGER
            code, commune, address = (record.get(f) if f else None for f in fields)
            try:
                unit = province(period, code)
            except KeyError:
                wrong.append((record["id"], day, "province", code))
                continue
            if commune is None:
                continue
            names = {c.code: c.name for c in communes(period, code)}
            if commune not in names:  # not in force then, or a commune of another province
                wrong.append((record["id"], day, "commune", code, commune))
            elif address is not None and not (
                lower_unit_word(names[commune]) in address and unit.in_address in address
            ):
                wrong.append((record["id"], day, "address", code, commune, address))
    assert wrong == []
    if registry_id == "ninh_binh":  # records whose last update is no guide to their codes
        assert dated_before_updated_after > 50


# --- References between entities ------------------------------------------------------------


def test_result_applications_report_on_accepted_tasks_of_the_same_registry(everything):
    for registry_id, entities in everything.items():
        tasks = {t["id"]: t for t in entities["st_task"] if t["id"] is not None}
        reports = entities["result_application"]
        keys = [(r["task_code"], r["report_year"]) for r in reports if r["version"] == 1]
        assert len(keys) == len(set(keys)) > 0
        for report in reports:
            task = tasks[report["task_code"]]
            assert task["status"] in ("accepted", "applied"), (registry_id, task)
            assert task["acceptance_rating"] in ("excellent", "passed")
            assert report["id"] == f"{task['id']}-BC{report['report_year']}"
            assert 1 <= report["report_year"] <= 5
            if not report["report_date"].startswith(("1900", "2099")):
                assert report["report_date"] > task["acceptance_date"]


def test_technologies_link_ip_applications_of_the_same_registry(everything):
    for entities in everything.values():
        numbers = {r["application_number"] for r in entities["ip_right"]}
        linked = [n for t in entities["technology"] for n in t["ip_application_numbers"]]
        assert linked and set(linked) <= numbers
        assert {n[0] for n in linked} <= {"1", "2"}  # patents and utility solutions


def test_surveys_have_one_answer_per_enterprise_and_year(everything):
    for entities in everything.values():
        for entity, year in (
            ("innovation_survey", "survey_year"),
            ("capability_assessment", "assessment_year"),
        ):
            keys = [
                (r["enterprise_code"][:10], r[year]) for r in entities[entity] if r["version"] == 1
            ]
            assert len(keys) == len(set(keys)), entity


def test_the_same_enterprise_appears_in_several_registries_with_different_names(everything):
    names: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for registry_id, entities in everything.items():
        for entity, field in NAME_FIELD.items():
            for record in entities[entity]:
                code = record[MST_FIELD[entity]]
                if code is not None and mst.is_valid(code) and record["version"] == 1:
                    names[code[:10]].add((registry_id, record[field]))
    shared = {code: written for code, written in names.items() if len({r for r, _ in written}) > 1}
    assert len(shared) >= 3
    differently = [code for code, written in shared.items() if len({n for _, n in written}) > 1]
    assert differently, shared
    # Inside one registry, too, an enterprise is written in more than one way.
    assert any(len({n for r, n in written if r == "ninh_binh"}) > 1 for written in names.values())


def test_experts_carry_personal_data(everything):
    experts = everything["nghe_an"]["expert"]
    for expert in experts:
        assert len(expert["citizen_id"]) == 12 and expert["citizen_id"].isdigit()
        assert expert["citizen_id"][1:3] == expert["province_code"]  # place-of-birth code
        assert expert["phone"].startswith("0") and "@" in expert["email"]
    assert len({e["citizen_id"] for e in experts}) > len(experts) * 0.9


def test_capability_scores_add_up_within_the_circular_maxima(everything):
    maxima = {"T": 30, "E": 20, "O": 19, "R": 17, "I": 14}
    for record in everything["ninh_binh"]["capability_assessment"]:
        assert len(record["criteria_scores"]) == 26
        for group, maximum in maxima.items():
            parts = [v for k, v in record["criteria_scores"].items() if k[0] == group]
            assert abs(sum(parts) - record["group_scores"][group]) < 1e-6
            assert 0 <= record["group_scores"][group] <= maximum
        assert abs(sum(record["group_scores"].values()) - record["total_score"]) < 1e-6
        assert record["total_score"] <= 100


# --- Several registries, one process --------------------------------------------------------


def test_each_registry_has_its_own_credentials_and_base_url(registries, contract):
    ninh_binh, thanh_hoa = registries["ninh_binh"], registries["thanh_hoa"]
    assert ninh_binh.base_url.endswith("/r/ninh_binh") and thanh_hoa.base_url.endswith(
        "/r/thanh_hoa"
    )
    assert ninh_binh.client_id != thanh_hoa.client_id
    assert ninh_binh.client_secret != thanh_hoa.client_secret

    # One registry's credentials are refused by another's token endpoint.
    form = {
        "grant_type": "client_credentials",
        "client_id": ninh_binh.client_id,
        "client_secret": ninh_binh.client_secret,
    }
    response = requests.post(thanh_hoa.base_url + "/oauth/token", data=form, timeout=10)
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    # ... and so is one registry's token at another's records.
    token = Session(ninh_binh).token()
    response = requests.get(
        thanh_hoa.base_url + "/v1/st-tasks",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 401

    # The connector works unchanged against each base URL.
    for registry in registries.values():
        with RegistryClient(
            registry.base_url, registry.client_id, registry.client_secret, page_size=500
        ) as client:
            records = [r for page in client.iter_pages("experts") for r in page.records]
        assert len(records) == Session(registry).stats()["entities"]["expert"]["records"]
    root = ninh_binh.base_url.rsplit("/r/", 1)[0]
    assert requests.get(root + "/healthz", timeout=10).json() == {"status": "ok"}


def test_registries_serve_different_records(everything):
    ninh_binh, thanh_hoa = everything["ninh_binh"], everything["thanh_hoa"]
    # Ids carry the prefix of the registry of the record's own date (filed before the merger:
    # a pre-merger registry's), whatever the date of the last update.
    assert {r["id"].split("-")[0] for r in ninh_binh["ip_right"]} == {"NB", "HNA", "NDI"}
    assert {r["id"].split("-")[0] for r in thanh_hoa["ip_right"]} == {"TH"}
    assert {r["title"] for r in ninh_binh["st_task"]} != {r["title"] for r in thanh_hoa["st_task"]}
    assert any("Thanh Hóa" in r["title"] for r in thanh_hoa["st_task"])


def test_a_cursor_is_valid_for_its_own_entity_and_registry_only(registries):
    ninh_binh = Session(registries["ninh_binh"])
    cursor = ninh_binh.get("/v1/ip-rights", {"limit": 5}).json()["next_cursor"]
    assert ninh_binh.get("/v1/ip-rights", {"cursor": cursor}).status_code == 200
    assert ninh_binh.get("/v1/experts", {"cursor": cursor}).status_code == 400
    other = Session(registries["nghe_an"])
    assert other.get("/v1/ip-rights", {"cursor": cursor}).status_code == 400


# --- Changes of any entity ------------------------------------------------------------------


def test_changes_of_an_entity_flow_through_an_incremental_pull(contract):
    with run_registries("demo", ["thanh_hoa"]) as running:
        registry = running["thanh_hoa"]
        session = Session(registry, contract)
        before = session.traverse("innovation-projects", limit=50)
        watermark = before[-1]["updated_at"]
        url = registry.base_url + "/_standin/changes"
        body = {"entity": "innovation_project", "update": 3, "delete": 2}
        changed = requests.post(url, json=body, timeout=10).json()
        assert len(set(changed["updated"] + changed["deleted"])) == 5

        after = session.traverse("innovation-projects", updated_since=watermark)
        tail = after[-5:]
        assert [r["id"] for r in tail] == changed["updated"] + changed["deleted"]
        assert [r["deleted"] for r in tail] == [False] * 3 + [True] * 2
        assert all(r["version"] == 2 for r in tail)
        stats = session.stats()["entities"]
        assert stats["innovation_project"]["changes"] == 5 and stats["st_task"]["changes"] == 0

        by_path = {"entity": "ip-rights", "update": 1}
        assert requests.post(url, json=by_path, timeout=10).status_code == 200
        unknown = {"entity": "widgets", "update": 1}
        assert requests.post(url, json=unknown, timeout=10).status_code == 400


def test_the_single_registry_mode_serves_every_entity_too(contract):
    with run_registry(records=50) as registry:
        session = Session(registry)
        stats = session.stats()
        assert stats["records"] == 50 and stats["registry"] == "ninh_binh"
        for entity, path in ENTITY_PATHS.items():
            records = session.traverse(path)
            assert len(records) == stats["entities"][entity]["records"] > 0, entity
        reports = session.traverse("result-applications")
        tasks = {t["id"]: t for t in session.traverse("st-tasks") if t["id"]}
        assert all(tasks[r["task_code"]]["status"] in ("accepted", "applied") for r in reports)
