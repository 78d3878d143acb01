# Materials module: atomic structures -> symmetry functions -> DV-LAE selection ->
# Behler-Parrinello potentials trained on full and reduced sets -> held-out errors.


wildcard_constraints:
    dataset="[A-Za-z0-9][A-Za-z0-9_-]*",
    method="dvlae|random|fps|kmeans|full",
    fraction="[0-9]+(\\.[0-9]+)?",
    seed="[0-9]+",


include: "materials_common.smk"


rule materials_generate_pdh:
    output:
        structures="resources/materials/{dataset}/generated.extxyz",
    log:
        "logs/materials/generate_pdh/{dataset}.log",
    benchmark:
        "benchmarks/materials/generate_pdh/{dataset}.tsv"
    conda:
        "../../envs/materials.yaml"
    params:
        generate=lambda wildcards: get_materials_dataset(wildcards)["generate"],
    script:
        "../scripts/materials_generate_pdh.py"


rule materials_ingest:
    input:
        sources=get_materials_sources,
    output:
        structures=f"{MATERIALS_RESULTS}/structures.extxyz",
        table=f"{MATERIALS_RESULTS}/structures.csv",
    log:
        "logs/materials/ingest/{dataset}.log",
    benchmark:
        "benchmarks/materials/ingest/{dataset}.tsv"
    conda:
        "../../envs/materials.yaml"
    params:
        sources=get_materials_source_specs,
        elements=lambda wildcards: get_materials_dataset(wildcards)["elements"],
        on_invalid=config["materials"]["on_invalid"],
    script:
        "../scripts/materials_ingest.py"


rule materials_split:
    input:
        table=f"{MATERIALS_RESULTS}/structures.csv",
    output:
        split=f"{MATERIALS_RESULTS}/split.csv",
    log:
        "logs/materials/split/{dataset}.log",
    benchmark:
        "benchmarks/materials/split/{dataset}.tsv"
    conda:
        "../../envs/materials.yaml"
    params:
        test_fraction=config["materials"]["split"]["test_fraction"],
        seed=config["materials"]["split"]["seed"],
    script:
        "../scripts/materials_split.py"


rule materials_descriptors:
    input:
        structures=f"{MATERIALS_RESULTS}/structures.extxyz",
    output:
        descriptors=f"{MATERIALS_RESULTS}/descriptors.npz",
    log:
        "logs/materials/descriptors/{dataset}.log",
    benchmark:
        "benchmarks/materials/descriptors/{dataset}.tsv"
    conda:
        "../../envs/materials.yaml"
    params:
        elements=lambda wildcards: get_materials_dataset(wildcards)["elements"],
        descriptors=config["materials"]["descriptors"],
    script:
        "../scripts/materials_descriptors.py"


rule materials_map:
    input:
        descriptors=f"{MATERIALS_RESULTS}/descriptors.npz",
        split=f"{MATERIALS_RESULTS}/split.csv",
        table=f"{MATERIALS_RESULTS}/structures.csv",
    output:
        vectors=f"{MATERIALS_RESULTS}/dvlae_vectors.npz",
        map=f"{MATERIALS_RESULTS}/map.csv",
    log:
        "logs/materials/map/{dataset}.log",
    benchmark:
        "benchmarks/materials/map/{dataset}.tsv"
    conda:
        "../../envs/materials.yaml"
    params:
        elements=lambda wildcards: get_materials_dataset(wildcards)["elements"],
        dvlae=config["materials"]["dvlae"],
        embedding=config["materials"]["embedding"],
    script:
        "../scripts/materials_map.py"


rule materials_select:
    input:
        descriptors=f"{MATERIALS_RESULTS}/descriptors.npz",
        map=f"{MATERIALS_RESULTS}/map.csv",
        structures=f"{MATERIALS_RESULTS}/structures.extxyz",
    output:
        selection=f"{MATERIALS_RESULTS}/selections/{{method}}_f{{fraction}}_s{{seed}}.csv",
        structures=f"{MATERIALS_RESULTS}/selections/{{method}}_f{{fraction}}_s{{seed}}.extxyz",
    log:
        "logs/materials/select/{dataset}_{method}_f{fraction}_s{seed}.log",
    benchmark:
        "benchmarks/materials/select/{dataset}_{method}_f{fraction}_s{seed}.tsv"
    conda:
        "../../envs/materials.yaml"
    params:
        elements=lambda wildcards: get_materials_dataset(wildcards)["elements"],
        k=config["materials"]["selection"]["k"],
        cell_size=config["materials"]["selection"]["cell_size"],
    script:
        "../scripts/materials_select.py"


