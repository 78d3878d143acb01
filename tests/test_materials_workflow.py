"""End-to-end runs of the materials module through Snakemake on small configs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from ase.io import read

from conftest import REPO, shared_data_path

SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")

TRAINING = {
    "hidden": [8],
    "epochs": 4,
    "batch_size": 8,
    "learning_rate": 0.003,
    "patience": 4,
    "checkpoint_every": 2,
}


def run_workflow(workdir: Path, config: dict, *extra: str) -> subprocess.CompletedProcess:
    """Run the workflow in ``workdir`` on ``config`` and fail with its output on error."""
    config_path = workdir / "config.yaml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    command = [
        SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
        "--configfile", str(config_path), "--cores", "2", *extra,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    return result


def materials_config(datasets: dict, fractions: list[float], seeds: list[int]) -> dict:
    return {
        "materials": {
            "datasets": datasets,
            "descriptors": {"cutoff": 4.0},
            "embedding": {"method": "tsne", "perplexity": 5.0, "seed": 0},
            "selection": {"fractions": fractions, "seeds": seeds},
            "training": TRAINING,
        },
        "events": {"enabled": False},
        "images": {"enabled": False},
    }


def check_dataset_results(root: Path, fractions: list[float], seeds: list[int]) -> pd.DataFrame:
    """Check the invariants every materials run must satisfy; return the metrics table."""
    split = pd.read_csv(root / "split.csv", dtype=str)
    test_ids = set(split.loc[split["subset"] == "test", "id"])
    train_ids = set(split.loc[split["subset"] == "train", "id"])
    assert test_ids
    assert not test_ids & train_ids

    for fraction in fractions:
        for seed in seeds:
            sizes = {}
            for method in ("dvlae", "random", "fps", "kmeans"):
                selected = [atoms.info["id"] for atoms in read(root / "selections" / f"{method}_f{fraction}_s{seed}.extxyz", ":")]
                assert set(selected) <= train_ids, f"{method} selected a test structure"
                assert len(set(selected)) == len(selected)
                sizes[method] = len(selected)
            assert len(set(sizes.values())) == 1, f"subset sizes differ: {sizes}"

    metrics = pd.read_csv(root / "metrics.csv")
    assert len(metrics) == len(seeds) * (1 + 4 * len(fractions))
    assert metrics["energy_rmse_mev_per_atom"].gt(0).all()
    assert metrics["force_rmse_ev_per_angstrom"].ge(0).all()
    assert (metrics["energy_rmse_mev_per_atom"] >= metrics["energy_mae_mev_per_atom"]).all()
    summary = json.loads((root / "metrics.json").read_text())
    assert {"jobs", "learning_curves"} <= set(summary)
    for figure in ("learning_curve_energy", "learning_curve_forces", "selection_map", "error_map", "ood"):
        assert (root / "figures" / f"{figure}.png").stat().st_size > 10_000
    return metrics


@pytest.mark.slow
def test_materials_workflow_pdh(tmp_path):
    config = materials_config(
        {"pdh": {"elements": ["Pd", "H"], "generate": {"frames_per_group": 8, "seed": 3}}},
        fractions=[0.5],
        seeds=[0],
    )
    run_workflow(tmp_path, config)
    check_dataset_results(tmp_path / "results" / "materials" / "pdh", [0.5], [0])

    structures = pd.read_csv(tmp_path / "results" / "materials" / "pdh" / "structures.csv")
    assert structures["composition"].str.contains("H").any()
    assert structures["config_type"].nunique() >= 3


@pytest.mark.slow
@pytest.mark.shared_data
def test_materials_workflow_fe_gap22_subset(tmp_path):
    folder = shared_data_path("materials", "fe-gap22")
    files = [
        {"path": str(folder / "DB9.xyz"), "config_type": "DB9", "forces_key": "force", "index": "::40"},
        {"path": str(folder / "DB10.xyz"), "config_type": "DB10", "forces_key": "force", "index": "::8"},
        {"path": str(folder / "DB11.xyz"), "config_type": "DB11", "forces_key": "force", "index": "::15"},
    ]
    config = materials_config({"fe": {"elements": ["Fe"], "files": files}}, fractions=[0.44], seeds=[0])
    run_workflow(tmp_path, config)
    root = tmp_path / "results" / "materials" / "fe"
    check_dataset_results(root, [0.44], [0])

    table = pd.read_csv(root / "structures.csv")
    assert table["config_type"].nunique() >= 3
    assert set(table["source"].map(lambda path: Path(path).stem)) == {"DB9", "DB10", "DB11"}
    assert table["id"].str.match(r"^DB(9|10|11):\d+:[0-9a-f]{12}$").all()


@pytest.mark.slow
def test_materials_invalid_frame_names_file(tmp_path):
    bad = tmp_path / "bad.xyz"
    bad.write_text(
        "2\nLattice=\"5 0 0 0 5 0 0 0 5\" Properties=species:S:1:pos:R:3:forces:R:3 energy=-3.0 pbc=\"T T T\"\n"
        "Fe 0 0 0 0 0 0\nFe 1.4 1.4 1.4 0 0 0\n"
        "2\nLattice=\"5 0 0 0 5 0 0 0 5\" Properties=species:S:1:pos:R:3:forces:R:3 pbc=\"T T T\"\n"
        "Fe 0 0 0 0 0 0\nFe 1.4 1.4 1.5 0 0 0\n",
        encoding="utf-8",
    )
    config = materials_config({"bad": {"elements": ["Fe"], "files": [{"path": str(bad)}]}}, [0.5], [0])
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    result = subprocess.run(
        [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
         "--configfile", str(config_path), "--cores", "1", "results/materials/bad/structures.csv"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode != 0
    log = (tmp_path / "logs" / "materials" / "ingest" / "bad.log").read_text()
    assert "bad.xyz" in log
    assert "frame 1" in log
    assert not (tmp_path / "results" / "materials" / "bad" / "structures.csv").exists()


def test_cell_size_with_fractions_rejected(tmp_path):
    config = materials_config(
        {"pdh": {"elements": ["Pd", "H"], "generate": {"frames_per_group": 8, "seed": 3}}},
        fractions=[0.25, 0.5],
        seeds=[0],
    )
    config["materials"]["selection"]["cell_size"] = 5.0
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    result = subprocess.run(
        [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
         "--configfile", str(config_path), "--cores", "1", "--dry-run"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode != 0
    assert "materials.selection.cell_size=5.0 fixes the DV-LAE grid" in result.stdout + result.stderr
