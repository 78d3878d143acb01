# Helpers of the images rules: data set name, width factors and final outputs.


def get_images_dataset():
    """Name of the data set, used as the folder under results/images/."""
    return config["images"]["dataset"]


def get_images_factors():
    """Widths of the implicit layer as multiples of the training-set size N, as strings."""
    return [f"{factor:g}" for factor in config["images"]["training"]["width_factors"]]


def is_images_nngp_enabled():
    """Return True when the config enables the NNGP kernel part of the module."""
    return config["images"]["nngp"].get("enabled", True)


def get_images_training_runs(kind):
    """Paths of the ``kind`` file (metrics or history) of every training run."""
    extension = "json" if kind == "metrics" else "csv"
    return expand(
        "results/images/{dataset}/train/{variant}/width-{factor}N/{kind}.{extension}",
        dataset=get_images_dataset(),
        variant=config["images"]["training"]["variants"],
        factor=get_images_factors(),
        kind=kind,
        extension=extension,
    )


def get_images_nngp_metrics(wildcards):
    """NNGP metrics for the accuracy figure, or nothing when the NNGP part is off."""
    if not is_images_nngp_enabled():
        return []
    return f"results/images/{wildcards.dataset}/nngp/metrics.json"


def get_images_outputs():
    """Final outputs of the images module."""
    root = f"results/images/{get_images_dataset()}"
    outputs = [f"{root}/training_summary.csv", f"{root}/figures/loss_curves.png"]
    if is_images_nngp_enabled():
        outputs += [f"{root}/nngp/metrics.json", f"{root}/nngp/finite_width.json"]
    return outputs
