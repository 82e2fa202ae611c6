"""The plan of a grid: grid.yaml read and checked, each profile expanded into tasks (one notebook each,
teachers first, with their dependencies) and each task into the run configs it makes."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..base.gridfile import read_grid
from ..base.hints import did_you_mean
from ..base.paths import GRID_PATH
from ..blocks.augment import build_augmentation
from ..blocks.distill import KD_LOGITS
from ..blocks.spec import parse_spec
from ..data.datasets import dataset_available
from ..train.recipe import Recipe
from .gridcheck import check_grid, check_seeds
from .store import run_id

__all__ = ["load_grid", "plan", "experiment_names", "extension_experiments",
           "CALIBRATIONS", "Task", "task_configs", "planned_configs", "teacher_configs", "student_groups",
           "validate_params"]


def load_grid(path: Path | str | None = None) -> dict:
    """Read and validate the grid YAML (``yaml.safe_load``; see :mod:`kdlib.runs.gridcheck`): unknown keys,
    wrong types, values out of bounds and unresolvable ``from:`` are errors before anything runs."""
    path = Path(path or GRID_PATH)
    return check_grid(read_grid(path), path)


def _profile(grid: dict, profile: str) -> dict:
    profiles = grid.get("profiles") or {}
    if profile not in profiles:
        raise ValueError(f"unknown profile {profile!r}; the grid defines {sorted(profiles)}")
    return profiles[profile]


def resolve_dataset(grid: dict, profile: str, role: str) -> dict:
    """The dataset spec of a role; a list of names means the first one available here."""
    prof = _profile(grid, profile)
    if role not in prof["datasets"]:
        raise ValueError(f"profile {profile!r} defines no dataset {role!r}; it has {sorted(prof['datasets'])}")
    spec = dict(prof["datasets"][role])
    names = spec["name"] if isinstance(spec["name"], list) else [spec["name"]]
    name = next((n for n in names if dataset_available(n, "test")), names[-1])
    spec["name"] = name
    spec.setdefault("subset", None)
    spec.setdefault("test_subset", None)
    spec.setdefault("subset_seed", 0)
    return spec


def _model(prof: dict, name: str) -> dict:
    return {"name": name, **(prof.get("models", {}).get(name) or {})}


def _recipe(prof: dict, kind: str) -> dict:
    return vars(Recipe(**prof["recipes"][kind]))


def _spec(regime: str, prof: dict | None = None) -> str:
    """The canonical spec of a regime in a profile: flip+crop takes the profile's ``flipcrop_fill`` unless the
    regime names its own ``fill``."""
    fill = (prof or {}).get("flipcrop_fill", "black")
    parts = []
    for name, kwargs in parse_spec(regime):
        if name == "flipcrop" and "fill" not in kwargs:
            kwargs = {**kwargs, "fill": fill}
        parts.append(name + ("(" + ",".join(f"{k}={v}" for k, v in kwargs.items()) + ")" if kwargs else ""))
    return build_augmentation("+".join(parts)).spec


def teacher_configs(grid: dict, profile: str, dataset_role: str, model: str, regime: str,
                    seeds: list[int] | None = None, label_smoothing: float = 0.0,
                    match_accuracy_of: str | None = None, untrained: bool = False) -> list[dict]:
    """``untrained``: the teacher keeps its random initial weights (seeded by its seed) and is never trained,
    the random-teacher control of grid experiment E13; the key joins the config only then. ``label_smoothing``: the teacher's cross-entropy targets smoothed by this much (a control of grid
    experiment E9; 0 keeps the profile's recipe). ``match_accuracy_of``: a regime whose teacher (same model,
    seed and recipe) this one stops at, the first epoch its held-out accuracy reaches that teacher's
    (experiment E11); the config names that teacher's run id."""
    prof = _profile(grid, profile)
    ds = resolve_dataset(grid, profile, dataset_role)
    if seeds is not None:
        check_seeds("seeds", seeds)
    recipe = _recipe(prof, "teacher")
    if label_smoothing:
        recipe = vars(Recipe(**{**recipe, "label_smoothing": float(label_smoothing)}))
    seeds = seeds or prof["seeds"]
    configs = [{"kind": "teacher", "dataset": ds, "model": _model(prof, model), "augment": _spec(regime, prof),
                "recipe": recipe, "seed": int(s)} for s in seeds]
    if match_accuracy_of is not None:
        targets = teacher_configs(grid, profile, dataset_role, model, match_accuracy_of, seeds)
        for c, t in zip(configs, targets):
            c["stop_at_accuracy_of"] = run_id(t)
    if untrained:
        for c in configs:
            c["untrained"] = True
    return configs


