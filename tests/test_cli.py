"""The command line: help lists the subcommands, typos get a suggestion, the version prints."""
import subprocess
import sys

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
