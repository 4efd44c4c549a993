# curriculab: how the order and mix of pretraining data changes what a language model learns.
# This file is the table of contents; the rules live in rules/, the logic in src/curriculab/.


# A study is one file: config.yaml, or the file given with --configfile (not a merge of both).
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/streams.smk"
include: "rules/training.smk"
include: "rules/evaluate.smk"
include: "rules/harness.smk"
include: "rules/analysis.smk"


if DESIGN:  # the study key `design` (docs/stages/design.md)

    include: "rules/design.smk"


if LADDER:  # the study key `ladder` (docs/stages/ladder.md)

    include: "rules/ladder.smk"


if SELECTION:  # the study key `selection` (docs/stages/selection.md)

    include: "rules/selection.smk"


if PANEL:  # the study key `panel` (docs/stages/panel.md)

    include: "rules/panel.smk"


include: "rules/report.smk"


# Quick jobs (milliseconds of work) run in the Snakemake process itself, also on a cluster.
localrules:
    all,
    stream,
    matched_stream,
    preregister,
    trunk_stream,
    evaluate,
    harness_task,


rule all:
    default_target: True
    input:
        "reports/report.html",
