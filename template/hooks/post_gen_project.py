"""Write the project's dvc.yaml with the aimed that runs cookiecutter, from the generated configs.

dvc.yaml is generated from aimed's pipeline graph, never written by hand. Without aimed here the
project still works: its Snakefile writes dvc.yaml whenever Snakemake starts (`make run`).
"""

import sys

try:
    from aimed.cli import main as aimed_main
except ImportError:
    print("cookiecutter: aimed is not installed here, so dvc.yaml is left to the first `make run`.")
else:
    sys.exit(aimed_main(["dvc-yaml"]))
