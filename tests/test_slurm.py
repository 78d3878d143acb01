"""The workflow runs on a real Slurm cluster through profiles/slurm and matches a local run.

The fixture uses the Slurm cluster that is up on this machine, or starts the
one-node cluster of scripts/slurm-cluster.sh (as root, installing slurm-wlm and
munge when missing) and stops it afterwards. The small config is submitted
through the Slurm profile; every job except rule all must then have a Slurm
log with its rule and wildcards and be recorded as COMPLETED by the cluster,
and its results must equal those of the local complete run with the same seeds.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from workflow_harness import REPO, SMALL_CONFIG, complete_run, copy_workflow, parse_dry_run, plan_dag, run_snakemake

pytestmark = pytest.mark.slow

CLUSTER_SCRIPT = REPO / "scripts" / "slurm-cluster.sh"
# Both runs use the same code, seeds, machine and one thread per job
# (OMP_NUM_THREADS=1 and --cpus-per-task=1), so results are expected to be
# bitwise equal; the tolerance only absorbs the last digit of the 17-digit
# decimal text that CSV and JSON round-trip floats through.
RTOL = 1e-12
# Timings differ between any two runs.
TIMING = re.compile(r"second|time|elapsed|duration", re.IGNORECASE)


def node_idle() -> bool:
    if shutil.which("sinfo") is None:
        return False
    result = subprocess.run(["sinfo", "--noheader", "--format=%T"], capture_output=True, text=True, timeout=30)
    return result.returncode == 0 and any(state in {"idle", "mixed"} for state in result.stdout.split())


@pytest.fixture(scope="module")
def slurm_cluster():
    """Return the path of the cluster's job-completion log once a Slurm node is idle."""
    started = False
    if not node_idle():
        if os.geteuid() != 0:
            pytest.skip("no Slurm node is idle and starting a cluster needs root (scripts/slurm-cluster.sh start)")
        subprocess.run(["bash", str(CLUSTER_SCRIPT), "start"], check=True, timeout=900)
        started = True
    yield job_completion_log()
    if started:
        subprocess.run(["bash", str(CLUSTER_SCRIPT), "stop"], check=False, timeout=120)


def job_completion_log() -> Path:
    config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, check=True).stdout
    settings = dict(re.findall(r"^(\w+)\s*=\s*(.*?)\s*$", config, re.MULTILINE))
    if settings.get("JobCompType") != "jobcomp/filetxt":
        pytest.skip(f"the cluster records finished jobs with {settings.get('JobCompType')}, not jobcomp/filetxt")
    return Path(settings["JobCompLoc"])


def completed_jobs(log: Path, workdir: Path) -> dict[str, str]:
    """Return ``{Slurm job id: state}`` of the jobs that ran in ``workdir``."""
    states = {}
    for line in log.read_text(encoding="utf-8").splitlines():
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        if fields.get("WorkDir") == str(workdir):
            states[fields["JobId"]] = fields["JobState"]
    return states


@pytest.fixture(scope="module")
def slurm_run(slurm_cluster, tmp_path_factory) -> tuple[Path, Path]:
    workdir = copy_workflow(tmp_path_factory.mktemp("slurm") / "workflow").resolve()
    run_snakemake(
        workdir,
        "--workflow-profile",
        "profiles/slurm",
        "--configfile",
        SMALL_CONFIG,
        "--jobs",
        "2",
        # The test cluster has no accounting database, so no sacct and no accounts.
        "--slurm-status-command",
        "squeue",
        "--slurm-no-account",
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--slurm-keep-successful-logs",
        "--latency-wait",
        "10",
        timeout=1800,
    )
    return workdir, slurm_cluster


def slurm_logs(workdir: Path) -> dict[str, str]:
    """Return ``{job key: Slurm job id}`` read from the plugin's per-job logs."""
    jobs = {}
    for log in sorted((workdir / ".snakemake" / "slurm_logs").rglob("*.log")):
        keys = list(parse_dry_run(log.read_text(encoding="utf-8", errors="replace")))
        assert len(keys) == 1, f"{log} names {len(keys)} jobs: {keys}"
        jobs[keys[0]] = log.stem
    return jobs


def test_every_job_ran_on_slurm(slurm_run):
    workdir, completion_log = slurm_run
    planned = {key for key, job in plan_dag(workdir).items() if job["rule"] != "all"}
    submitted = slurm_logs(workdir)
    assert set(submitted) == planned
    states = completed_jobs(completion_log, workdir)
    for key, job_id in submitted.items():
        assert states.get(job_id) == "COMPLETED", f"{key}: Slurm job {job_id} is {states.get(job_id)}"


def result_files(root: Path) -> list[Path]:
    return sorted(
        path.relative_to(root)
        for path in (root / "results").rglob("*")
        if path.suffix in {".json", ".csv", ".npz"} and not path.name.startswith(".")
    )


def compare_values(left, right, where: str) -> None:
    if isinstance(left, dict):
        assert isinstance(right, dict) and set(left) == set(right), where
        for key in left:
            if not TIMING.search(str(key)):
                compare_values(left[key], right[key], f"{where}.{key}")
    elif isinstance(left, list):
        assert isinstance(right, list) and len(left) == len(right), where
        for index, (a, b) in enumerate(zip(left, right)):
            compare_values(a, b, f"{where}[{index}]")
    elif isinstance(left, float) or isinstance(right, float):
        assert math.isclose(left, right, rel_tol=RTOL) or (math.isnan(left) and math.isnan(right)), (
            f"{where}: {left} != {right}"
        )
    else:
        assert left == right, f"{where}: {left!r} != {right!r}"


def compare_file(local: Path, slurm: Path) -> None:
    if local.suffix == ".json":
        compare_values(json.loads(local.read_text()), json.loads(slurm.read_text()), local.name)
    elif local.suffix == ".csv":
        left, right = pd.read_csv(local), pd.read_csv(slurm)
        assert list(left.columns) == list(right.columns), local.name
        for column in left.columns:
            if TIMING.search(column):
                continue
            if pd.api.types.is_float_dtype(left[column]):
                np.testing.assert_allclose(left[column], right[column], rtol=RTOL, err_msg=f"{local.name}:{column}")
            else:
                assert left[column].tolist() == right[column].tolist(), f"{local.name}:{column}"
    else:
        with np.load(local) as left, np.load(slurm) as right:
            assert sorted(left.files) == sorted(right.files), local.name
            for name in left.files:
                if left[name].dtype.kind in "fc":
                    np.testing.assert_allclose(left[name], right[name], rtol=RTOL, err_msg=f"{local.name}:{name}")
                else:
                    np.testing.assert_array_equal(left[name], right[name], err_msg=f"{local.name}:{name}")


def test_results_equal_local_run(slurm_run):
    workdir, _ = slurm_run
    local = complete_run()
    files = result_files(local)
    assert files, "the local run wrote no JSON, CSV or NPZ results"
    assert result_files(workdir) == files
    for relative in files:
        compare_file(local / relative, workdir / relative)