def _teacher_args(p: dict, prefix: str = "") -> tuple:
    """(label_smoothing, match_accuracy_of, untrained) of a task's params (``prefix``: 'teacher_' in a students
    task)."""
    return (p.get(prefix + "label_smoothing", 0.0), p.get(prefix + "match_accuracy_of"),
            bool(p.get(prefix + "untrained", False)))


CALIBRATIONS = ("none", "temperature")


def student_groups(grid: dict, profile: str, dataset_role: str, teacher_model: str | None,
                   teacher_regime: str | None, students: list[str], regime: str, temperature: float,
                   alpha: float, seeds: list[int] | None = None, teacher_label_smoothing: float = 0.0,
                   teacher_calibration: str = "none", teacher_match_accuracy_of: str | None = None,
                   teacher_untrained: bool = False,
                   kd_logits: str = "raw") -> list[tuple[dict | None, list[dict]]]:
    """Per seed: (teacher config or None, [student configs that train in lockstep]).

    ``teacher_label_smoothing``: the teacher is the label-smoothed one (see :func:`teacher_configs`).
    ``teacher_calibration``: ``"temperature"`` distils from the teacher's logits divided by the temperature
    that calibrates it on held-out data (:mod:`kdlib.blocks.calibration`); the key joins the student's config only
    then, so every other run keeps its id. ``teacher_untrained``: the random-weight teacher (E13).
    ``kd_logits``: ``"standardized"`` z-scores both logit vectors in the soft term (E12; the key joins the
    config only then)."""
    if kd_logits not in KD_LOGITS:
        raise ValueError(f"kd_logits must be one of {list(KD_LOGITS)}, got {kd_logits!r}")
    if teacher_calibration not in CALIBRATIONS:
        raise ValueError(f"teacher_calibration must be one of {list(CALIBRATIONS)}, got {teacher_calibration!r}")
    prof = _profile(grid, profile)
    ds = resolve_dataset(grid, profile, dataset_role)
    if seeds is not None:
        check_seeds("seeds", seeds)
    seeds = seeds or prof["seeds"]
    teachers = (teacher_configs(grid, profile, dataset_role, teacher_model, teacher_regime, seeds,
                                teacher_label_smoothing, teacher_match_accuracy_of, teacher_untrained)
                if teacher_regime is not None and alpha > 0 else [None] * len(seeds))
    out = []
    for seed, tcfg in zip(seeds, teachers):
        group = [{"kind": "student", "dataset": ds, "model": _model(prof, m), "augment": _spec(regime, prof),
                  "recipe": _recipe(prof, "student"), "seed": int(seed),
                  "teacher": run_id(tcfg) if tcfg else None, "temperature": float(temperature),
                  "alpha": float(alpha)} for m in students]
        if tcfg is not None and teacher_calibration != "none":
            for c in group:
                c["teacher_calibration"] = teacher_calibration
        if tcfg is not None and kd_logits != "raw":
            for c in group:
                c["kd_logits"] = kd_logits
        out.append((tcfg, group))
    return out


def task_configs(task: Task | dict, grid: dict, seeds: list[int] | None = None) -> list[dict]:
    """Every run config of one task (all seeds; every student of every group)."""
    p = task.params if isinstance(task, Task) else task
    if (task.kind if isinstance(task, Task) else p["kind"]) == "teacher":
        return teacher_configs(grid, p["profile"], p["dataset"], p["model"], p["regime"], seeds, *_teacher_args(p))
    return [c for _, group in _groups(grid, p, seeds) for c in group]


def _groups(grid, p: dict, seeds=None):
    """student_groups() of a students task's params."""
    return student_groups(grid, p["profile"], p["dataset"], p["teacher_model"], p["teacher_regime"], p["students"],
                          p["regime"], p["temperature"], p["alpha"], seeds, p.get("teacher_label_smoothing", 0.0),
                          p.get("teacher_calibration", "none"), p.get("teacher_match_accuracy_of"),
                          bool(p.get("teacher_untrained", False)), p.get("kd_logits", "raw"))


def planned_configs(profile: str, grid: dict | None = None) -> list[dict]:
    """Every run config the grid plans for ``profile``: what the book reads, and nothing else."""
    grid = grid or load_grid()
    return [c for t in plan(profile, grid) for c in task_configs(t, grid)]


