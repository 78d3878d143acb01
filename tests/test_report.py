"""`snakemake --report` builds one HTML page with every module's figures and their captions.

The report of the complete run of the small config is built, and the data it
embeds (the ``results`` and ``categories`` objects of Snakemake's report page)
is compared with the outputs that the planned jobs mark with ``report(...)``.
"""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

import pytest
from workflow_harness import SMALL_CONFIG, complete_run, plan_dag, run_snakemake

pytestmark = pytest.mark.slow


def embedded_object(page: str, name: str) -> dict:
    """Return the JSON object that the report page assigns to ``var name``."""
    match = re.search(rf"var {name} = (?=\{{)", page)
    assert match, f"the report has no 'var {name} = {{...}}'"
    value, _ = json.JSONDecoder().raw_decode(page, match.end())
    return value


def module_of(rule: str) -> str:
    return rule.split("_", 1)[0]


@pytest.fixture(scope="module")
def finished() -> Path:
    return complete_run()


@pytest.fixture(scope="module")
def expected(finished) -> dict[str, dict]:
    """``{path: report entry with its rule}`` of every output marked for the report."""
    entries = {}
    for job in plan_dag(finished).values():
        for entry in job["report"]:
            entries[entry["path"]] = {**entry, "rule": job["rule"]}
    return entries


@pytest.fixture(scope="module")
def report(finished, tmp_path_factory) -> tuple[dict, dict]:
    path = tmp_path_factory.mktemp("report") / "report.html"
    run_snakemake(finished, "--configfile", SMALL_CONFIG, "--report", str(path), timeout=600)
    page = path.read_text(encoding="utf-8")
    return embedded_object(page, "results"), embedded_object(page, "categories")


def test_every_module_has_figures(finished, expected):
    planned_modules = {module_of(job["rule"]) for job in plan_dag(finished).values()} - {"all"}
    reported_modules = {module_of(entry["rule"]) for entry in expected.values()}
    assert planned_modules <= reported_modules, f"modules without a report figure: {planned_modules - reported_modules}"


def test_every_figure_in_report(expected, report):
    results, _ = report
    assert set(results) == set(expected)


def test_figures_embedded_unchanged(finished, expected, report):
    results, _ = report
    for path in expected:
        data_uri = results[path]["data_uri"]
        payload = data_uri.split(";base64,", 1)[1]
        assert base64.b64decode(payload) == (finished / path).read_bytes(), f"{path} differs in the report"


def test_figures_have_captions(expected, report):
    results, _ = report
    for path, entry in expected.items():
        assert entry["caption"], f"{path} is marked for the report without a caption"
        text = html.unescape(re.sub(r"<[^>]+>", " ", results[path]["caption"])).strip()
        assert len(text.split()) >= 5, f"{path}: caption '{text}' is too short to say what the figure shows"


def test_figures_grouped_by_module(expected, report):
    _, categories = report
    for path, entry in expected.items():
        category = entry["category"]
        assert category and category.lower() == module_of(entry["rule"]), (
            f"{path} (rule {entry['rule']}) is in category {category!r}, not its module's"
        )
        subcategory = entry["subcategory"] or "Other"
        assert path in categories[category][subcategory], f"{path} is not listed under {category}/{subcategory}"
