from snakemake.utils import min_version

min_version("9.0")


# A config given with --configfile replaces the default run's config instead of
# being merged into it, so an example config runs only what it lists.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/materials.smk"
include: "workflow/rules/events.smk"
include: "workflow/rules/images.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        get_final_outputs(),
