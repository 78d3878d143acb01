"""A run killed during training resumes from the checkpoint and leaves no partial output.

The test copies the complete run of the small config, raises the number of
training epochs (which re-runs every training job and what depends on it) and
starts Snakemake on one core. As soon as one training job of this run has
finished and another one has written its first checkpoint, the whole Snakemake
process group gets SIGKILL, as on a node failure. The restarted run must keep
the finished outputs, resume the interrupted job from its checkpoint and end
with every output complete and no temporary file left. As after a crash,
``snakemake --unlock`` removes the stale lock before the restart.
"""

from __future__ import annotations

import hashlib
import signal
import time
from pathlib import Path

import pytest
import yaml
from workflow_harness import (
    LOCAL_PROFILE,
    SMALL_CONFIG,
    clone_run,
    complete_run,
    dry_run_jobs,
    kill_process_group,
    run_snakemake,
    start_snakemake,
)

pytestmark = pytest.mark.slow

RESULTS = Path("results/materials/pdh-emt")
# Enough epochs that a training job outlasts the polling interval many times.
EPOCHS = 20
POLL_S = 0.1
WAIT_LIMIT_S = 900


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def newer_than(paths, start: float) -> list[Path]:
    """Return the paths modified after ``start``, without the hidden temporary files of atomic writes."""
    return [
        path
        for path in paths
        if not path.name.startswith(".") and path.exists() and path.stat().st_mtime > start
    ]


def wait_for_interruptible_state(workdir: Path, process, start: float) -> tuple[Path, Path]:
    """Wait until one model of this run exists and another job has just written a checkpoint.

    Returns (finished model, checkpoint of the running job). The kill follows
    right after a checkpoint write, so it does not hit the next one.
    """
    models = workdir / RESULTS / "models"
    checkpoints = workdir / RESULTS / "checkpoints"
    deadline = time.monotonic() + WAIT_LIMIT_S
    seen_mtime: dict[Path, float] = {}
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"snakemake exited ({process.returncode}) before a training job could be interrupted")
        finished = newer_than(models.glob("*.pt"), start)
        for checkpoint in newer_than(checkpoints.glob("*.pt"), start):
            model = models / checkpoint.name
            mtime = checkpoint.stat().st_mtime
            changed = checkpoint in seen_mtime and seen_mtime[checkpoint] != mtime
            seen_mtime[checkpoint] = mtime
            if finished and not model.exists() and changed:
                return finished[0], checkpoint
        time.sleep(POLL_S)
    pytest.fail(f"no training job reached an interruptible state within {WAIT_LIMIT_S} s")


def test_killed_training_resumes(tmp_path):
    workdir = clone_run(complete_run(), tmp_path / "run")
    # Checkpoints of the complete run belong to finished trainings.
    for old in (workdir / RESULTS / "checkpoints").glob("*"):
        old.unlink()
    extra = "interrupt.yaml"
    (workdir / extra).write_text(
        yaml.safe_dump({"materials": {"training": {"epochs": EPOCHS, "patience": EPOCHS, "checkpoint_every": 1}}})
    )
    command = ["--cores", "1", "--workflow-profile", LOCAL_PROFILE, "--configfile", SMALL_CONFIG, extra]
    untouched = {path: digest(path) for path in (workdir / RESULTS).glob("selections/*.extxyz")}

    start = time.time()
    process = start_snakemake(workdir, *command, log_path=tmp_path / "first.log")
    try:
        finished_model, checkpoint = wait_for_interruptible_state(workdir, process, start)
        finished_digest = digest(finished_model)
        finished_mtime = finished_model.stat().st_mtime
    finally:
        kill_process_group(process, signal.SIGKILL)

    interrupted_model = workdir / RESULTS / "models" / checkpoint.name
    assert not interrupted_model.exists(), "the interrupted job left its model behind"
    assert checkpoint.exists()

    # The restart would re-run the interrupted job, and nothing that had finished.
    pending = dry_run_jobs(workdir, extra)
    stem = checkpoint.stem
    assert any("materials_train" in key and _matches(key, stem) for key in pending), sorted(pending)
    finished_stem = finished_model.stem
    assert not any("materials_train" in key and _matches(key, finished_stem) for key in pending)

    # SIGKILL leaves Snakemake's lock on the directory behind, as a crash does.
    run_snakemake(workdir, "--unlock", "--configfile", SMALL_CONFIG, extra, timeout=300)
    run_snakemake(workdir, *command, timeout=1200)

    assert digest(finished_model) == finished_digest
    assert finished_model.stat().st_mtime == finished_mtime, "a finished training job ran again"
    for path, value in untouched.items():
        assert digest(path) == value, f"{path} changed"
    assert interrupted_model.exists()
    log = _train_log(workdir, stem).read_text(encoding="utf-8")
    assert "resumed from" in log, f"the interrupted job did not resume from {checkpoint}:\n{log[-3000:]}"
    leftovers = [path for path in (workdir / "results").rglob(".*") if path.is_file()]
    assert not leftovers, f"temporary files left behind: {leftovers}"
    assert dry_run_jobs(workdir, extra) == {}


def _matches(key: str, stem: str) -> bool:
    """Return True when a materials_train job key is the job whose outputs are named ``stem``."""
    method, fraction, seed = stem.split("_")
    return f"method={method}" in key and f"fraction={fraction[1:]}" in key and f"seed={seed[1:]}" in key


def _train_log(workdir: Path, stem: str) -> Path:
    logs = list((workdir / "logs" / "materials" / "train").glob(f"*_{stem}.log"))
    assert len(logs) == 1, logs
    return logs[0]
