# Rules of the images module (implicit ReLU networks and the DEQ NNGP kernel).
# ingest -> train per (variant, width factor) -> summary figures; ingest -> NNGP kernel
# (eigenvalues, GP regression) and finite-width covariance of random DEQs.


wildcard_constraints:
    dataset="[A-Za-z0-9][A-Za-z0-9_-]*",
    variant="all|implicit",
    factor="[0-9]+([.][0-9]+)?",


include: "images_common.smk"


rule images_ingest:
    output:
        dataset="results/images/{dataset}/data/dataset.npz",
        summary="results/images/{dataset}/data/summary.json",
    log:
        "logs/images/images_ingest/{dataset}.log",
    benchmark:
        "benchmarks/images/images_ingest/{dataset}.tsv"
    conda:
        "../../envs/images.yaml"
    params:
        data=config["images"]["data"],
    script:
        "../scripts/images_ingest.py"


rule images_train:
    input:
        dataset="results/images/{dataset}/data/dataset.npz",
    output:
        history="results/images/{dataset}/train/{variant}/width-{factor}N/history.csv",
        metrics="results/images/{dataset}/train/{variant}/width-{factor}N/metrics.json",
    log:
        "logs/images/images_train/{dataset}_{variant}_{factor}N.log",
    benchmark:
        "benchmarks/images/images_train/{dataset}_{variant}_{factor}N.tsv"
    conda:
        "../../envs/images.yaml"
    threads: 1
    resources:
        gpu=get_gpu_resources("images"),
    params:
        training=config["images"]["training"],
        device=config["images"]["device"],
    script:
        "../scripts/images_train.py"


rule images_summarize:
    input:
        metrics=get_images_training_runs("metrics"),
        histories=get_images_training_runs("history"),
        nngp=get_images_nngp_metrics,
    output:
        table=report(
            "results/images/{dataset}/training_summary.csv",
            caption="../report/images/training_summary.rst",
            category="Images",
            subcategory="Implicit networks",
        ),
        json="results/images/{dataset}/training_runs.json",
        loss_curves=report(
            "results/images/{dataset}/figures/loss_curves.png",
            caption="../report/images/loss_curves.rst",
            category="Images",
            subcategory="Implicit networks",
        ),
        rate=report(
            "results/images/{dataset}/figures/rate_vs_width.png",
            caption="../report/images/rate_vs_width.rst",
            category="Images",
            subcategory="Implicit networks",
        ),
        gram=report(
            "results/images/{dataset}/figures/gram_eigenvalues.png",
            caption="../report/images/gram_eigenvalues.rst",
            category="Images",
            subcategory="Implicit networks",
        ),
        accuracy=report(
            "results/images/{dataset}/figures/accuracy_vs_width.png",
            caption="../report/images/accuracy_vs_width.rst",
            category="Images",
            subcategory="Implicit networks",
        ),
        iterations=report(
            "results/images/{dataset}/figures/solver_iterations.png",
            caption="../report/images/solver_iterations.rst",
            category="Images",
            subcategory="Implicit networks",
        ),
    log:
        "logs/images/images_summarize/{dataset}.log",
    benchmark:
        "benchmarks/images/images_summarize/{dataset}.tsv"
    conda:
        "../../envs/images.yaml"
    script:
        "../scripts/images_summarize.py"


rule images_nngp:
    input:
        dataset="results/images/{dataset}/data/dataset.npz",
    output:
        metrics="results/images/{dataset}/nngp/metrics.json",
        history="results/images/{dataset}/nngp/eigen_history.csv",
        sigma_w="results/images/{dataset}/nngp/eigen_sigma_w.csv",
        history_figure=report(
            "results/images/{dataset}/nngp/figures/eigen_history.png",
            caption="../report/images/nngp_eigen_history.rst",
            category="Images",
            subcategory="NNGP kernel",
        ),
        sigma_w_figure=report(
            "results/images/{dataset}/nngp/figures/eigen_sigma_w.png",
            caption="../report/images/nngp_eigen_sigma_w.rst",
            category="Images",
            subcategory="NNGP kernel",
        ),
    log:
        "logs/images/images_nngp/{dataset}.log",
    benchmark:
        "benchmarks/images/images_nngp/{dataset}.tsv"
    conda:
        "../../envs/images.yaml"
    params:
        nngp=config["images"]["nngp"],
        center_inputs=config["images"]["training"]["center_inputs"],
    script:
        "../scripts/images_nngp.py"


rule images_nngp_width:
    input:
        dataset="results/images/{dataset}/data/dataset.npz",
    output:
        metrics="results/images/{dataset}/nngp/finite_width.json",
        table="results/images/{dataset}/nngp/finite_width.csv",
        normality=report(
            "results/images/{dataset}/nngp/normality.csv",
            caption="../report/images/nngp_normality.rst",
            category="Images",
            subcategory="NNGP kernel",
        ),
        figure=report(
            "results/images/{dataset}/nngp/figures/finite_width_error.png",
            caption="../report/images/nngp_finite_width.rst",
            category="Images",
            subcategory="NNGP kernel",
        ),
        qq=report(
            "results/images/{dataset}/nngp/figures/output_qq.png",
            caption="../report/images/nngp_output_qq.rst",
            category="Images",
            subcategory="NNGP kernel",
        ),
    log:
        "logs/images/images_nngp_width/{dataset}.log",
    benchmark:
        "benchmarks/images/images_nngp_width/{dataset}.tsv"
    conda:
        "../../envs/images.yaml"
    threads: 1
    resources:
        gpu=get_gpu_resources("images"),
    params:
        nngp=config["images"]["nngp"],
        center_inputs=config["images"]["training"]["center_inputs"],
        device=config["images"]["device"],
    script:
        "../scripts/images_nngp_width.py"
