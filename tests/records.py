"""Hand-made S&T task records for tests that need to know exactly what is wrong with each."""

from __future__ import annotations

from typing import Any


def st_task(i: int, **overrides: Any) -> dict[str, Any]:
    record = {
        "id": f"NB-2024-DT-{i:04d}",
        "version": 1,
        "updated_at": f"2024-05-01T08:{i // 60 % 60:02d}:{i % 60:02d}Z",
        "deleted": False,
        "title": f"Nghiên cứu ứng dụng công nghệ số trong quản lý di sản Tràng An (giai đoạn {i})",
        "task_level": "provincial",
        "task_type": "research_project",
        "field_code": "10201",
        "host_organisation_name": "Trường Đại học Hoa Lư",
        "host_organisation_code": None,
        "principal_investigator": "TS. Nguyễn Văn An",
        "province_code": "37",
        "budget_state_million_vnd": 850.5,
        "budget_other_million_vnd": 0,
        "start_date": "2023-01-01",
        "end_date": "2024-06-30",
        "status": "accepted",
        "acceptance_date": "2024-09-15",
        "acceptance_rating": "passed",
    }
    record.update(overrides)
    return record


class Page:
    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records


def pages_of(records: list[dict[str, Any]], size: int) -> list[Page]:
    return [Page(records[i : i + size]) for i in range(0, len(records), size)]
