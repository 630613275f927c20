"""The SLURM profile: what it plans (no cluster needed), and the tiny film run for real through SLURM.

The real run needs a single-node SLURM cluster, which tests/cluster/start.sh starts from the Debian
packages slurm-wlm and munge (root, no systemd; ~1 s). Where those are missing, or not root, the test is
skipped with the reason; with CI=true it must run (.ci/run installs the packages) and fails loudly when
the cluster cannot start. The fixture stops only the daemons it started (by their PID files).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, SNAKEMAKE, make_workdir, snakemake

pytestmark = pytest.mark.workflow

PROFILE = REPO / "profiles" / "slurm"
CLUSTER = REPO / "tests" / "cluster"
ARTIFACTS = REPO / "tests" / "artifacts"  # git-ignored
STATE = Path(os.environ.get("FILM_SLURM_STATE", "/tmp/embedding-film-slurm"))
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
STEPS = [0, 5, 10, 15, 20]  # tiny.yaml
GPU_RULES = {"train", "embed", "train_probs"}  # the rules that must ask SLURM for a GPU (the forward passes)
ARRAY_RULES = {"embed", "ood", "label_issues", "project", "metrics", "frame"}  # one job per checkpoint, one array each


def _rule_resources(output: str) -> dict[str, list[dict[str, str]]]:
    """{rule: [{resource: value} per job]} from a dry run's job listing."""
    found: dict[str, list[dict[str, str]]] = {}
    for block in re.split(r"\n(?=(?:local)?rule \S+:)", output):
        m = re.match(r"(?:local)?rule (\S+):", block.strip())
        res = re.search(r"^\s+resources: (.*)$", block, re.M)
        if m and res:
            found.setdefault(m.group(1), []).append(
                dict(kv.split("=", 1) for kv in res.group(1).split(", ") if "=" in kv)
            )
    return found


def _need_plugin() -> None:
    """The profile's executor is the SLURM plugin, an extra (make slurm; .ci/run installs it under CI)."""
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        reason = "the SLURM executor plugin is not installed (make slurm; .ci/run does this with CI=true)"
        if CI:
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)


def test_profile_plans_one_job_per_checkpoint_and_gpus_only_for_training_and_forward_passes(tmp_path: Path) -> None:
    # A dry run with the profile needs no cluster: it shows what would be submitted.
    _need_plugin()
    workdir = make_workdir(tmp_path)
    proc = snakemake(workdir, "-n", "--workflow-profile", str(PROFILE), "--configfile", "test.yaml")
    out = proc.stdout + proc.stderr
    jobs = _rule_resources(out)
    for rule in ARRAY_RULES:
        assert len(jobs[rule]) == len(STEPS), rule  # one job per checkpoint, submitted as one array
    gpu_rules = {rule for rule, res in jobs.items() if any(r.get("gpu", "0") != "0" for r in res)}
    assert gpu_rules == GPU_RULES, gpu_rules
    resources = {rule: res[0] for rule, res in jobs.items()}
    assert resources["train"]["cpus_per_gpu"] == "4"
    for rule, res in resources.items():
        assert "runtime" in res and "mem_mb" in res, (rule, res)  # walltime and memory for every sbatch
        assert "slurm_partition" not in res and "slurm_account" not in res  # site settings stay out
    # One checkpoint left to embed (an appended one): locally it takes every core; through the profile one CPU,
    # not the cluster's allowance
    embeddings = workdir / "results" / "tiny" / "embeddings"
    embeddings.mkdir(parents=True)
    for step in STEPS[:-1]:
        (embeddings / f"{step}.npy").touch()
    out = snakemake(workdir, "-n", "--workflow-profile", str(PROFILE), "--configfile", "test.yaml").stdout
    embeds = [b for b in re.split(r"\n(?=(?:local)?rule \S+:)", out) if re.match(r"(?:local)?rule embed:", b.strip())]
    threads = [re.search(r"^\s+threads: (\d+)$", b, re.M) for b in embeds]
    assert embeds and not any(threads), [t.group(0) for t in threads if t]  # (a job of one thread shows none)


# ---------------------------------------------------------------------------------------- the cluster


