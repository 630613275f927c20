"""`embedding-film film`: one command from a Trainer's output folder to a film.

Checked without Snakemake running (its argument handling is real, the run is replaced): the help lists every
setting of the schema with its description; dotted options, --configfile and --config reach the written,
complete config; a mistake is one sentence, exit 2, nothing written; --profile names the workflow's profile.
End to end: a dry run plans without making results; a small film of Trainer checkpoints from a folder outside
the repository; --watch on the finished folder; and the package built from a fresh clone of the committed
repository, installed into a folder of its own, runs from an empty folder.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO

from embedding_film.cli import command

SCHEMA = yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text())
EXTERNAL = ["--dataset.eval_size", "40", "--dataset.image_size", "16", "--ood.k", "5", "--projection.method", "pca"]


def schema_leaves(node: dict[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    """{dotted name: schema} of every setting that is not a section, read from the schema file itself."""
    out = {}
    for key, sub in node["properties"].items():
        out |= schema_leaves(sub, f"{prefix}{key}.") if "properties" in sub else {f"{prefix}{key}": sub}
    return out


def words(text: str) -> str:
    return " ".join(text.split())


class Ran:
    """Snakemake's args_to_api replaced: what it was given, and nothing run."""

    def __init__(self) -> None:
        self.args: Any = None

    def __call__(self, args: Any, parser: Any) -> bool:
        self.args = args
        return True


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Ran:
    import snakemake.cli

    fake = Ran()
    monkeypatch.setattr(snakemake.cli, "args_to_api", fake)
    monkeypatch.chdir(tmp_path)
    return fake


def checkpoints_folder(root: Path, name: str = "vit-digits") -> Path:
    """An empty stand-in for a Trainer output folder (the command checks that it is a folder; the workflow,
    not run here, checks what is in it)."""
    (root / name).mkdir(parents=True)
    return root / name


