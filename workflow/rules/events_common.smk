# Helper functions of the events rules (events.smk includes this file). They live
# apart from the rules because Snakemake's linter asks not to mix the two in one file.


def get_events_corpus(corpus):
    """Return the config section of one events corpus."""
    return config["events"]["corpora"][corpus]


def get_events_event_names(corpus):
    """Return the names of the events of a corpus, in config order."""
    return [event["name"] for event in get_events_corpus(corpus)["events"]]


def get_events_event(wildcards):
    """Return the config entry of the event of a job."""
    for event in get_events_corpus(wildcards.corpus)["events"]:
        if event["name"] == wildcards.event:
            return event
    raise ValueError(f"event {wildcards.event!r} is not in corpus {wildcards.corpus!r}")


def is_events_simulated(corpus):
    """Return True when the corpus is built by the simulator."""
    return "simulate" in get_events_corpus(corpus)


def get_events_files(wildcards):
    """Return the input files of a corpus: the simulator's output or the config's files."""
    if is_events_simulated(wildcards.corpus):
        return [f"resources/events/{wildcards.corpus}/posts.csv"]
    files = get_events_corpus(wildcards.corpus)["files"]
    return [entry if isinstance(entry, str) else entry["path"] for entry in files]


def get_events_file_platforms(wildcards):
    """Return the fixed platform of each input file (None: use the platform column)."""
    if is_events_simulated(wildcards.corpus):
        return [None]
    files = get_events_corpus(wildcards.corpus)["files"]
    return [
        None if isinstance(entry, str) else entry.get("platform") for entry in files
    ]


def get_events_pretrained(wildcards):
    """Return the pretrained vectors file as a list (empty when none is configured)."""
    path = config["events"]["wordgraph"].get("pretrained")
    return [path] if path else []


def get_events_summary_inputs(wildcards):
    """Return the metrics of every event of a corpus, and the simulator's truth table."""
    inputs = {
        "metrics": expand(
            "results/events/{corpus}/{event}/metrics.json",
            corpus=wildcards.corpus,
            event=get_events_event_names(wildcards.corpus),
        )
    }
    if is_events_simulated(wildcards.corpus):
        inputs["truth"] = f"resources/events/{wildcards.corpus}/truth.csv"
    return inputs


def get_events_outputs():
    """Final outputs of the events module: per-event figures and per-corpus summaries."""
    outputs = []
    for corpus, section in config["events"]["corpora"].items():
        if not section["enabled"]:
            continue
        outputs.append(f"results/events/{corpus}/summary.csv")
        outputs.append(f"results/events/{corpus}/summary.png")
        for event in get_events_event_names(corpus):
            outputs.append(f"results/events/{corpus}/{event}/alignment.png")
            outputs.append(f"results/events/{corpus}/{event}/cost_matrix.png")
    return outputs