def _why_no_cluster() -> str | None:
    if sys.platform != "linux":
        return "a local SLURM cluster needs Linux"
    if os.geteuid() != 0:
        return "starting a local SLURM cluster needs root (tests/cluster/start.sh)"
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])  # the daemons live in sbin
    missing = [t for t in ("munged", "slurmctld", "slurmd", "sbatch", "squeue") if not shutil.which(t, path=path)]
    if missing:
        return f"{', '.join(missing)} not installed (Debian: apt-get install slurm-wlm munge; .ci/run does this with CI=true)"
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        return "the SLURM executor plugin is not installed (make slurm; .ci/run does this with CI=true)"
    conf = Path("/etc/slurm/slurm.conf")
    if conf.exists() and "generated by embedding-film" not in conf.read_text(errors="replace"):
        return "/etc/slurm/slurm.conf belongs to a real SLURM installation; the test cluster will not replace it"
    return None


def _ours_running() -> bool:
    def alive(name: str) -> bool:
        try:
            os.kill(int((STATE / f"{name}.pid").read_text()), 0)
            return True
        except (OSError, ValueError):
            return False

    return all(alive(d) for d in ("munged", "slurmctld", "slurmd"))


@pytest.fixture(scope="module")
def slurm_cluster() -> Path:
    reason = _why_no_cluster()
    if reason:
        if CI:
            pytest.fail(f"CI=true but the SLURM test cannot run: {reason}")
        pytest.skip(reason)
    started_here = not _ours_running()
    proc = subprocess.run([str(CLUSTER / "start.sh")], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        pytest.fail(f"the local SLURM cluster did not start:\n{proc.stdout}\n{proc.stderr}")
    yield STATE
    if started_here:
        subprocess.run([str(CLUSTER / "stop.sh")], capture_output=True, text=True, timeout=120)


def _run_interruptibly(cmd: list[str], cwd: Path, timeout: int) -> subprocess.CompletedProcess[str]:
    """Run Snakemake; on timeout stop it with SIGINT (SIGTERM does not stop a SLURM run), which also
    cancels its SLURM jobs, and fail with the end of its output."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        pytest.fail(f"the SLURM run did not finish within {timeout} s:\n{out[-6000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, "")


def _scheduler_history(run_id: str) -> dict[str, dict[str, str]]:
    """{slurm job id: {array, state, partition, comment, tres}} of the run's jobs, as slurmctld remembers them
    for MinJobAge seconds after they end (no accounting database needed). Every array task has its own job id;
    array: the id its sbatch returned (the array's base id; a single job's own id). tres: what --gpus asked
    for, or N/A."""
    out = subprocess.run(
        [
            "squeue",
            "--states=all",
            "--noheader",
            "--name",
            run_id,
            "--Format",
            "JobID:20,JobArrayID:20,State:20,Partition:20,Comment:80,tres-per-job:40",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    jobs = {}
    for line in out.splitlines():
        jobid, array, state, partition, comment, tres = line.split()
        jobs[jobid] = {
            "array": array.split("_")[0],
            "state": state,
            "partition": partition,
            "comment": comment,
            "tres": tres,
        }
    return jobs


def _compare_trees(local: Path, cluster: Path) -> list[str]:
    """Files that differ (or are missing) between two results folders; logs and benchmarks excluded."""
    differences = []
    skip = {"logs", "benchmarks"}
    for path in sorted(local.rglob("*")):
        rel = path.relative_to(local)
        if path.is_dir() or skip & set(rel.parts):
            continue
        other = cluster / rel
        if not other.is_file():
            differences.append(f"missing on SLURM: {rel}")
        elif other.read_bytes() != path.read_bytes():
            differences.append(f"different: {rel}")
    for path in sorted(cluster.rglob("*")):
        rel = path.relative_to(cluster)
        if path.is_file() and not skip & set(rel.parts) and not (local / rel).exists():
            differences.append(f"only on SLURM: {rel}")
    return differences


@pytest.mark.cluster
def test_tiny_film_through_slurm_matches_the_local_run(slurm_cluster: Path, tiny_run: Path, tmp_path: Path) -> None:
    workdir = make_workdir(tmp_path / "slurm")
    started = time.monotonic()
    proc = _run_interruptibly(
        [
            SNAKEMAKE,
            "--snakefile",
            str(REPO / "Snakefile"),
            "--workflow-profile",
            str(PROFILE),
            "--configfile",
            "test.yaml",
            # Test-only overrides, everything else is the profile as a user runs it:
            # the profile's 20 s before the first status check would make this test wait ~3x longer.
            "--slurm-init-seconds-before-status-checks",
            "3",
            # A site setting, as docs/cluster.md describes it: GPU jobs to partition "gpu", others to "cpu".
            "--slurm-partition-config",
            str(PROFILE / "partitions.example.yaml"),
        ],
        cwd=workdir,
        timeout=600,
    )
    elapsed = time.monotonic() - started
    out = proc.stdout
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "slurm_run.log").write_text(out)  # the whole run's output, for a failed CI job
    assert proc.returncode == 0, f"SLURM run failed ({proc.returncode}) after {elapsed:.0f} s:\n{out[-8000:]}"

    # Every job went through sbatch: the plugin logs each single job's SLURM id, and each array's.
    singles = re.findall(r"has been submitted with SLURM jobid (\d+) \(log: ([^)]+)\)", out)
    jobs_done = int(re.search(r"(\d+) of \d+ steps \(100%\) done", out).group(1))
    assert singles, out[-4000:]
    for jobid, log in singles:
        log_path = Path(log)
        assert log_path.is_file(), f"no SLURM log for job {jobid}: {log}"
        assert any(
            part.startswith("rule_") for part in log_path.parts
        )  # .snakemake/slurm_logs/rule_<rule>/<run>/<jobid>.log
    arrays = re.findall(r"Submitted array job with Snakemake IDs ([\d,]+) and SLURM job ID (\d+)", out)
    assert arrays, out[-4000:]
    run_id = re.search(r"SLURM run ID: (\S+)", out).group(1)
    assert run_id.startswith("film_")  # slurm-jobname-prefix from the profile

    # ... and slurmctld ran them, all COMPLETED: the jobs of a per-checkpoint stage that are ready together
    # go as one array (all embeddings at once, after training), one task per checkpoint; film-level rules as
    # single jobs; far fewer sbatch calls than jobs.
    history = _scheduler_history(run_id)
    assert {j["state"] for j in history.values()} == {"COMPLETED"}, history
    by_rule: dict[str, list[str]] = {}
    for jobid, job in history.items():
        by_rule.setdefault(job["comment"].removeprefix("rule_").split("_wildcards_")[0], []).append(jobid)
    for rule in ARRAY_RULES:
        assert len(by_rule[rule]) == len(STEPS), (rule, by_rule[rule])  # one task (or job) per checkpoint
    assert len({history[t]["array"] for t in by_rule["embed"]}) == 1, by_rule["embed"]  # one array for every embedding
    submissions = len({job["array"] for job in history.values()})
    assert submissions == len(singles) + len(arrays), (submissions, len(singles), len(arrays))
    # At least the embedding array's saving. How many later jobs share an array depends on which array tasks
    # end between two of the executor's status checks (26 and 29 submissions for 40 jobs in two runs here).
    assert submissions <= jobs_done - (len(STEPS) - 1), (submissions, jobs_done)
    assert {"train", "animate"} <= set(by_rule)
    for job in history.values():
        wants_gpu = job["comment"].removeprefix("rule_").split("_wildcards_")[0] in GPU_RULES
        assert ("gpu" in job["tres"]) == wants_gpu, job
        assert job["partition"] == ("gpu" if wants_gpu else "cpu"), job
    (ARTIFACTS / "slurm_submissions.txt").write_text(f"{submissions} sbatch submissions for {jobs_done} jobs\n")

    # The film made on SLURM is the local film, byte for byte (CPU-deterministic; warm workers, arrays
    # and thread counts do not change results).
    differences = _compare_trees(tiny_run / "results" / "tiny", workdir / "results" / "tiny")
    assert not differences, differences
    print(f"SLURM run: {jobs_done} jobs in {submissions} sbatch submissions, {elapsed:.0f} s")
