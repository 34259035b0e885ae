# `snakemake bill`: what the configured campaign will cost, before anything is spent.


rule bill:
    # Reads whatever catalogues are frozen so far and estimates the rest; never searches.
    output:
        paths.BILL,
    log:
        "logs/bill.log",
    localrule: True
    conda:
        "../envs/seasonal-c2rcc.yaml"
    script:
        "../scripts/bill.py"
