# Local C2RCC jobs (backend native or gpt): the same planned jobs and the same manifests as
# rules/c2rcc.smk, from products downloaded once into the product cache (rules/download.smk).


rule local_job:
    input:
        graph=ancient(config["graph"]),
        # ancient: a product downloaded again (after the cache was pruned) must not re-run a job
        # already done, and a pruned product is fetched again only when the job has to run.
        products=local_job_products,
    output:
        paths.JOB_MANIFEST,
    log:
        "logs/local/{tile}/{year}/{season}/{job}.log",
    conda:
        "../envs/seasonal-c2rcc.yaml"
    threads: LOCAL_JOB_THREADS
    # not a localrule: under the SLURM profile processing runs on the compute nodes, while the
    # downloads feeding it stay on the head node
    resources:
        mem_mb=LOCAL_JOB_MEM_MB,
    params:
        # the catalogue is a param, not an input, as for remote jobs (rules/c2rcc.smk)
        catalogue=paths.CATALOGUE,
        out_dir=paths.JOB_DIR,
        log_dir="logs/local/gpt",
    script:
        "../scripts/local_job.py"