# --- help ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["--help"], [], ["film", "--help"]], ids=["--help", "nothing", "film --help"])
def test_help_lists_every_setting_with_its_description_and_default(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert command.main(argv) == 0
    text = capsys.readouterr().out
    flat = words(text)
    leaves = schema_leaves(SCHEMA)
    assert len(leaves) > 100
    for name, leaf in leaves.items():
        assert f"--{name} " in text, name
        if "description" in leaf:
            assert words(str(leaf["description"])) in flat, name
    for section in ("dataset", "training", "projection", "projection.tsne", "camera", "animation", "html"):
        assert f"\n{section}:\n" in text  # grouped by section
    assert "--ood.k INT Nearest neighbours used by the score" in flat
    assert "(default: 10)" in flat and "(default: builtin:digits)" in flat and "(default: [gif])" in flat
    assert "--checkpoints" in text and "--dataset D" in text and "--profile" in text and "--watch" in text


# --- the written config --------------------------------------------------------------------------------------


def test_dotted_options_and_a_configfile_reach_the_written_complete_config(ran: Ran, tmp_path: Path) -> None:
    folder = checkpoints_folder(tmp_path)
    (tmp_path / "mine.yaml").write_text("ood: {k: 3}\nframes: {top_k: 5}\nanimation: {fps: 4}\n")
    argv = ["film", "--checkpoints", str(folder), "--model", "builtin:tiny-vit", "--dataset", "builtin:digits"]
    argv += ["--configfile", "mine.yaml", "--config", "seed=7", "--ood.k", "10", "--dataset.eval_size", "500"]
    argv += ["--training.learning_rate", "1e-4", "--animation.formats", "[gif, mp4]", "--cores", "2"]
    assert command.main(argv) == 0
    written = tmp_path / "results" / "vit-digits" / "film_config.yaml"  # --run defaults to the folder's name
    cfg = yaml.safe_load(written.read_text())
    assert cfg["run"] == "vit-digits" and cfg["checkpoints"] == str(folder)
    assert cfg["ood"]["k"] == 10  # the command line wins over the config file
    assert cfg["frames"]["top_k"] == 5 and cfg["animation"]["fps"] == 4  # the config file's own settings
    assert cfg["seed"] == 7 and cfg["dataset"]["eval_size"] == 500 and cfg["dataset"]["name"] == "builtin:digits"
    assert cfg["training"]["learning_rate"] == 1e-4  # a number, though YAML reads 1e-4 as text
    assert cfg["animation"]["formats"] == ["gif", "mp4"]
    for name in schema_leaves(SCHEMA):  # every setting is written out
        node = cfg
        for key in name.split("."):
            node = node[key]
    assert cfg["projection"]["tsne"]["perplexity"] == 200 and cfg["camera"]["window"] == 3  # schema defaults
    # Snakemake got the packaged workflow on exactly that file, its config.yaml replaced, and --cores
    args = ran.args
    assert Path(args.snakefile) == command.workflow_folder() / "Snakefile"
    assert [Path(p) for p in args.configfile] == [written] and args.replace_workflow_config
    assert args.cores == 2 and Path(args.workflow_profile) == command.workflow_folder() / "profiles" / "default"
    assert not (tmp_path / "config.yaml").exists()

    # --run names the run; a string setting keeps what YAML would read as a number
    assert command.main(["film", "--checkpoints", str(folder), "--run", "2024"]) == 0
    assert yaml.safe_load((tmp_path / "results" / "2024" / "film_config.yaml").read_text())["run"] == "2024"


def test_options_snakemake_takes_go_to_it_and_a_dry_run_writes_nothing_under_results(ran: Ran, tmp_path: Path) -> None:
    folder = checkpoints_folder(tmp_path)
    assert command.main(["film", "--checkpoints", str(folder), "-n", "--forceall", "--keep-going", "all"]) == 0
    args = ran.args
    assert args.dryrun and args.forceall and args.keep_going and args.targets == ["all"]
    assert not (tmp_path / "results").exists()
    assert [Path(p) for p in args.configfile] == [tmp_path / ".snakemake" / "embedding-film" / "film_config.yaml"]
    assert yaml.safe_load(args.configfile[0].read_text())["checkpoints"] == str(folder)


def test_directory_is_the_working_directory_and_paths_stay_where_they_were_given(ran: Ran, tmp_path: Path) -> None:
    checkpoints_folder(tmp_path)
    assert command.main(["film", "--checkpoints", "vit-digits", "--directory", "elsewhere", "--run", "r"]) == 0
    cfg = yaml.safe_load((tmp_path / "elsewhere" / "results" / "r" / "film_config.yaml").read_text())
    assert cfg["checkpoints"] == str(tmp_path / "vit-digits")
    assert Path(ran.args.directory) == tmp_path / "elsewhere"


def test_profile_names_the_workflows_profile_or_a_folder(ran: Ran, tmp_path: Path) -> None:
    folder = checkpoints_folder(tmp_path)
    args = command.parser().parse_known_args(["--profile", "slurm"])[0]
    argv = command.snakemake_argv(args, tmp_path / "c.yaml", ["-n"])
    profile = command.workflow_folder() / "profiles" / "slurm"
    assert argv[argv.index("--workflow-profile") + 1] == str(profile) and argv[-1] == "-n"
    mine = tmp_path / "site"
    mine.mkdir()
    (mine / "config.yaml").write_text("jobs: 3\n")
    assert command.main(["film", "--checkpoints", str(folder), "--profile", str(mine)]) == 0
    assert Path(ran.args.workflow_profile) == mine and ran.args.jobs == 3  # the profile was read
    code = command.main(["film", "--checkpoints", str(folder), "--profile", "slurm"])
    if importlib.util.find_spec("snakemake_executor_plugin_slurm"):
        assert code == 0 and ran.args.executor == "slurm" and ran.args.jobs == 100
    else:
        assert code == 2  # one sentence naming the missing plugin (below)


# --- mistakes ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--ood.kk", "5"], "--ood.kk is not a setting (did you mean --ood.k?)"),
        (["--ood.k", "abc"], "ood.k: 'abc' is not of type 'integer'"),
        (["--dataset.eval_size", "1"], "dataset.eval_size: 1 is less than the minimum of 2"),
        (["--projection.method", "pcaa"], "projection.method: 'pcaa' is not one of"),
        (["--ood", "5"], "--ood is a section, not a setting"),
        (["--ood.k"], "argument --ood.k: expected one argument"),
        (["--configfile", "missing.yaml"], "--configfile missing.yaml: no such file"),
        (["--config", "nokey"], "--config takes KEY=VALUE entries"),
        (["--no-such-option"], "Snakemake: unrecognized arguments: --no-such-option"),
        (["--profile", "nope"], "--profile nope: no such profile; give one of the workflow's (default, slurm)"),
        (["--executor", "nosuch"], "Snakemake has no executor nosuch: install its plugin"),
        (["--checkpoints", "not-there"], "checkpoints: not-there is not a folder; give --checkpoints"),
        (["--watch", "--checkpoints", "null"], "--watch films a Trainer output folder while it grows"),
    ],
)
def test_a_mistake_is_one_sentence_exit_2_and_nothing_written(
    argv: list[str], says: str, ran: Ran, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoints_folder(tmp_path)
    if not any(a in argv for a in ("--checkpoints",)):
        argv = ["--checkpoints", "vit-digits", *argv]
    assert command.main(["film", *argv]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], err
    assert lines[0].startswith("embedding-film: ") and lines[0].endswith(".")
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vit-digits"]  # nothing written
    assert ran.args is None  # Snakemake did not run


def test_an_unknown_subcommand_is_one_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    assert command.main(["flim"]) == 2
    assert capsys.readouterr().err.strip() == (
        "embedding-film: 'flim' is not a command; run `embedding-film film ...` or `embedding-film workers` "
        "(`embedding-film --help` says how)."
    )


# --- end to end ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trainer_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from test_external_checkpoints import trainer_run

    return trainer_run(tmp_path_factory.mktemp("command") / "trainer_output")


def run(cwd: Path, *argv: str, exe: list[str] | None = None, env: dict[str, str] | None = None, timeout: int = 300):
    """The command in a process of its own, as a shell runs it."""
    env = env or dict(os.environ, PYTHONPATH=str(REPO / "workflow_scripts"))
    env["HF_HUB_OFFLINE"] = "1"
    exe = exe or [sys.executable, "-m", "embedding_film.cli.command"]
    return subprocess.run([*exe, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.workflow
def test_a_dry_run_prints_the_planned_jobs_and_makes_no_results(trainer_output: Path, tmp_path: Path) -> None:
    proc = run(tmp_path, "film", "--checkpoints", str(trainer_output), *EXTERNAL, "-n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "rule embed:" in out and "This was a dry-run" in out
    assert "film_html" in out and "train " not in out.split("Job stats:")[1].split("total")[0]
    assert not (tmp_path / "results").exists()


@pytest.mark.workflow
def test_a_small_film_from_a_folder_outside_the_repository(trainer_output: Path, tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("run: not-this\nnot_a_setting: 1\n")  # a user's unrelated config.yaml
    proc = run(tmp_path, "film", "--checkpoints", str(trainer_output), *EXTERNAL, "--cores", "2")
    assert proc.returncode == 0, proc.stderr[-4000:]
    res = tmp_path / "results" / "trainer_output"
    assert (res / "film.html").is_file() and (res / "animation.gif").is_file()
    assert sorted(p.name for p in (res / "frames").glob("*.png")) == ["2.png", "4.png", "6.png"]
    cfg = yaml.safe_load((res / "film_config.yaml").read_text())
    assert cfg["checkpoints"] == str(trainer_output) and cfg["ood"]["k"] == 5 and cfg["run"] == "trainer_output"

    # --watch on the finished folder: its first round finishes what is left (here nothing, unless the job
    # command's interpreter path differs, as with a symlinked .venv), sees the Trainer's last step and stops
    proc = run(tmp_path, "film", "--checkpoints", str(trainer_output), *EXTERNAL, "--watch", "--watch-quiet", "30")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "round 1: " in proc.stdout and "done: the Trainer's last checkpoint (6) is filmed" in proc.stdout


@pytest.mark.workflow
def test_installed_from_a_fresh_clone_it_runs_from_an_empty_folder(trainer_output: Path, tmp_path: Path) -> None:
    """The committed repository, cloned, built into a wheel and installed into a folder of its own (the
    dependencies are this environment's): the package, its workflow files, the console script and a dry run
    from the packaged Snakefile."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and a git checkout of the repository to clone")
    clone, wheels, target, empty = (tmp_path / name for name in ("clone", "wheels", "target", "empty"))
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True, timeout=120)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "--quiet"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(clone)], check=True)
    wheel = next(wheels.glob("embedding_film-*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True)
    shutil.rmtree(clone)
    empty.mkdir()
    env = dict(os.environ, PYTHONPATH=str(target))
    where = run(empty, "-c", "import embedding_film; print(embedding_film.__file__)", exe=[sys.executable], env=env)
    assert Path(where.stdout.strip()).is_relative_to(target), where.stdout + where.stderr
    workflow = target / "embedding_film" / "workflow"
    for path in ("Snakefile", "config.yaml", "rules/setup.smk", "schemas/config.schema.yaml"):
        assert (workflow / path).is_file(), path
    for path in ("profiles/default/config.yaml", "profiles/slurm/config.yaml", "envs", "report", "configs/live.yaml"):
        assert (workflow / path).exists(), path
    script = target / "bin" / "embedding-film"
    helped = run(empty, "--help", exe=[str(script)], env=env)
    assert helped.returncode == 0 and "--projection.method" in helped.stdout, helped.stderr
    planned = run(empty, "film", "--checkpoints", str(trainer_output), *EXTERNAL, "-n", exe=[str(script)], env=env)
    out = planned.stdout + planned.stderr
    assert planned.returncode == 0, out[-3000:]
    assert f"Snakefile: {workflow / 'Snakefile'}" in out and "rule embed:" in out and "This was a dry-run" in out
    assert sorted(p.name for p in empty.iterdir()) == [".snakemake"]  # the plan's records only
    # the film itself, from the installed package alone: its jobs, workers and page files come from `target`
    made = run(
        empty, "film", "--checkpoints", str(trainer_output), *EXTERNAL, "--cores", "2", exe=[str(script)], env=env
    )
    assert made.returncode == 0, (made.stdout + made.stderr)[-3000:]
    results = empty / "results" / trainer_output.name
    assert (results / "film.html").stat().st_size > 100_000 and (results / "animation.gif").is_file()
    assert (results / "film_config.yaml").is_file()
    listed = (empty / ".snakemake" / "film-code" / "embed.txt").read_text().splitlines()
    assert listed and all((target / line.split("  ")[1]).is_file() for line in listed)  # the installed code
