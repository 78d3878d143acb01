# Rules of the events module (DancingLines: TF-SW popularity and wDTW-CD alignment).
# Per corpus: simulate (optional) -> ingest; per event: select (keyword filter and
# tokenisation) -> popularity -> align; per corpus again: summary over its events.


wildcard_constraints:
    corpus="[A-Za-z0-9][A-Za-z0-9_-]*",
    event="[A-Za-z0-9][A-Za-z0-9_-]*",


include: "events_common.smk"


rule events_simulate:
    output:
        posts="resources/events/{corpus}/posts.csv",
        truth="resources/events/{corpus}/truth.csv",
    log:
        "logs/events/events_simulate/{corpus}.log",
    benchmark:
        "benchmarks/events/events_simulate/{corpus}.tsv"
    conda:
        "../../envs/events.yaml"
    params:
        simulate=lambda wildcards: get_events_corpus(wildcards.corpus)["simulate"],
        platforms=lambda wildcards: get_events_corpus(wildcards.corpus)["platforms"],
    script:
        "../scripts/events_simulate.py"


rule events_ingest:
    input:
        files=get_events_files,
    output:
        posts="results/events/{corpus}/posts.parquet",
        report="results/events/{corpus}/ingest.json",
    log:
        "logs/events/events_ingest/{corpus}.log",
    benchmark:
        "benchmarks/events/events_ingest/{corpus}.tsv"
    conda:
        "../../envs/events.yaml"
    params:
        # Every corpus setting but the event list, so that adding an event
        # does not re-run the ingest and everything after it.
        corpus=lambda wildcards: {
            key: value
            for key, value in get_events_corpus(wildcards.corpus).items()
            if key != "events"
        },
        file_platforms=get_events_file_platforms,
    script:
        "../scripts/events_ingest.py"


rule events_select:
    input:
        posts="results/events/{corpus}/posts.parquet",
    output:
        posts="results/events/{corpus}/{event}/posts.parquet",
    log:
        "logs/events/events_select/{corpus}_{event}.log",
    benchmark:
        "benchmarks/events/events_select/{corpus}_{event}.tsv"
    conda:
        "../../envs/events.yaml"
    params:
        event=get_events_event,
        platforms=lambda wildcards: get_events_corpus(wildcards.corpus)["platforms"],
        tokenize=lambda wildcards: config["events"]["tokenize"],
    script:
        "../scripts/events_select.py"


rule events_popularity:
    input:
        posts="results/events/{corpus}/{event}/posts.parquet",
        pretrained=get_events_pretrained,
    output:
        series="results/events/{corpus}/{event}/series.csv",
        words="results/events/{corpus}/{event}/textrank.csv",
    log:
        "logs/events/events_popularity/{corpus}_{event}.log",
    benchmark:
        "benchmarks/events/events_popularity/{corpus}_{event}.tsv"
    conda:
        "../../envs/events.yaml"
    params:
        event=get_events_event,
        corpus=lambda wildcards: {
            key: get_events_corpus(wildcards.corpus)[key]
            for key in ("slot", "timezone", "platforms")
        },
        word2vec=lambda wildcards: config["events"]["word2vec"],
        wordgraph=lambda wildcards: config["events"]["wordgraph"],
        popularity=lambda wildcards: config["events"]["popularity"],
    script:
        "../scripts/events_popularity.py"


rule events_align:
    input:
        series="results/events/{corpus}/{event}/series.csv",
    output:
        path="results/events/{corpus}/{event}/alignment_path.csv",
        metrics="results/events/{corpus}/{event}/metrics.json",
        alignment=report(
            "results/events/{corpus}/{event}/alignment.png",
            caption="../report/events/alignment.rst",
            category="Events",
            subcategory="{corpus}: {event}",
        ),
        cost_matrix=report(
            "results/events/{corpus}/{event}/cost_matrix.png",
            caption="../report/events/cost_matrix.rst",
            category="Events",
            subcategory="{corpus}: {event}",
        ),
    log:
        "logs/events/events_align/{corpus}_{event}.log",
    benchmark:
        "benchmarks/events/events_align/{corpus}_{event}.tsv"
    conda:
        "../../envs/events.yaml"
    params:
        platforms=lambda wildcards: get_events_corpus(wildcards.corpus)["platforms"],
        alignment=lambda wildcards: config["events"]["alignment"],
    script:
        "../scripts/events_align.py"


rule events_summary:
    input:
        unpack(get_events_summary_inputs),
    output:
        table=report(
            "results/events/{corpus}/summary.csv",
            caption="../report/events/summary_table.rst",
            category="Events",
            subcategory="{corpus}: summary",
        ),
        chart=report(
            "results/events/{corpus}/summary.png",
            caption="../report/events/summary_chart.rst",
            category="Events",
            subcategory="{corpus}: summary",
        ),
    log:
        "logs/events/events_summary/{corpus}.log",
    benchmark:
        "benchmarks/events/events_summary/{corpus}.tsv"
    conda:
        "../../envs/events.yaml"
    script:
        "../scripts/events_summary.py"
