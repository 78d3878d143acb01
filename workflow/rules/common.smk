from snakemake.utils import validate

validate(config, "../../config/schema.yaml")


def get_sorted_keys(value):
    """Return ``value`` with the keys of every mapping in sorted order.

    Snakemake compares parameters by their text, so the same settings written in
    another key order would otherwise look changed and re-run jobs. Lists keep
    their order because it carries meaning.
    """
    if isinstance(value, dict):
        return {key: get_sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [get_sorted_keys(item) for item in value]
    return value


sorted_config = get_sorted_keys(config)
config.clear()
config.update(sorted_config)


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