@dataclass
class Task:
    """One notebook's worth of work: ``kind`` is 'teacher' or 'students'; ``params`` are its papermill parameters."""

    kind: str
    name: str
    params: dict
    experiments: list = field(default_factory=list)
    depends: list = field(default_factory=list)


MAX_NAME = 100  # task names are file names (book/runs/<part>/<name>.ipynb, .html, temporary files beside them)


def _slug(text: str) -> str:
    text = text.replace("+", "-").replace("(", "").replace(")", "").replace(",", "_").replace("=", "")
    return re.sub(r"[^A-Za-z0-9_.-]", "-", text)  # what a file name and Snakemake's {name} accept


def disk_name(name: str, limit: int = MAX_NAME) -> str:
    """``name`` as it is if it fits ``limit`` characters, else its beginning and a hash of the whole
    (distinct names stay distinct; the ``teacher-``/``students-`` prefix is kept)."""
    if len(name) <= limit:
        return name
    return f"{name[:limit - 12]}-h{hashlib.sha256(name.encode()).hexdigest()[:10]}"


def experiment_names(profile: str, grid: dict) -> list[str]:
    """The experiments a profile runs: its ``experiments:`` list, else every experiment of the grid."""
    prof = _profile(grid, profile)
    return list(prof.get("experiments") or (grid.get("experiments") or {}))


def extension_experiments(grid: dict) -> list[str]:
    """The experiments marked ``extension: true`` (beyond the paper: the extensions chapter reads them)."""
    return [n for n, e in (grid.get("experiments") or {}).items() if e.get("extension")]


class _Planner:
    """The tasks of one profile, by name in the order first planned (a task shared by experiments is one task
    that lists them all)."""

    def __init__(self, profile: str, grid: dict) -> None:
        self.profile, self.grid = profile, grid
        self.defaults = grid.get("defaults", {})
        self.tasks: dict[str, Task] = {}

    def add(self, task: Task, experiment: str) -> Task:
        task.name = disk_name(task.name)
        task.depends = [disk_name(d) for d in task.depends]
        if task.name not in self.tasks:
            self.tasks[task.name] = task
        if experiment not in self.tasks[task.name].experiments:
            self.tasks[task.name].experiments.append(experiment)
        return self.tasks[task.name]

    def teacher(self, role: str, model: str, regime: str, experiment: str, ls: float = 0.0,
                match: str | None = None, untrained: bool = False) -> Task:
        """The teacher task (and, for an accuracy-matched teacher, the teacher it matches first)."""
        depends = [self.teacher(role, model, match, experiment).name] if match is not None else []
        name = (f"teacher-{role}-{model}-{_slug(regime)}" + (f"-ls{ls:g}" if ls else "")
                + (f"-at-{_slug(match)}" if match is not None else "") + ("-random" if untrained else ""))
        params = {"profile": self.profile, "dataset": role, "model": model, "regime": regime}
        if ls:
            params["label_smoothing"] = ls
        if match is not None:
            params["match_accuracy_of"] = match
        if untrained:
            params["untrained"] = True
        return self.add(Task("teacher", name, params, depends=depends), experiment)

    def experiment(self, ename: str) -> None:
        """Every task of one experiment: its teachers, their student groups, its no-teacher students."""
        experiments = self.grid.get("experiments") or {}
        exp = experiments[ename]
        source = experiments[exp["from"]] if "from" in exp else exp
        role = source.get("dataset", "main")
        tmodel = source["teachers"]["model"]
        ls = float(source["teachers"].get("label_smoothing", 0.0))
        match = source["teachers"].get("match_accuracy_of")
        untrained = bool(source["teachers"].get("untrained", False))
        for regime in source["teachers"]["regimes"] if "teachers" in exp else []:
            self.teacher(role, tmodel, regime, ename, ls, match, untrained)
        if not exp.get("students"):
            return
        for tregime in exp.get("teacher_regimes", source["teachers"]["regimes"]):
            self.students(ename, exp, role, tmodel, tregime, ls, match, untrained)
        if exp.get("no_teacher"):
            self.no_teacher(ename, exp, role)

    def _temperature(self, exp: dict) -> float:
        return exp.get("temperature", self.defaults.get("temperature", 20.0))

    def students(self, ename: str, exp: dict, role: str, tmodel: str, tregime: str, ls: float,
                 match: str | None, untrained: bool = False) -> None:
        """The student groups distilled from one teacher: one per student regime and temperature."""
        temperatures = [float(t) for t in exp.get("temperatures") or [self._temperature(exp)]]
        alpha = float(exp.get("alpha", self.defaults.get("alpha", 0.5)))
        calibration = exp.get("teacher_calibration", "none")
        kd_logits = exp.get("kd_logits", "raw")
        variant = ((f"-ls{ls:g}" if ls else "") + (f"-at-{_slug(match)}" if match is not None else "")
                   + ("-random" if untrained else "") + ("-ts" if calibration == "temperature" else "")
                   + ("-lsd" if kd_logits == "standardized" else ""))
        teacher = self.teacher(role, tmodel, tregime, ename, ls, match, untrained)
        sregimes = [tregime] if exp.get("same_regime") else exp.get("student_regimes", ["none"])
        for sregime in sregimes:
            for temperature in temperatures:
                name = (f"students-{role}-{tmodel}-{_slug(tregime)}{variant}-to-{_slug(sregime)}-a{alpha:g}"
                        f"-T{temperature:g}")
                params = {"profile": self.profile, "dataset": role, "teacher_model": tmodel,
                          "teacher_regime": tregime, "students": list(exp["students"]), "regime": sregime,
                          "temperature": temperature, "alpha": alpha}
                if ls:
                    params["teacher_label_smoothing"] = ls
                if calibration != "none":
                    params["teacher_calibration"] = calibration
                if match is not None:
                    params["teacher_match_accuracy_of"] = match
                if untrained:
                    params["teacher_untrained"] = True
                if kd_logits != "raw":
                    params["kd_logits"] = kd_logits
                self.add(Task("students", name, params, depends=[teacher.name]), ename)

    def no_teacher(self, ename: str, exp: dict, role: str) -> None:
        """The students trained on hard labels alone (alpha 0), one group per student regime."""
        for sregime in exp.get("student_regimes", ["none"]):
            name = f"students-{role}-noteacher-to-{_slug(sregime)}"
            self.add(Task("students", name, {"profile": self.profile, "dataset": role, "teacher_model": None,
                                             "teacher_regime": None, "students": list(exp["students"]),
                                             "regime": sregime, "alpha": 0.0,
                                             "temperature": float(self._temperature(exp))}), ename)


