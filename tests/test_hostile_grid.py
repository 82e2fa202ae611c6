"""Hostile grids and CLI values: refused at load time, with the place and the fix, before any folder exists."""
import pytest

from kdlib.runs.plan import load_grid, validate_params
from kdlib.runs.execute import main as grid_main
from kdlib.train.recipe import Recipe
from conftest import grid_with


def smoke(g):
    return g["profiles"]["smoke"]


E = lambda g: g["experiments"]  # noqa: E731

BAD_GRIDS = {
    "float seed": (lambda g: smoke(g).update(seeds=[0.7]), r"profiles.smoke.seeds: seed 0.7 must be an integer"),
    "string seed": (lambda g: smoke(g).update(seeds=["12"]), r"seed '12' must be an integer"),
    "boolean seed": (lambda g: smoke(g).update(seeds=[True]), r"seed True must be an integer"),
    "negative seed": (lambda g: smoke(g).update(seeds=[-1]), r"must be an integer in \[0, "),
    "repeated seed": (lambda g: smoke(g).update(seeds=[1, 1]), "lists a seed twice"),
    "seeds not a list": (lambda g: smoke(g).update(seeds=3), "seeds must be a non-empty list"),
    "string boolean": (lambda g: smoke(g)["recipes"]["teacher"].update(nesterov="no"),
                       "recipes.teacher: nesterov must be true or false"),
    "zero epochs": (lambda g: smoke(g)["recipes"]["student"].update(epochs=0), "epochs must be an integer >= 1"),
    "string epochs": (lambda g: smoke(g)["recipes"]["student"].update(epochs="5"), "epochs must be an integer"),
    "huge batch": (lambda g: smoke(g)["recipes"]["student"].update(batch_size=10**9), "batch_size must be"),
    "huge width": (lambda g: smoke(g)["models"]["resnet18"].update(width=10**6),
                   r"models.resnet18.width must be an integer in \[1, 1024\]"),
    "float width": (lambda g: smoke(g)["models"]["resnet18"].update(width=4.5), "width must be an integer"),
    "unknown model argument": (lambda g: smoke(g)["models"]["lenet"].__setitem__("width", 3) if smoke(g)["models"][
        "lenet"] else smoke(g)["models"].update(lenet={"width": 3}), "unknown key 'width' in .*models.lenet"),
    "huge subset": (lambda g: smoke(g)["datasets"]["main"].update(subset=10**9), r"subset must be a number of images"),
    "string subset": (lambda g: smoke(g)["datasets"]["main"].update(subset="10"), "subset must be a number"),
    "unknown dataset": (lambda g: smoke(g)["datasets"]["main"].update(name="imagenet"), "unknown dataset 'imagenet'"),
    "too many holes": (lambda g: E(g)["E1"]["teachers"].update(regimes=["cutout(n_holes=100000)"]),
                       "experiments.E1.teachers.regimes: cutout: n_holes must be at most 64"),
    "huge padding": (lambda g: E(g)["E4"].update(student_regimes=["flipcrop(padding=100000)"]),
                     "experiments.E4.student_regimes: flipcrop: padding must be at most"),
    "tiny mixup alpha": (lambda g: E(g)["E4"].update(student_regimes=["mixup(alpha=1e-9)"]), "alpha must lie in"),
    "from itself": (lambda g: E(g)["E2"].update({"from": "E2"}), "from 'E2' refers to itself"),
    "from a chain": (lambda g: E(g)["E4"].update({"from": "E2"}), "from 'E2', which itself reuses.*write from: 'E1'"),
    "from nowhere": (lambda g: E(g)["E4"].update({"from": "E99"}), "from 'E99' is not an experiment"),
    "no_teacher not boolean": (lambda g: E(g)["E2"].update(no_teacher="yes"), "no_teacher must be true or false"),
    "students not a list": (lambda g: E(g)["E2"].update(students="lenet"), "students must be a non-empty list"),
    "unknown dataset role": (lambda g: E(g)["E3"].update(dataset="cifar"), "dataset: 'cifar' is not a dataset role"),
    "bad temperature": (lambda g: E(g)["E2"].update(temperature=0), "E2: temperature must be a finite number > 0"),
    "threads not an integer": (lambda g: smoke(g).update(threads="4"), r"threads must be an integer in \[1, "),
    "threads zero": (lambda g: smoke(g).update(threads=0), "threads must be an integer"),
    "missing recipe": (lambda g: smoke(g)["recipes"].pop("student"), "recipes needs a 'student' recipe"),
    "profile not a mapping": (lambda g: g["profiles"].update(smoke=[1, 2]), "profiles.smoke must be a mapping"),
}


