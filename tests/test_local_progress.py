"""Progress of the local commands' long work, one line per finished item as it finishes: dbt's
nodes (local.dbt.run_dbt, from dbt's events), on real runs. The demo's DAG run lines are
checked on a running Airflow in tests/test_event_chain_e2e.py."""

from __future__ import annotations

import re
import shutil

from local.dbt import DBT_PROJECT, run_dbt

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
