"""Validation of a grid (``grid.yaml``) and of the values given on the command line, before any
folder is created: every key known, every value of the right type and within bounds that keep
a run within memory, every ``from:`` resolved. Each error names the place in the grid, the value
and what is accepted.

:func:`check_grid` is what :func:`kdlib.grid.load_grid` calls; :func:`check_seeds` checks the
seeds of ``--seeds`` and of a notebook's parameters.
"""
from __future__ import annotations

import difflib
import math

from .augment import FILLS, build_augmentation
from .data import DATASETS, _ALIASES
from .distill import check_kd_params
from .models import MODELS
from .train import Recipe

__all__ = ["check_grid", "check_seeds", "check_threads", "MAX_SEED", "MAX_SUBSET", "MAX_WIDTH", "MAX_THREADS"]

MAX_SEED = 2**31 - 1  # seeds are scaled (1000 * seed + 2, seed * 7919 + ...) and must stay within int64
MAX_SUBSET = 100_000  # images per class: beyond any dataset of the paper
MAX_WIDTH = 1024  # a ResNet-18 of width 1024 already has ~2.8e9 parameters
MAX_THREADS = 1024

TOP = {"defaults", "experiments", "profiles"}
DEFAULTS = {"temperature", "alpha"}
EXPERIMENT = {"title", "dataset", "teachers", "from", "teacher_regimes", "students", "student_regimes",
              "no_teacher", "same_regime", "temperature", "alpha", "temperatures", "teacher_calibration", "extension"}
TEACHERS = {"model", "regimes", "label_smoothing", "match_accuracy_of"}
PROFILE = {"description", "datasets", "seeds", "models", "recipes", "failed_runs", "flipcrop_fill", "threads",
           "experiments", "reuse", "record_embeddings"}
CALIBRATIONS = ("none", "temperature")  # kdlib.grid.CALIBRATIONS
DATASET = {"name", "subset", "test_subset", "subset_seed"}
RECIPE = set(Recipe.__dataclass_fields__)
MODEL_ARGS = {"resnet18": {"width"}, "alexnet": {"width", "dropout"}, "lenet": set()}


def check_keys(where: str, got, allowed: set):
    if not isinstance(got, dict):
        raise ValueError(f"{where} must be a mapping, got {type(got).__name__} {got!r}")
    for key in got:
        if key not in allowed:
            near = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ValueError(f"unknown key {key!r} in {where}{hint} Allowed keys: {sorted(allowed)}")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(where: str, value, low: int, high: int, what: str = "an integer"):
    if not _is_int(value) or not low <= value <= high:
        raise ValueError(f"{where} must be {what} in [{low}, {high}], got {type(value).__name__} {value!r}")
    return value


def _number(where: str, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where} must be a finite number, got {type(value).__name__} {value!r}")
    return value


def _bool(where: str, value):
    if not isinstance(value, bool):
        raise ValueError(f"{where} must be true or false (a YAML boolean, unquoted), got {type(value).__name__} "
                         f"{value!r}")
    return value


def _str(where: str, value):
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where} must be a non-empty string, got {type(value).__name__} {value!r}")
    return value


def _list(where: str, value, nonempty: bool = True) -> list:
    if not isinstance(value, list) or (nonempty and not value):
        raise ValueError(f"{where} must be a {'non-empty ' if nonempty else ''}list, got {type(value).__name__} "
                         f"{value!r}")
    return value


def _model(where: str, name):
    if not isinstance(name, str) or name not in MODELS:
        raise ValueError(f"{where}: unknown model {name!r}; choose one of {sorted(MODELS)}")


def _regime(where: str, spec):
    try:
        build_augmentation(_str(where, spec))
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None


def check_seeds(where: str, seeds) -> list:
    """Seeds are a non-empty list of distinct integers in [0, MAX_SEED] (not 0.7, not "12", not true)."""
    _list(where, seeds)
    for s in seeds:
        _int(f"{where}: seed {s!r}", s, 0, MAX_SEED)
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"{where} lists a seed twice: {seeds}")
    return seeds


def check_threads(where: str, threads):
    """``threads``: None (leave torch's setting) or an integer in [1, MAX_THREADS]."""
    if threads is not None:
        _int(where, threads, 1, MAX_THREADS)
    return threads


