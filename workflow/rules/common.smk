from snakemake.utils import validate

validate(config, "../../config/schema.yaml")


MODULES = ("materials", "events", "images")


def is_enabled(module):
    """Return True when the config has a section for ``module`` with enabled: true."""
    section = config.get(module)
    return bool(section) and section.get("enabled", True)


def get_gpu_resources(section):
    """Return 1 when the config section asks for CUDA, so the job requests a GPU."""
    return 1 if config[section].get("device", "auto") == "cuda" else 0


def get_final_outputs():
    """Collect the final outputs of every enabled module for rule all."""
    getters = {
        "materials": get_materials_outputs,
        "events": get_events_outputs,
        "images": get_images_outputs,
    }
    outputs = []
    for module in MODULES:
        if is_enabled(module):
            outputs.extend(getters[module]())
    return outputs
