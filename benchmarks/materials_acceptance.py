"""Summarise a materials run against the DV-LAE acceptance targets.

Reads ``metrics.csv`` of a finished run (``results/materials/<dataset>/``) and prints a
markdown table of the held-out errors per method at one fraction (mean and spread over
seeds), next to the full-training-set potential, with two checks:

- DV-LAE's mean energy RMSE is within 15 % of the full-data potential's;
- DV-LAE's mean energy RMSE is no worse than random selection's at the same size.

Run the workflow first, e.g. on Fe-GAP22 DB9-DB11::

    snakemake --cores all --configfile config/examples/fe-gap22.yaml
    python benchmarks/materials_acceptance.py results/materials/fe-gap22 --fraction 0.44
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import pandas as pd

METRICS = ("energy_rmse_mev_per_atom", "energy_mae_mev_per_atom",
           "force_rmse_ev_per_angstrom", "force_mae_ev_per_angstrom", "seconds_per_epoch")


def summarise(jobs: pd.DataFrame, fraction: float) -> pd.DataFrame:
    """Mean, std and count over seeds of every metric, for each method at ``fraction``."""
    chosen = jobs[(jobs["method"] == "full") | (jobs["fraction"].sub(fraction).abs() < 1e-9)]
    grouped = chosen.groupby("method")
    table = grouped[list(METRICS)].agg(["mean", "std"])
    table.columns = [f"{metric}_{stat}" for metric, stat in table.columns]
    table["n_seeds"] = grouped["seed"].nunique()
    table["n_train"] = grouped["n_train"].first()
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="results/materials/<dataset> folder of a finished run")
    parser.add_argument("--fraction", type=float, default=0.44, help="fraction of the training set kept (default 0.44)")
    args = parser.parse_args()

    jobs = pd.read_csv(args.results / "metrics.csv")
    table = summarise(jobs, args.fraction)
    if "full" not in table.index or "dvlae" not in table.index:
        raise SystemExit(f"{args.results}/metrics.csv lacks the full or dvlae jobs at fraction {args.fraction}")

    print(f"Held-out errors, {args.results.name}, fraction {args.fraction} (mean ± std over seeds)\n")
    print("| method | training structures | seeds | energy RMSE (meV/atom) | energy MAE (meV/atom) | force RMSE (eV/Å) | force MAE (eV/Å) | s/epoch |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for method, row in table.iterrows():
        cells = [f"{row[f'{m}_mean']:.2f} ± {row[f'{m}_std']:.2f}" if m.startswith("energy") else
                 f"{row[f'{m}_mean']:.4f} ± {row[f'{m}_std']:.4f}" if m.startswith("force") else
                 f"{row[f'{m}_mean']:.2f}" for m in METRICS]
        print(f"| {method} | {int(row['n_train'])} | {int(row['n_seeds'])} | " + " | ".join(cells) + " |")

    full = table.loc["full", "energy_rmse_mev_per_atom_mean"]
    dvlae = table.loc["dvlae", "energy_rmse_mev_per_atom_mean"]
    print(f"\nDV-LAE / full energy RMSE: {dvlae / full:.3f} (target <= 1.15): "
          f"{'met' if dvlae <= 1.15 * full else 'not met'}")
    if "random" in table.index:
        random = table.loc["random", "energy_rmse_mev_per_atom_mean"]
        print(f"DV-LAE / random energy RMSE: {dvlae / random:.3f} (target <= 1): "
              f"{'met' if dvlae <= random else 'not met'}")
    print(f"\nMachine: {platform.processor() or platform.machine()}, Python {platform.python_version()}")


if __name__ == "__main__":
    main()
