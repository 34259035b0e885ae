# Remote C2RCC jobs on EOCanvas and the local clip of each sub-tile from their results.


rule remote_job:
    input:
        # ancient: a refreshed catalogue must not re-run (and re-pay) jobs already done.
        catalogue=ancient(wf.CATALOGUE),
        graph=ancient(config["graph"]),
    output:
        wf.JOB_MANIFEST,
    log:
        "logs/eocanvas/{tile}/{year}/{season}/{job}.log",
    retries: config["eocanvas"]["retries"]
    localrule: True
    conda:
        "../envs/seasonal-c2rcc.yaml"
    resources:
        eocanvas_jobs=1,
    params:
        out_dir=wf.JOB_DIR,
        state_dir=wf.STATE_DIR,
        log_dir="logs/eocanvas/remote",
    script:
        "../scripts/remote_job.py"


rule clip:
    input:
        job=job_manifest,
    output:
        wf.PRODUCT,
    log:
        "logs/clip/{tile}/{year}/{season}/{subtile}/{product}.log",
    conda:
        "../envs/seasonal-c2rcc.yaml"
    script:
        "../scripts/clip.py"
