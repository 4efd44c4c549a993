# curriculab: how the order and mix of pretraining data changes what a language model learns.
# This file is the table of contents; the rules live in rules/, the logic in src/curriculab/.


configfile: "config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/streams.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        "reports/report.html",
