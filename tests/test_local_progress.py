"""Progress of the local commands' long work, one line per finished item as it finishes: the
demo's DAG runs (local.demo.run_dags through local.run_dags and Airflow) and dbt's nodes
(local.dbt.run_dbt, from dbt's events), on real runs."""

from __future__ import annotations

import re
import shutil
import sys

from local import demo
from local.airflow_env import connection_env, drop_connection
from local.dbt import DBT_PROJECT, run_dbt

DROP_SOURCE = "ninh_binh_stat_reports"


class _Stamped:
    """stdout that also notes, for each line, what had been reported to the file when it was
    printed."""

    def __init__(self, reports_of):
        self.lines: list[tuple[str, int]] = []
        self._reports_of = reports_of
        self._partial = ""

    def write(self, text: str) -> None:
        *complete, self._partial = (self._partial + text).split("\n")
        self.lines += [(line, self._reports_of()) for line in complete]

    def flush(self) -> None:
        pass


def test_the_demo_prints_each_dag_run_as_it_finishes(
    airflow_home, dbt_manifest, warehouse_url, tmp_path, monkeypatch
):
    # The cheapest real DAG runs: spreadsheet drops from an empty folder (nothing to land).
    monkeypatch.setattr(demo, "LOG_DIR", tmp_path / "logs")
    (tmp_path / "drops").mkdir()
    env = connection_env(warehouse_url, {DROP_SOURCE: drop_connection(tmp_path / "drops")})
    dag_ids = [f"{DROP_SOURCE}__stat_form_04", f"{DROP_SOURCE}__stat_form_06"]

    def reported() -> int:
        return sum(len(f.read_text().splitlines()) for f in (tmp_path / "logs").glob("*.jsonl"))

    out = _Stamped(reported)
    monkeypatch.setattr(sys, "stdout", out)
    reports, log_file = demo.run_dags(dag_ids, env)

    assert [r["state"] for r in reports] == ["success", "success"], log_file.read_text()[-3000:]
    lines = [line for line, _ in out.lines]
    assert len(lines) == 2, lines
    for n, (line, report) in enumerate(zip(lines, reports, strict=True), start=1):
        assert line == f"[{n}/2] {report['dag_id']} success ({report['seconds']:.1f} s)"
    # The first line came while the second DAG still ran, not after all of them.
    assert out.lines[0][1] == 1


# A project of its own, small enough to parse at once: a seed, a model with a unit test and a
# data test, and a broken model with a model downstream of it.
PROJECT = {
    "dbt_project.yml": "name: progress_check\nconfig-version: 2\nprofile: sti_warehouse\n",
    "seeds/levels.csv": "code,level_rank\nnational,1\nprovincial,3\n",
    "models/ranked.sql": "select code, level_rank * 10 as score from {{ ref('levels') }}\n",
    "models/broken.sql": "select no_such_column from {{ ref('levels') }}\n",
    "models/after_broken.sql": "select * from {{ ref('broken') }}\n",
    "models/ranked.yml": """
models:
  - name: ranked
    columns:
      - name: code
        data_tests: [not_null]
unit_tests:
  - name: ranked_scores_ten_per_rank
    model: ranked
    given:
      - input: ref('levels')
        rows: [{code: national, level_rank: 1}]
    expect:
      rows: [{code: national, score: 10}]
""",
}


def test_dbt_prints_each_node_as_it_finishes(warehouse_url, tmp_path, capsys):
    project = tmp_path / "project"
    for name, text in PROJECT.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text, encoding="utf-8")
    shutil.copy(DBT_PROJECT / "profiles.yml", project)

    result = run_dbt("build", warehouse_url=warehouse_url, project_dir=project, check=False)

    assert result.returncode == 1, result.stdout[-3000:]
    lines = capsys.readouterr().out.splitlines()
    # dbt announces 5 nodes, then adds the unit test when it starts it: 6 in all.
    assert [line.split("]")[0] for line in lines] == [f"[{n}/6" for n in range(1, 7)], lines
    finished = sorted(re.sub(r"^\[\d/6\] | \(\d+\.\d s\)$", "", line) for line in lines)
    assert finished == [
        "model analytics.after_broken skipped",
        "model analytics.broken error",
        "model analytics.ranked success",
        "seed analytics.levels success",
        "test not_null_ranked_code pass",
        "unit_test ranked_scores_ten_per_rank pass",
    ], lines
