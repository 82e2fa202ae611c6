"""The command line: help lists the subcommands, typos get a suggestion, the version prints."""
import json
import subprocess
import sys
from pathlib import Path

from conftest import REPO


def kdlib(*args):
    return subprocess.run([sys.executable, "-m", "kdlib", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def test_help_lists_every_subcommand():
    res = kdlib("--help")
    assert res.returncode == 0
    for cmd in ("grid", "notebook", "bench", "export", "import", "device-run"):
        assert f"  {cmd} " in res.stdout


def test_unknown_command_suggests_the_nearest():
    res = kdlib("imprt")
    assert res.returncode == 2 and "did you mean 'import'" in res.stderr


def test_version():
    from kdlib import __version__

    res = kdlib("--version")
    assert res.returncode == 0 and res.stdout.strip() == f"kdlib {__version__}"


def test_import_of_a_missing_source_is_one_line(tmp_path):
    res = kdlib("import", str(tmp_path / "nothing.tar.gz"), "--to", str(tmp_path / "res"))
    assert res.returncode == 1 and res.stderr.startswith("error: ") and "Traceback" not in res.stderr


COMMANDS = ("grid", "notebook", "bench", "export", "import", "device-run")


def _parser_of(command, monkeypatch):
    """The argparse parser a subcommand builds (captured at parse_args, before anything runs)."""
    import pytest

    import kdlib.base.cli
    from kdlib.__main__ import main

    class Captured(Exception):
        pass

    def capture(self, *a, **k):
        raise Captured(self)

    monkeypatch.setattr(kdlib.base.cli.ArgumentParser, "parse_args", capture)
    with pytest.raises(Captured) as info:
        main([command])
    return info.value.args[0]


def test_every_option_of_every_subcommand_has_help_and_a_shown_default(monkeypatch):
    import argparse

    for command in COMMANDS:
        parser = _parser_of(command, monkeypatch)
        assert issubclass(parser.formatter_class, argparse.ArgumentDefaultsHelpFormatter), command
        formatter = parser.formatter_class(parser.prog)
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help and action.help.strip(), (command, action.dest)
            if action.option_strings and not action.required:  # the formatter appends "(default: ...)"
                assert "%(default)" in formatter._get_help_string(action), (command, action.dest)
        assert "(default: " in parser.format_help()


def test_unknown_profile_experiment_and_device_are_one_line_with_a_suggestion():
    for args, needle in ((["grid", "--profile", "quik"], "did you mean 'quick'"),
                         (["grid", "--profile", "smoke", "--only", "E71"], "did you mean 'E"),
                         (["grid", "--profile", "smoke", "--device", "gpu"], "did you mean 'cuda'"),
                         (["notebook", "teacher-main-resnet18-none", "--profile", "smok"], "did you mean 'smoke'"),
                         (["notebook", "teacher-main-resnet18-nne", "--profile", "smoke"],
                          "did you mean 'teacher-main-resnet18-none'"),
                         (["bench", "--device", "gpu"], "did you mean 'cuda'"),
                         (["device-run", "--profile", "papr", "--seeds", "0", "--budget", "9", "--out", "x"],
                          "did you mean 'paper'"),
                         (["grid", "--frobnicate"], "unrecognized arguments: --frobnicate")):
        res = kdlib(*args)
        assert res.returncode == 2, (args, res.stderr)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], (args, res.stderr)


def test_notebook_passes_papermill_parameters(monkeypatch, tmp_path, capsys):
    import kdlib.book.notebooks as N

    seen = {}

    def fake_execute(source, output, parameters, **kw):
        seen.update(parameters, _source=source)
        return output

    monkeypatch.setattr(N, "execute", fake_execute)
    rc = N.main(["students-main-resnet18-flipcrop-mixup-to-none-a0.5-T20", "--profile", "smoke", "--device", "cpu",
                 "-p", "temperature", "4.0", "-p", "students", "[lenet]", "--output", str(tmp_path / "o.ipynb")])
    assert rc == 0 and seen["temperature"] == 4.0 and seen["students"] == ["lenet"] and seen["device"] == "cpu"
    assert seen["profile"] == "smoke" and seen["_source"].name == "students.py"


def test_the_notebook_launcher_names_a_profile_without_importing_torch():
    """Snakemake starts one `kdlib notebook` per job: planning and torch are the kernel's business (2 s a job)."""
    code = ("import sys\n"
            "from kdlib.book.notebooks import _raw_grid\n"
            "from kdlib.base.cli import check_device\nfrom kdlib.base.gridfile import check_profile\n"
            "check_profile('quick', _raw_grid()); check_device('auto'); check_device('cpu')\n"
            "import kdlib, papermill, jupytext\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n"
            "assert callable(kdlib.build_model) and 'torch' in sys.modules\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr


def test_a_prepared_task_runs_the_notebook_with_the_planned_parameters(tmp_path, monkeypatch):
    """`kdlib notebook TASK --kind K --title T -p ...` (Snakemake's call) executes what `kdlib notebook TASK` does."""
    from kdlib.book import notebooks
    from kdlib.runs.plan import load_grid, plan

    seen = []
    monkeypatch.setattr(notebooks, "execute", lambda source, out, params, **kw: seen.append(
        (Path(source).name, Path(out), params, kw.get("title"))) or out)
    task = next(t for t in plan("smoke", load_grid()) if t.name == "students-main-resnet18-flipcrop-to-none-a0.5-T20")
    runs = str(tmp_path / "runs")
    assert notebooks.main([task.name, "--profile", "smoke", "--runs", runs, "--device", "cpu",
                           "--output", str(tmp_path / "a.ipynb")]) == 0
    args = [task.name, "--profile", "smoke", "--runs", runs, "--device", "cpu", "--output", str(tmp_path / "b.ipynb"),
            "--kind", "students", "--title", seen[0][3]]
    for k, v in task.params.items():
        if k != "profile":
            args += ["-p", k, json.dumps(v)]
    assert notebooks.main(args) == 0
    (sa, _, pa, ta), (sb, _, pb, tb) = seen
    assert (sa, pa, ta) == (sb, pb, tb) and pa["students"] == ["lenet", "alexnet"] and pa["temperature"] == 20.0
