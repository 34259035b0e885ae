# Remote C2RCC jobs on EOCanvas (each sub-tile is cut out of their results by rule composite).


rule remote_job:
    input:
        # Not the catalogue: its path is a param. A remote job only enters the DAG once the
        # composite's input function has the selection (frozen, or after the checkpoint), and an
        # input list that changed with a refresh would re-run every job already done.
        graph=ancient(config["graph"]),
    output:
        paths.JOB_MANIFEST,
    log:
        "logs/eocanvas/{tile}/{year}/{season}/{job}.log",
    retries: config["eocanvas"]["retries"]
    localrule: True
    conda:
        "../envs/seasonal-c2rcc.yaml"
    resources:
        eocanvas_jobs=1,
        # the attempt number, for seasonal_c2rcc.failfast (a permanent failure is not tried again)
        attempt=lambda wildcards, attempt: attempt,
    params:
        catalogue=paths.CATALOGUE,
        out_dir=paths.JOB_DIR,
        state_dir=paths.STATE_DIR,
        log_dir=paths.REMOTE_LOG_DIR,
    script:
        "../scripts/remote_job.py"
