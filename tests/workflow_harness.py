"""Helpers for tests that run or plan the whole workflow in a temporary copy.

The tests of cluster submission, incremental re-runs, interruption and the
report share one complete run of the workflow on ``tests/configs/small.yaml``
(:func:`complete_run`, computed once per pytest process) and copy it before
they change anything.

Jobs are identified by a key ``rule[name=value,...]`` with the wildcards in
sorted order. :func:`plan_dag` reads planned DAGs through the Snakemake Python
API. :func:`dry_run_jobs` reads dry runs from the command line's output, so
that the workflow profile applies as when a user runs it.

Run as a script (``python workflow_harness.py plan REQUEST_JSON``) it prints
the planned DAG as JSON; :func:`plan_dag` calls it in a subprocess because the
Snakemake API changes the working directory and global logging state.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import deque
from pathlib import Path
from typing import Any, Iterable

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SNAKEMAKE = str(BIN / "snakemake")
SMALL_CONFIG = "tests/configs/small.yaml"
LOCAL_PROFILE = "profiles/local"

# What a copy of the workflow needs; the library is imported from REPO/src.
WORKFLOW_PARTS = ("Snakefile", "config", "workflow", "envs", "profiles", "tests/configs")


def job_key(rule: str, wildcards: dict[str, str]) -> str:
    """Return the key ``rule[a=1,b=2]`` that names one job of the DAG."""
    items = ",".join(f"{name}={wildcards[name]}" for name in sorted(wildcards))
    return f"{rule}[{items}]"


def snakemake_env() -> dict[str, str]:
    """Return the environment for Snakemake subprocesses.

    PYTHONPATH makes the library under test importable by the rules' scripts;
    one BLAS/OpenMP thread per job keeps two parallel jobs on two cores.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("MKL_NUM_THREADS", "1")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    return env


def copy_workflow(destination: Path) -> Path:
    """Copy the workflow definition (not results) of the repository to ``destination``."""
    destination.mkdir(parents=True, exist_ok=True)
    for part in WORKFLOW_PARTS:
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, destination / part, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            (destination / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / part)
    return destination


def clone_run(source: Path, destination: Path) -> Path:
    """Copy a workflow directory with its results and metadata, keeping modification times."""
    shutil.copytree(source, destination, symlinks=True)
    return destination


