# The job command: how every rule's shell runs its adapter (job, job_params) and which code it depends on
# (code_files).

# --- the job command --------------------------------------------------------------------------------------
# Every rule's shell command runs workflow_scripts/embedding_film/adapters/<rule>.py's main(job) through the warm-worker client,
# with the job's JSON (its named inputs, outputs and settings) in a small file the command names
# (.snakemake/film-jobs/, see job_spec_file). See docs/runtime.md.


# The Python that runs a job: the rule's conda environment's (`--sdm conda` puts it first on PATH), else the
# one running this Snakemake (its virtual environment), whatever PATH says.
PYTHON = (
    "python"
    if any("conda" in str(m).lower() for m in workflow.deployment_settings.deployment_method)
    else sys.executable
)


def job():
    """The shell command of a job: the adapter its params name (workflow_scripts/embedding_film/adapters/<adapter>.py, the
    rule's own), run by the client."""
    return f"exec {PYTHON} -S -c '{RUN_CLIENT}' {{params.adapter}} --log {{log:q}} --spec {{params.spec:q}}"


JOB_SPECS = ".snakemake/film-jobs"  # in the working directory, beside Snakemake's own records


def job_spec_file(text):
    """The path of a file holding `text`, a job's JSON, named by its content: written once, when the job is
    first planned (a dry run too), then found again by every later run whose job is the same, so the shell
    command names a file instead of carrying the JSON (`snakemake -n -p` prints a short line; `cat` the file
    to see what the job will receive)."""
    digest = hashlib.sha1(text.encode()).hexdigest()
    path = f"{JOB_SPECS}/{digest[:2]}/{digest}.json"
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    return path


def job_params(adapter, **settings):
    """A rule's params: `adapter`, the rule's adapter (workflow_scripts/embedding_film/adapters/<adapter>.py, named after the
    rule), `settings`, the job's settings as one dict (each a value, or a function of the
    wildcards, strings with wildcards filled in), and `spec`, the file holding the JSON its adapter receives
    (named input and output, the settings, wildcards, threads, resources: job_spec_file). Snakemake records
    `settings`, so a changed setting reruns exactly the jobs that use it; `spec` is derived from the input,
    output and threads, so it is not recorded, nor is a setting whose function takes `input` or `output` (it
    lives in the spec only). Two params
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

    def spec(wildcards, input, output, threads, resources):
        return job_spec_file(
            json.dumps(
                {
                    "input": named(input),
                    "output": named(output),
                    "params": values(wildcards, {"input": input, "output": output}),
                    "wildcards": dict(wildcards.items()),
                    "threads": threads,
                    "resources": {k: v for k, v in resources.items() if not k.startswith("_") and k != "tmpdir"},
                }
            )
        )

    return {"adapter": adapter, "settings": lambda wildcards: values(wildcards), "spec": spec}


CODE_DIGESTS = ".snakemake/film-code"  # in the working directory, beside the job specs


def code_files(rule):
    """The one file that stands for the code a rule's outputs depend on (its adapter and the embedding_film
    modules it imports, with their content hashes: workflow_scripts/embedding_film/runtime/code_inputs.py, code_digest),
    rewritten at parse time only when that code changed, so editing a module reruns exactly the jobs that run it."""
    return code_digest(rule, CODE_ROOT, CODE_DIGESTS)
