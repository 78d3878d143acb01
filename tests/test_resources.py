"""Training jobs request a GPU exactly when the config sets ``device: cuda``.

The DAG of the default config is planned through the Snakemake API with every
module's ``device`` set to ``cpu`` and then to ``cuda``, and the evaluated
resources of every planned job are read. The Slurm executor plugin's own code
then turns those resources into sbatch options, to check that a GPU job
becomes a gres/gpu request and a CPU job does not.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import yaml
from workflow_harness import REPO, plan_dag

DEFAULT_CONFIG = "config/config.yaml"


def device_sections() -> list[str]:
    """Return the config sections that have a ``device`` key in config/schema.yaml."""
    with open(REPO / "config" / "schema.yaml", encoding="utf-8") as handle:
        schema = yaml.safe_load(handle)
    return [
        name
        for name, section in schema["properties"].items()
        if "device" in section.get("properties", {})
    ]


def enabled_sections() -> set[str]:
    with open(REPO / DEFAULT_CONFIG, encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    return {name for name, section in config.items() if isinstance(section, dict) and section.get("enabled", True)}


@pytest.fixture(scope="module")
def planned() -> dict[str, dict]:
    """Planned jobs of the default config for device cpu and cuda."""
    sections = device_sections()
    assert sections, "no config section has a 'device' key in config/schema.yaml"
    return {
        device: plan_dag(REPO, configfiles=[DEFAULT_CONFIG], config={name: {"device": device} for name in sections})
        for device in ("cpu", "cuda")
    }


def training_rules(jobs: dict[str, dict]) -> set[str]:
    """Rules whose jobs declare a gpu resource (0 or more)."""
    return {job["rule"] for job in jobs.values() if "gpu" in job["resources"]}


def test_device_sections_are_enabled():
    """Every module with a device setting is in the default run, so its jobs are planned below."""
    assert set(device_sections()) <= enabled_sections()


def test_training_rules_declare_gpu(planned):
    rules = {job["rule"] for job in planned["cpu"].values()}
    train_like = {rule for rule in rules if "train" in rule}
    assert train_like, f"no training rule among {sorted(rules)}"
    assert train_like <= training_rules(planned["cpu"]), (
        f"training rules without resources: gpu=get_gpu_resources(...): {sorted(train_like - training_rules(planned['cpu']))}"
    )


def test_cpu_config_requests_no_gpu(planned):
    for key, job in planned["cpu"].items():
        assert job["resources"].get("gpu", 0) == 0, f"{key} requests a GPU with device: cpu"


def test_cuda_config_requests_gpu_for_training(planned):
    rules = training_rules(planned["cuda"])
    assert rules
    for key, job in planned["cuda"].items():
        expected = 1 if job["rule"] in rules else 0
        assert job["resources"].get("gpu", 0) == expected, f"{key}: gpu={job['resources'].get('gpu')} with device: cuda"


def test_same_jobs_for_both_devices(planned):
    """The device changes resources, never which jobs run."""
    assert set(planned["cpu"]) == set(planned["cuda"])


class _Resources(dict):
    """Job resources with attribute access, as the Slurm plugin reads them."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError as error:
            raise AttributeError(name) from error


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_slurm_plugin_requests_gres_gpu(planned, device):
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    for key, job in planned[device].items():
        fake_job = SimpleNamespace(resources=_Resources(job["resources"]))
        options = set_gres_string(fake_job)
        if job["resources"].get("gpu", 0) > 0:
            assert f"--gpus={job['resources']['gpu']}" in options, f"{key}: sbatch options '{options}'"
        else:
            assert "gpu" not in options, f"{key}: sbatch options '{options}' request a GPU"
