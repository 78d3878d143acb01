"""The workflow passes Snakemake's linter and snakefmt's formatting check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)


def test_snakemake_lint_clean():
    result = run(str(BIN / "snakemake"), "--lint", "--cores", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr, result.stdout + result.stderr


def test_snakefmt_check_passes():
    files = ["Snakefile", *sorted(str(p) for p in (REPO / "workflow" / "rules").glob("*.smk"))]
    result = run(str(BIN / "snakefmt"), "--check", *files)
    assert result.returncode == 0, result.stdout + result.stderr