def _check_experiments(path, experiments: dict, roles: set):
    check_keys(f"{path}: experiments", experiments, set(experiments))  # a mapping
    for name, exp in experiments.items():
        where = f"{path}: experiments.{name}"
        check_keys(where, exp, EXPERIMENT)
        if "title" in exp:
            _str(f"{where}.title", exp["title"])
        if "dataset" in exp or "teachers" in exp:
            role = _str(f"{where}.dataset", exp.get("dataset", "main"))
            if roles and role not in roles:
                raise ValueError(f"{where}.dataset: {role!r} is not a dataset role of every profile; the profiles "
                                 f"all define {sorted(roles)}")
        if "teachers" in exp:
            check_keys(f"{where}.teachers", exp["teachers"], TEACHERS)
            if "model" not in exp["teachers"] or "regimes" not in exp["teachers"]:
                raise ValueError(f"{where}.teachers needs 'model' and 'regimes'")
            _model(f"{where}.teachers", exp["teachers"]["model"])
            for regime in _list(f"{where}.teachers.regimes", exp["teachers"]["regimes"]):
                _regime(f"{where}.teachers.regimes", regime)
            if "match_accuracy_of" in exp["teachers"]:
                _regime(f"{where}.teachers.match_accuracy_of", exp["teachers"]["match_accuracy_of"])
            if "label_smoothing" in exp["teachers"]:
                ls = _number(f"{where}.teachers.label_smoothing", exp["teachers"]["label_smoothing"])
                if not 0 <= ls < 1:
                    raise ValueError(f"{where}.teachers.label_smoothing must be in [0, 1) (0.1 is the usual control), "
                                     f"got {ls!r}")
        elif "from" not in exp:
            raise ValueError(f"{where} needs 'teachers' or 'from' (an experiment whose teachers it reuses)")
        if "from" in exp:
            source = exp["from"]
            if not isinstance(source, str) or source not in experiments:
                raise ValueError(f"{where}: from {source!r} is not an experiment; known: {sorted(experiments)}")
            if source == name:
                raise ValueError(f"{where}: from {source!r} refers to itself; name the experiment whose teachers "
                                 f"it reuses")
            if "teachers" in exp:
                raise ValueError(f"{where} has both 'teachers' and 'from'; keep one")
            if "teachers" not in experiments[source]:
                raise ValueError(f"{where}: from {source!r}, which itself reuses the teachers of "
                                 f"{experiments[source].get('from')!r}; chains are not followed: write "
                                 f"from: {experiments[source].get('from')!r}")
        for key in ("students", "student_regimes", "teacher_regimes"):
            if key in exp:
                for item in _list(f"{where}.{key}", exp[key]):
                    (_model if key == "students" else _regime)(f"{where}.{key}", item)
        for key in ("no_teacher", "same_regime", "extension"):
            if key in exp:
                _bool(f"{where}.{key}", exp[key])
        if "temperatures" in exp:
            if "temperature" in exp:
                raise ValueError(f"{where} has both 'temperature' and 'temperatures'; keep one")
            for t in _list(f"{where}.temperatures", exp["temperatures"]):
                try:
                    check_kd_params(t, exp.get("alpha", 0.5))
                except ValueError as err:
                    raise ValueError(f"{where}.temperatures: {err}") from None
        if exp.get("teacher_calibration", "none") not in CALIBRATIONS:
            raise ValueError(f"{where}.teacher_calibration must be one of {list(CALIBRATIONS)} (temperature: distil "
                             f"from the teacher after post-hoc temperature scaling), got {exp['teacher_calibration']!r}")
        if "temperature" in exp or "alpha" in exp:
            try:
                check_kd_params(exp.get("temperature", 20.0), exp.get("alpha", 0.5))
            except ValueError as err:
                raise ValueError(f"{where}: {err}") from None


def _check_dataset(where: str, ds):
    check_keys(where, ds, DATASET)
    if "name" not in ds:
        raise ValueError(f"{where} needs a name (one of {sorted(DATASETS)}, or a list of them: the first found)")
    names = ds["name"] if isinstance(ds["name"], list) else [ds["name"]]
    _list(f"{where}.name", names)
    for n in names:
        if not isinstance(n, str) or _ALIASES.get(n.lower(), n.lower()) not in DATASETS:
            raise ValueError(f"{where}.name: unknown dataset {n!r}; choose from {sorted(DATASETS)}")
    for key in ("subset", "test_subset"):
        if ds.get(key) is not None:
            _int(f"{where}.{key}", ds[key], 1, MAX_SUBSET, "a number of images per class")
    if ds.get("subset_seed") is not None:
        _int(f"{where}.subset_seed", ds["subset_seed"], 0, MAX_SEED)