rule materials_train:
    input:
        structures=f"{MATERIALS_RESULTS}/selections/{{method}}_f{{fraction}}_s{{seed}}.extxyz",
    output:
        model=f"{MATERIALS_RESULTS}/models/{{method}}_f{{fraction}}_s{{seed}}.pt",
        history=f"{MATERIALS_RESULTS}/models/{{method}}_f{{fraction}}_s{{seed}}_history.csv",
    log:
        "logs/materials/train/{dataset}_{method}_f{fraction}_s{seed}.log",
    benchmark:
        "benchmarks/materials/train/{dataset}_{method}_f{fraction}_s{seed}.tsv"
    conda:
        "../../envs/materials.yaml"
    threads: 1
    resources:
        gpu=get_gpu_resources("materials"),
    params:
        elements=lambda wildcards: get_materials_dataset(wildcards)["elements"],
        descriptors=config["materials"]["descriptors"],
        training=config["materials"]["training"],
        device=config["materials"]["device"],
        checkpoint=f"{MATERIALS_RESULTS}/checkpoints/{{method}}_f{{fraction}}_s{{seed}}.pt",
    script:
        "../scripts/materials_train.py"


rule materials_evaluate:
    input:
        model=f"{MATERIALS_RESULTS}/models/{{method}}_f{{fraction}}_s{{seed}}.pt",
        history=f"{MATERIALS_RESULTS}/models/{{method}}_f{{fraction}}_s{{seed}}_history.csv",
        structures=f"{MATERIALS_RESULTS}/structures.extxyz",
        split=f"{MATERIALS_RESULTS}/split.csv",
    output:
        predictions=f"{MATERIALS_RESULTS}/predictions/{{method}}_f{{fraction}}_s{{seed}}.csv",
        metrics=f"{MATERIALS_RESULTS}/metrics/{{method}}_f{{fraction}}_s{{seed}}.json",
    log:
        "logs/materials/evaluate/{dataset}_{method}_f{fraction}_s{seed}.log",
    benchmark:
        "benchmarks/materials/evaluate/{dataset}_{method}_f{fraction}_s{seed}.tsv"
    conda:
        "../../envs/materials.yaml"
    params:
        device=config["materials"]["device"],
    script:
        "../scripts/materials_evaluate.py"


rule materials_summary:
    input:
        metrics=get_materials_metrics,
    output:
        table=report(
            f"{MATERIALS_RESULTS}/metrics.csv",
            caption="../report/materials/metrics.rst",
            category="Materials",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "table": "errors per training job"},
        ),
        json=f"{MATERIALS_RESULTS}/metrics.json",
        energy=report(
            f"{MATERIALS_RESULTS}/figures/learning_curve_energy.png",
            caption="../report/materials/learning_curve_energy.rst",
            category="Materials",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "learning curve, energy"},
        ),
        forces=report(
            f"{MATERIALS_RESULTS}/figures/learning_curve_forces.png",
            caption="../report/materials/learning_curve_forces.rst",
            category="Materials",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "learning curve, forces"},
        ),
    log:
        "logs/materials/summary/{dataset}.log",
    benchmark:
        "benchmarks/materials/summary/{dataset}.tsv"
    conda:
        "../../envs/materials.yaml"
    script:
        "../scripts/materials_summary.py"


rule materials_figures:
    input:
        unpack(get_materials_highlight),
        map=f"{MATERIALS_RESULTS}/map.csv",
        vectors=f"{MATERIALS_RESULTS}/dvlae_vectors.npz",
    output:
        selection_map=report(
            f"{MATERIALS_RESULTS}/figures/selection_map.png",
            caption="../report/materials/selection_map.rst",
            category="Materials",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "DV-LAE map and selection"},
        ),
        error_map=report(
            f"{MATERIALS_RESULTS}/figures/error_map.png",
            caption="../report/materials/error_map.rst",
            category="Materials",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "map of test errors"},
        ),
        ood=report(
            f"{MATERIALS_RESULTS}/figures/ood.png",
            caption="../report/materials/ood.rst",
            category="Materials",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "out-of-distribution score"},
        ),
        ood_table=f"{MATERIALS_RESULTS}/ood.csv",
    log:
        "logs/materials/figures/{dataset}.log",
    benchmark:
        "benchmarks/materials/figures/{dataset}.tsv"
    conda:
        "../../envs/materials.yaml"
    script:
        "../scripts/materials_figures.py"
