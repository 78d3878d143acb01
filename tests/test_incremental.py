"""After one complete run, a change re-runs exactly the jobs that it touches.

Each test copies the complete run of the small config (workflow_harness.complete_run),
changes one thing and reads from ``snakemake --dry-run`` (with the local
profile, as a user would run it) which jobs would run. The expected set is
computed independently from the planned DAG: the jobs that read the changed
file or use the changed parameter, and every job downstream of them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml
from workflow_harness import (
    LOCAL_PROFILE,
    SMALL_CONFIG,
    clone_run,
    complete_run,
    downstream,
    dry_run_jobs,
    jobs_reading,
    plan_dag,
    run_snakemake,
)

pytestmark = pytest.mark.slow

MATERIALS_INPUT = "resources/materials/pdh-emt/generated.extxyz"


@pytest.fixture(scope="module")
def finished() -> Path:
    return complete_run()


@pytest.fixture(scope="module")
def planned(finished) -> dict[str, dict]:
    """Every job of the small config with its dependencies."""
    return plan_dag(finished)


@pytest.fixture
def clone(finished, tmp_path) -> Path:
    return clone_run(finished, tmp_path / "run")


def write_config(workdir: Path, name: str, content: dict) -> str:
    path = workdir / name
    path.write_text(yaml.safe_dump(content, allow_unicode=True), encoding="utf-8")
    return name


def small_config() -> dict:
    with open(Path(__file__).parent / "configs" / "small.yaml", encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def rules_of(keys) -> set[str]:
    return {key.split("[")[0] for key in keys}


def test_second_run_nothing_to_do(finished):
    assert dry_run_jobs(finished) == {}


def test_changed_input_reruns_downstream_only(clone, planned):
    path = clone / MATERIALS_INPUT
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    # Line 2 is the first frame's extxyz comment line of key=value pairs; an
    # extra key changes the content and keeps the file valid.
    lines[1] = lines[1].rstrip("\n") + " note=changed\n"
    path.write_text("".join(lines), encoding="utf-8")

    rerun = dry_run_jobs(clone)

    readers = jobs_reading(planned, MATERIALS_INPUT)
    assert readers, f"no planned job reads {MATERIALS_INPUT}"
    expected = downstream(planned, readers)
    assert set(rerun) == expected
    assert rules_of(rerun) - {"all"} <= {rule for rule in rules_of(planned) if rule.startswith("materials_")}
    for key in readers:
        assert "Updated input files" in rerun[key], f"{key}: {rerun[key]}"


@pytest.mark.parametrize(
    ("section", "key", "value", "rule"),
    [
        ("training", "learning_rate", 0.02, "materials_train"),
        ("split", "seed", 3, "materials_split"),
    ],
)
def test_changed_parameter_reruns_users_only(clone, planned, section, key, value, rule):
    assert small_config()["materials"].get(section, {}).get(key) != value
    extra = write_config(clone, "change.yaml", {"materials": {section: {key: value}}})

    rerun = dry_run_jobs(clone, extra)

    users = {job_key for job_key, job in planned.items() if job["rule"] == rule}
    assert users
    assert set(rerun) == downstream(planned, users)
    for job_key in users:
        assert "Params have changed" in rerun[job_key], f"{job_key}: {rerun[job_key]}"


def test_touched_files_rerun_nothing(clone, planned):
    """A newer modification time with the same content re-runs nothing (checksums)."""
    later = time.time() + 60
    touched = [MATERIALS_INPUT]
    touched += sorted({path for job in planned.values() for path in job["input"] if path.startswith("results/")})[:5]
    for relative in touched:
        os.utime(clone / relative, (later, later))

    assert dry_run_jobs(clone) == {}


def assert_adds_only_new_jobs(clone: Path, planned: dict, change: dict) -> set[str]:
    extra = write_config(clone, "change.yaml", change)
    planned_after = plan_dag(clone, configfiles=[SMALL_CONFIG, extra])
    new_jobs = set(planned_after) - set(planned)
    assert new_jobs, f"the change {change} adds no job"

    rerun = dry_run_jobs(clone, extra)

    assert set(rerun) == downstream(planned_after, new_jobs)
    return new_jobs


def test_added_fraction_adds_its_jobs(clone, planned):
    selection = dict(small_config()["materials"]["selection"])
    selection["fractions"] = [*selection["fractions"], 0.25]
    new_jobs = assert_adds_only_new_jobs(clone, planned, {"materials": {"selection": selection}})
    assert all("fraction=0.25" in key for key in new_jobs), sorted(new_jobs)


def test_added_dataset_adds_its_jobs(clone, planned):
    dataset = {"generate": {"frames_per_group": 3, "seed": 8}, "elements": ["Pd", "H"]}
    new_jobs = assert_adds_only_new_jobs(clone, planned, {"materials": {"datasets": {"pdh-extra": dataset}}})
    assert all("dataset=pdh-extra" in key for key in new_jobs), sorted(new_jobs)


def test_changed_parameter_rerun_succeeds(clone, planned):
    """The planned re-run after a parameter change runs, and then nothing is left to do."""
    extra = write_config(clone, "change.yaml", {"materials": {"training": {"learning_rate": 0.02}}})
    users = {key for key, job in planned.items() if job["rule"] == "materials_train"}
    affected = downstream(planned, users)
    unaffected_mtimes = {
        path: (clone / path).stat().st_mtime
        for key, job in planned.items()
        if key not in affected
        for path in job["output"]
    }

    run_snakemake(clone, "--cores", "2", "--workflow-profile", LOCAL_PROFILE, "--configfile", SMALL_CONFIG, extra)

    assert dry_run_jobs(clone, extra) == {}
    for path, mtime in unaffected_mtimes.items():
        assert (clone / path).stat().st_mtime == mtime, f"{path} was rewritten"


def test_added_event_adds_its_jobs(clone, planned):
    if not any(job["rule"].startswith("events_") for job in planned.values()):
        pytest.skip("this workflow has no events rules")
    corpus = small_config()["events"]["corpora"]["simulated"]
    festival = {"name": "festival", "keywords": ["电影节", "festival"], "start": "2021-04-25", "end": "2021-05-25"}
    change = {"events": {"corpora": {"simulated": {"events": [*corpus["events"], festival]}}}}
    new_jobs = assert_adds_only_new_jobs(clone, planned, change)
    assert all("event=festival" in key for key in new_jobs), sorted(new_jobs)