def _check_profile(where: str, prof):
    check_keys(where, prof, PROFILE)
    for key in ("datasets", "recipes", "seeds"):
        if key not in prof:
            raise ValueError(f"{where} needs '{key}'")
    if "description" in prof:
        _str(f"{where}.description", prof["description"])
    check_keys(f"{where}.datasets", prof["datasets"], set(prof["datasets"] or {}))
    if not prof["datasets"]:
        raise ValueError(f"{where}.datasets must name at least one dataset role (e.g. main)")
    for role, ds in prof["datasets"].items():
        _check_dataset(f"{where}.datasets.{role}", ds)
    check_keys(f"{where}.recipes", prof["recipes"], {"teacher", "student"})
    for kind in ("teacher", "student"):
        if kind not in prof["recipes"]:
            raise ValueError(f"{where}.recipes needs a '{kind}' recipe")
        rec = prof["recipes"][kind]
        check_keys(f"{where}.recipes.{kind}", rec, RECIPE)
        try:
            Recipe(**rec)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}.recipes.{kind}: {err}") from None
    models = prof.get("models") or {}
    check_keys(f"{where}.models", models, set(MODELS))
    for model, args in models.items():
        args = args or {}
        check_keys(f"{where}.models.{model}", args, MODEL_ARGS[model])
        if "width" in args:
            _int(f"{where}.models.{model}.width", args["width"], 1, MAX_WIDTH)
        if "dropout" in args and (not isinstance(args["dropout"], (int, float)) or isinstance(args["dropout"], bool)
                                  or not 0 <= args["dropout"] < 1):
            raise ValueError(f"{where}.models.{model}.dropout must be a number in [0, 1), got {args['dropout']!r}")
    if not isinstance(prof["seeds"], list) or not prof["seeds"]:
        raise ValueError(f"{where}: seeds must be a non-empty list, got {prof['seeds']!r}")
    check_seeds(f"{where}.seeds", prof["seeds"])
    if prof.get("flipcrop_fill", "black") not in FILLS:
        raise ValueError(f"{where}: flipcrop_fill must be one of {list(FILLS)} (black: torchvision's padding, the "
                         f"default; mean: the dataset mean colour), got {prof['flipcrop_fill']!r}")
    if prof.get("failed_runs", "exclude") not in ("exclude", "keep"):
        raise ValueError(f"{where}: failed_runs must be 'exclude' (the default) or 'keep' (smoke profiles, whose "
                         f"runs are at chance by design), got {prof['failed_runs']!r}")
    check_threads(f"{where}.threads", prof.get("threads"))
    if "reuse" in prof:
        _str(f"{where}.reuse", prof["reuse"])
    if "record_embeddings" in prof:
        _bool(f"{where}.record_embeddings", prof["record_embeddings"])


def check_grid(grid, path) -> dict:
    """Validate a parsed grid; returns it unchanged, or raises ValueError naming place, value and fix."""
    if grid is None:
        raise ValueError(f"{path} is empty; it needs experiments and profiles")
    check_keys(str(path), grid, TOP)
    defaults = grid.get("defaults") or {}
    check_keys(f"{path}: defaults", defaults, DEFAULTS)
    try:
        check_kd_params(defaults.get("temperature", 20.0), defaults.get("alpha", 0.5))
    except ValueError as err:
        raise ValueError(f"{path}: defaults: {err}") from None
    profiles = grid.get("profiles") or {}
    check_keys(f"{path}: profiles", profiles, set(profiles))
    for pname, prof in profiles.items():
        _check_profile(f"{path}: profiles.{pname}", prof)
    roles = set.intersection(*(set(p["datasets"]) for p in profiles.values())) if profiles else set()
    _check_experiments(path, grid.get("experiments") or {}, roles)
    experiments = grid.get("experiments") or {}
    for pname, prof in profiles.items():
        where = f"{path}: profiles.{pname}"
        for name in _list(f"{where}.experiments", prof["experiments"]) if "experiments" in prof else []:
            if name not in experiments:
                near = difflib.get_close_matches(str(name), list(experiments), n=1)
                raise ValueError(f"{where}.experiments: {name!r} is not an experiment of the grid"
                                 + (f"; did you mean {near[0]!r}?" if near else "") + f" Known: {sorted(experiments)}")
        if "reuse" in prof and (prof["reuse"] not in profiles or prof["reuse"] == pname):
            raise ValueError(f"{where}.reuse: {prof['reuse']!r} must name another profile of the grid (whose finished "
                             f"runs this one reads when their configs match); known: {sorted(set(profiles) - {pname})}")
    return grid
