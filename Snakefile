# aimed workflow: one rule per pipeline stage (workflow/rules/<stage>.smk), built from
# aimed.pipeline.STAGES. Run everything with:  snakemake --cores 1 --resources gpu=1
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/prepare_data.smk"
include: "workflow/rules/validate_data.smk"
include: "workflow/rules/check_preprocessing.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/export.smk"
include: "workflow/rules/evaluate.smk"


sync_dvc_yaml()


# Record what the jobs built in dvc.lock, after a failed job too: `dvc repro` would rebuild it otherwise.
onsuccess:
    sync_dvc_lock()


onerror:
    sync_dvc_lock()


rule all:
    default_target: True
    input:
        final_targets(),