@pytest.mark.parametrize("case", sorted(BAD_GRIDS))
def test_hostile_grid_is_refused_at_load_before_any_folder(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    edit, needle = BAD_GRIDS[case]
    path = grid_with(tmp_path, edit)
    before = set(tmp_path.rglob("*"))
    with pytest.raises(ValueError, match=needle):
        load_grid(path)
    # the CLI refuses it too, with exit status 2 and no run folder
    assert grid_main(["--profile", "smoke", "--grid", str(path), "--no-progress"]) == 2
    assert set(tmp_path.rglob("*")) == before


def test_the_shipped_grid_passes_and_empty_grid_is_refused(tmp_path):
    load_grid()
    (tmp_path / "g.yaml").write_text("")
    with pytest.raises(ValueError, match="is empty"):
        load_grid(tmp_path / "g.yaml")


@pytest.mark.parametrize("seeds, needle", [([0.7], "must be an integer"), (["12"], "must be an integer"),
                                           ([-3], "must be an integer in"), ([], "non-empty list")])
def test_notebook_seeds_are_checked(seeds, needle):
    with pytest.raises(ValueError, match=needle):
        validate_params("teacher", {"profile": "smoke", "seeds": seeds})


def test_cli_negative_seed_is_refused_before_any_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert grid_main(["--profile", "smoke", "--seeds", "-1", "--runs", str(tmp_path / "runs"), "--no-progress"]) == 2
    assert "seed -1 must be an integer" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_recipe_refuses_zero_epochs_and_string_booleans():
    with pytest.raises(ValueError, match="epochs must be an integer >= 1"):
        Recipe(epochs=0)
    with pytest.raises(ValueError, match="nesterov must be true or false"):
        Recipe(epochs=1, nesterov="no")


LONG = ["flipcrop(padding=4,flip=true)+cutout(length=8,n_holes=2)+mixup(alpha=0.2)+cutmix(beta=1.0,prob=0.5)",
        "flipcrop(padding=4,flip=true)+cutout(length=8,n_holes=2)+mixup(alpha=0.2)+cutmix(beta=1.0,prob=0.25)"]


def test_long_regime_specs_give_short_distinct_file_names(tmp_path):
    import re

    from kdlib.runs.plan import MAX_NAME, plan
    from kdlib.book.notebooks import task_output

    path = grid_with(tmp_path, lambda g: (E(g)["E4"].update(student_regimes=LONG),
                                          E(g)["E1"]["teachers"]["regimes"].extend(LONG)))
    grid = load_grid(path)
    tasks = plan("smoke", grid)
    names = [t.name for t in tasks]
    assert len(set(names)) == len(names)  # the two long specs differ only at their end: still two names
    long_ones = [n for n in names if "-h" in n and len(n) == MAX_NAME]
    assert len(long_ones) >= 4
    for t in tasks:
        assert len(t.name) <= MAX_NAME and re.fullmatch(r"[A-Za-z0-9_.\-]+", t.name)
        assert t.name.startswith(("teacher-", "students-"))  # Snakemake's rules match these prefixes
        assert all(d in names for d in t.depends)
        assert len(task_output(t.name, "smoke").name) < 255
    # short names are unchanged (the shipped grid's task names are what the book links to)
    assert "teacher-main-resnet18-flipcrop-cutmix" in names
