# The job command: how every rule's shell runs its adapter (job, job_params) and which code it depends on
# (code_files).

# --- the job command --------------------------------------------------------------------------------------
# Every rule's shell command runs workflow_scripts/adapters/<rule>.py's main(job) through the warm-worker client,
# with the job's JSON (params.job, see job_params) on stdin. See workflow_scripts/runtime/worker.py and job.py.


# The Python that runs a job: the rule's conda environment's (`--sdm conda` puts it first on PATH), else the
# one running this Snakemake (its virtual environment), whatever PATH says.
PYTHON = (
    "python"
    if any("conda" in str(m).lower() for m in workflow.deployment_settings.deployment_method)
    else sys.executable
)


def job():
    """The shell command of a job: the adapter its params name (workflow_scripts/adapters/<adapter>.py, the
    rule's own), run by the client."""
    return f"exec {PYTHON} -S -c '{RUN_CLIENT}' {{params.adapter}} --log {{log:q}} <<< {{params.job:q}}"


def job_params(adapter, **settings):
    """A rule's params: `adapter`, the rule's adapter (workflow_scripts/adapters/<adapter>.py, named after the
    rule), `settings`, the job's settings as one dict (each a value, or a function of the
    wildcards, strings with wildcards filled in), and `job`, the JSON its adapter receives (named input and
    output, the settings, wildcards, threads, resources). Snakemake records `settings`, so a changed setting
    reruns exactly the jobs that use it; `job` is derived from the input, output and threads, so it is not
    recorded, nor is a setting whose function takes `input` or `output` (it lives in `job` only). Two params
    functions per rule, not one per setting: Snakemake inspects and calls every params function of every job
    when it plans, which a dry run of 1,000 checkpoints paid 30,000 times."""
    takes = {
        name: [p for p in inspect.signature(value).parameters if p in ("input", "output")] if callable(value) else []
        for name, value in settings.items()
    }

    def values(wildcards, files=None):
        """Each setting's value for this job; those that take input/output only when `files` gives them."""
        out = {}
        for name, value in settings.items():
            if not callable(value):
                out[name] = apply_wildcards(value, wildcards) if isinstance(value, str) else value
            elif not takes[name]:
                out[name] = value(wildcards)
            elif files is not None:
                out[name] = value(wildcards, **{p: files[p] for p in takes[name]})
        return out

    def named(files):
        return {name: list(value) if isinstance(value, list) else str(value) for name, value in files.items()}

    def job(wildcards, input, output, threads, resources):
        return json.dumps(
            {
                "input": named(input),
                "output": named(output),
                "params": values(wildcards, {"input": input, "output": output}),
                "wildcards": dict(wildcards.items()),
                "threads": threads,
                "resources": {k: v for k, v in resources.items() if not k.startswith("_") and k != "tmpdir"},
            }
        )

    return {"adapter": adapter, "settings": lambda wildcards: values(wildcards), "job": job}


def code_files(rule):
    """The code a rule's outputs depend on: its adapter and the workflow_scripts modules it imports
    (workflow_scripts/runtime/code_inputs.py), so editing a module reruns exactly the jobs that run it."""
    return code_inputs(rule, workflow.basedir)
