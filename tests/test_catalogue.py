"""The source catalogue: the shipped one loads, and a malformed one fails with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.catalogue import CatalogueError, load_catalogue

SHIPPED = Path(__file__).resolve().parents[1] / "dags" / "sources.yml"

GOOD = """\
sources:
  - id: ninh_binh_registry
    name: Ninh Bình provincial STI registry
    province_code: "37"
    system: registry
    contract: registry-api-v1
    connection_id: ninh_binh_registry
    entities: [st_task]
    schedule: "0 */6 * * *"
    owner: so-khcn-ninh-binh
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sources.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_catalogue_loads():
    [source] = load_catalogue(SHIPPED)
    assert (source.id, source.province_code, source.entities) == (
        "ninh_binh_registry",
        "37",
        ("st_task",),
    )


def test_a_duplicate_id_names_both_lines(tmp_path):
    second = GOOD.split("sources:\n", 1)[1]
    path = _write(tmp_path, GOOD + second)
    with pytest.raises(CatalogueError, match=r"sources.yml:11: duplicate source id .* line 2"):
        load_catalogue(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("    owner: so-khcn-ninh-binh\n", ""), r":2: missing \['owner'\]"),
        (("    owner:", "    ownr: x\n    owner:"), r":2: unknown keys \['ownr'\]"),
        (('province_code: "37"', "province_code: 37"), r":2: province_code must be a string"),
        (("system: registry", "system: ftp"), r":2: unknown system 'ftp'"),
        (("[st_task]", "[st_task, rocket]"), r":2: unknown entity 'rocket'"),
        (('"0 */6 * * *"', '"hourly"'), r":2: schedule must be a 5-field cron"),
        (("sources:", "source:"), r"unknown top-level keys \['source'\]"),
    ],
)
def test_a_malformed_entry_fails_with_file_and_line(tmp_path, change, message):
    path = _write(tmp_path, GOOD.replace(*change))
    with pytest.raises(CatalogueError, match=message) as error:
        load_catalogue(path)
    assert str(path) in str(error.value)