def run_snakemake(
    workdir: Path, *args: str, timeout: float = 900, check: bool = True
) -> subprocess.CompletedProcess:
    """Run the snakemake command line in ``workdir`` and return the finished process.

    Raises AssertionError with the tail of the output when ``check`` is set and
    Snakemake exits with a non-zero status.
    """
    result = subprocess.run(
        [SNAKEMAKE, *args],
        cwd=workdir,
        env=snakemake_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        output = (result.stdout + result.stderr)[-6000:]
        raise AssertionError(f"snakemake {' '.join(args)} failed ({result.returncode}):\n{output}")
    return result


def start_snakemake(workdir: Path, *args: str, log_path: Path) -> subprocess.Popen:
    """Start snakemake in its own process group, writing its output to ``log_path``."""
    log = open(log_path, "w")
    return subprocess.Popen(
        [SNAKEMAKE, *args],
        cwd=workdir,
        env=snakemake_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def kill_process_group(process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to the process group that :func:`start_snakemake` created, and reap it."""
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
    process.wait(timeout=60)


# ---------------------------------------------------------------- dry runs

_RULE_LINE = re.compile(r"^(?:local)?(?:rule|checkpoint) (\S+):$")
_FIELD_LINE = re.compile(r"^\s+(\w+): (.*)$")


def parse_dry_run(output: str) -> dict[str, str]:
    """Return ``{job key: reason}`` for every job block in Snakemake's dry-run output."""
    jobs: dict[str, str] = {}
    rule = None
    fields: dict[str, str] = {}

    def flush() -> None:
        if rule is not None:
            wildcards = {}
            if fields.get("wildcards"):
                for item in fields["wildcards"].split(", "):
                    name, _, value = item.partition("=")
                    wildcards[name] = value
            jobs[job_key(rule, wildcards)] = fields.get("reason", "")

    for line in output.splitlines():
        match = _RULE_LINE.match(line.strip()) if not line.startswith(" ") else None
        if match:
            flush()
            rule, fields = match.group(1), {}
            continue
        field = _FIELD_LINE.match(line)
        if rule is not None and field:
            fields[field.group(1)] = field.group(2)
        elif rule is not None and line and not line.startswith(" "):
            flush()
            rule, fields = None, {}
    flush()
    return jobs


def dry_run_jobs(workdir: Path, *extra_configfiles: str) -> dict[str, str]:
    """Return ``{job key: reason}`` of the jobs that a run would execute now.

    Runs ``snakemake --dry-run`` with the local profile, the small config and
    ``extra_configfiles`` on top of it, as a user would to see what a run
    would do.
    """
    result = run_snakemake(
        workdir,
        "--dry-run",
        "--workflow-profile",
        LOCAL_PROFILE,
        "--configfile",
        SMALL_CONFIG,
        *extra_configfiles,
        timeout=300,
    )
    output = result.stdout + result.stderr
    jobs = parse_dry_run(output)
    if not jobs and "Nothing to be done" not in output:
        raise AssertionError(f"could not read the jobs of the dry run:\n{output[-4000:]}")
    return jobs


# ---------------------------------------------------------------- planned DAG


def plan_dag(
    workdir: Path,
    configfiles: Iterable[str] = (SMALL_CONFIG,),
    config: dict[str, Any] | None = None,
    forceall: bool = True,
) -> dict[str, dict[str, Any]]:
    """Plan the DAG of the default target through the Snakemake API.

    Returns ``{job key: job}`` where a job is a dict with ``rule``, ``wildcards``,
    ``resources`` (evaluated, as the scheduler and executors see them),
    ``input``, ``output``, ``dependencies`` (keys of the jobs it needs),
    ``report`` (outputs marked with ``report(...)``: path, caption, category
    and subcategory), ``needrun`` and ``reason``. With ``forceall`` every job is planned to run.
    """
    request = {
        "workdir": str(workdir),
        "configfiles": list(configfiles),
        "config": config or {},
        "forceall": forceall,
    }
    result = subprocess.run(
        [sys.executable, __file__, "plan", json.dumps(request)],
        cwd=workdir,
        env=snakemake_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise AssertionError(f"planning the DAG failed:\n{(result.stdout + result.stderr)[-6000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _plan_main(request: dict[str, Any]) -> None:
    from snakemake.api import SnakemakeApi
    from snakemake.settings.enums import Quietness
    from snakemake.settings.types import (
        ConfigSettings,
        DAGSettings,
        OutputSettings,
        ResourceSettings,
    )

    workdir = Path(request["workdir"])
    with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
        workflow_api = api.workflow(
            resource_settings=ResourceSettings(cores=2),
            config_settings=ConfigSettings(
                configfiles=[workdir / path for path in request["configfiles"]],
                config=request["config"],
            ),
            snakefile=workdir / "Snakefile",
            workdir=workdir,
        )
        workflow_api.dag(DAGSettings(forceall=request["forceall"]))
        # NOTE: _prepare_dag and _build_dag are Snakemake internals (9.27); the
        # public API offers no way to read planned jobs' resources.
        workflow = workflow_api._workflow
        workflow._prepare_dag(
            forceall=request["forceall"], ignore_incomplete=False, lock_warn_only=True, nolock=True
        )
        workflow._build_dag()
        dag = workflow.dag
        keys = {job: job_key(job.rule.name, dict(job.wildcards_dict)) for job in dag.jobs}
        jobs = {}
        for job, key in keys.items():
            resources = {
                name: value
                for name, value in job.resources.items()
                if isinstance(value, (int, float, str)) and name != "_nodes"
            }
            jobs[key] = {
                "rule": job.rule.name,
                "wildcards": dict(job.wildcards_dict),
                "resources": resources,
                "threads": job.threads,
                "input": [str(path) for path in job.input],
                "output": [str(path) for path in job.output],
                "dependencies": sorted(keys[dep] for dep in dag.dependencies[job]),
                "report": [_report_entry(path, job) for path in job.output if path.flags.get("report")],
                "needrun": dag.needrun(job),
                "reason": str(dag.reason(job)),
            }
    print(json.dumps(jobs))


def _report_entry(path, job) -> dict[str, Any]:
    """Return the report flag of an output file with its wildcards filled in."""
    flag = path.flags["report"]

    def fill(value):
        return None if value is None else str(value).format(**dict(job.wildcards_dict))

    return {
        "path": str(path),
        "caption": None if flag.caption is None else str(flag.caption),
        "category": fill(flag.category),
        "subcategory": fill(flag.subcategory),
    }


def list_rules(workdir: Path = REPO) -> dict[str, dict[str, Any]]:
    """Return every rule of the workflow with its conda environment and script.

    The rules are read through the Snakemake API, with paths resolved the way
    Snakemake resolves them (relative to the file that defines the rule).
    Returns ``{rule name: {"conda_env", "script", "executes", "resources"}}``
    where ``executes`` is False for rules that only collect input (rule all).
    """
    result = subprocess.run(
        [sys.executable, __file__, "rules", json.dumps({"workdir": str(workdir)})],
        cwd=workdir,
        env=snakemake_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise AssertionError(f"reading the rules failed:\n{(result.stdout + result.stderr)[-6000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _rules_main(request: dict[str, Any]) -> None:
    from snakemake.api import SnakemakeApi
    from snakemake.settings.enums import Quietness
    from snakemake.settings.types import OutputSettings, ResourceSettings

    workdir = Path(request["workdir"])

    def resolve(rule, path):
        if path is None or callable(path):
            return path if path is None else "<function>"
        return str(rule.basedir.join(str(path)).get_path_or_uri(secret_free=True))

    with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
        workflow_api = api.workflow(
            resource_settings=ResourceSettings(cores=2),
            snakefile=workdir / "Snakefile",
            workdir=workdir,
        )
        rules = {}
        for rule in workflow_api._workflow.rules:
            rules[rule.name] = {
                "conda_env": resolve(rule, rule.conda_env),
                "script": resolve(rule, rule.script),
                "executes": not rule.norun,
            }
    print(json.dumps(rules))


def downstream(jobs: dict[str, dict[str, Any]], roots: Iterable[str]) -> set[str]:
    """Return the keys of ``roots`` and of every job that depends on them, directly or not."""
    dependants: dict[str, set[str]] = {key: set() for key in jobs}
    for key, job in jobs.items():
        for dependency in job["dependencies"]:
            dependants[dependency].add(key)
    seen = set(roots)
    queue = deque(seen)
    while queue:
        for child in dependants[queue.popleft()]:
            if child not in seen:
                seen.add(child)
                queue.append(child)
    return seen


def jobs_reading(jobs: dict[str, dict[str, Any]], path: str) -> set[str]:
    """Return the keys of the jobs that list ``path`` among their input files."""
    return {key for key, job in jobs.items() if path in job["input"]}


# ---------------------------------------------------------------- shared run


_COMPLETE_RUN: dict[str, Any] = {}


def complete_run() -> Path:
    """Run the whole workflow once on the small config and return its directory.

    The directory is created once per pytest process and shared by every test
    that needs a finished run. It is removed when the process exits, and tests
    copy it with :func:`clone_run` before they change anything. A failed run
    is not repeated: later callers get the same error at once. To debug the
    tests, set EQUIPIPE_COMPLETE_RUN to the directory of a finished run of the
    small config to reuse it (tests never change it).
    """
    reuse = os.environ.get("EQUIPIPE_COMPLETE_RUN")
    if reuse:
        return Path(reuse)
    if "error" in _COMPLETE_RUN:
        raise AssertionError(f"the complete run of {SMALL_CONFIG} failed earlier:\n{_COMPLETE_RUN['error']}")
    if "path" not in _COMPLETE_RUN:
        root = Path(tempfile.mkdtemp(prefix="equipipe-complete-run-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        workdir = copy_workflow(root / "workflow")
        try:
            run_snakemake(
                workdir,
                "--cores",
                "2",
                "--workflow-profile",
                LOCAL_PROFILE,
                "--configfile",
                SMALL_CONFIG,
                timeout=1800,
            )
        except (AssertionError, subprocess.TimeoutExpired) as error:
            _COMPLETE_RUN["error"] = str(error)
            raise
        _COMPLETE_RUN["path"] = workdir
    return _COMPLETE_RUN["path"]


if __name__ == "__main__":
    commands = {"plan": _plan_main, "rules": _rules_main}
    if len(sys.argv) != 3 or sys.argv[1] not in commands:
        sys.exit("usage: workflow_harness.py plan|rules REQUEST_JSON")
    commands[sys.argv[1]](json.loads(sys.argv[2]))