def plan(profile: str, grid: dict | None = None) -> list[Task]:
    """Every task of the profile, teachers first, deduplicated, with their dependencies."""
    grid = grid or load_grid()
    _profile(grid, profile)
    planner = _Planner(profile, grid)
    for ename in experiment_names(profile, grid):
        planner.experiment(ename)
    tasks = planner.tasks.values()
    return [t for t in tasks if t.kind == "teacher"] + [t for t in tasks if t.kind != "teacher"]


# --------------------------------------------------------------------------- execution
_PARAM_TYPES = {
    "teacher": {"profile": str, "dataset": str, "model": str, "regime": str, "label_smoothing": (int, float),
                "match_accuracy_of": (str, type(None)), "untrained": bool,
                "seeds": (list, type(None)),
                "runs": (str, type(None)), "device": str, "progress": bool, "grid": (str, type(None)), "train": bool},
    "students": {"profile": str, "dataset": str, "teacher_model": (str, type(None)),
                 "teacher_regime": (str, type(None)), "students": list, "regime": str, "temperature": (int, float),
                 "alpha": (int, float), "teacher_label_smoothing": (int, float), "teacher_calibration": str,
                 "teacher_match_accuracy_of": (str, type(None)), "teacher_untrained": bool, "kd_logits": str,
                 "seeds": (list, type(None)), "runs": (str, type(None)), "device": str,
                 "progress": bool, "grid": (str, type(None)), "train": bool},
}


def validate_params(kind: str, params: dict) -> dict:
    """Check a notebook's parameters: unknown names and wrong types are errors that name the fix."""
    types = _PARAM_TYPES[kind]
    for key, value in params.items():
        if key not in types:
            raise ValueError(f"unknown parameter {key!r} for the {kind} notebook"
                             + did_you_mean(key, sorted(types)) + f" Parameters: {sorted(types)}")
        allowed = types[key] if isinstance(types[key], tuple) else (types[key],)
        if not isinstance(value, allowed) or (bool not in allowed and isinstance(value, bool)):
            raise ValueError(f"parameter {key!r} of the {kind} notebook must be "
                             f"{' or '.join(t.__name__ for t in allowed)}, got {type(value).__name__} {value!r}")
    if params.get("seeds") is not None:
        check_seeds(f"parameter 'seeds' of the {kind} notebook", params["seeds"])
    return params
