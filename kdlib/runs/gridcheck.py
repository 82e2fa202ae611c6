"""Validation of a grid (``grid.yaml``) and of the values given on the command line, before any
folder is created: every key known, every value of the right type and within bounds that keep
a run within memory, every ``from:`` resolved. Each error names the place in the grid, the value
and what is accepted.

Where the data sets a bound, it is derived from the data (:data:`kdlib.data.IMAGE_SHAPES` and
:data:`kdlib.data.SPLIT_SIZES`) for every profile that runs the value: flip+crop's padding and
Cutout's hole against the image side (the bounds themselves are the regimes', in
:mod:`kdlib.blocks.augment`), a subset against the smallest class of its split, a batch size against the
training images of every dataset of the profile. Elsewhere a stated bound: the recipe's learning
rate, momentum and weight decay here, its epochs, batch size, warm-up and label smoothing in
:class:`kdlib.train.recipe.Recipe`, the regimes' own in :mod:`kdlib.blocks.augment`, T and alpha in
:func:`kdlib.blocks.distill.check_kd_params` with T's range here.

:func:`check_grid` is what :func:`kdlib.runs.plan.load_grid` calls; :func:`check_seeds` checks the
seeds of ``--seeds`` and of a notebook's parameters.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..base.hints import did_you_mean
from ..blocks.augment import FILLS, build_augmentation
from ..blocks.distill import KD_LOGITS, check_kd_params
from ..blocks.models import MODELS
from ..data.registry import _ALIASES, CLASSES, DATASETS, IMAGE_SHAPES, SPLIT_SIZES
from ..train.recipe import Recipe

__all__ = ["check_grid", "check_seeds", "check_threads", "MAX_SEED", "MAX_WIDTH", "MAX_THREADS", "MAX_LR",
           "MAX_WEIGHT_DECAY", "TEMPERATURE_RANGE"]


MAX_SEED = 2**31 - 1  # seeds are scaled (1000 * seed + 2, seed * 7919 + ...) and must stay within int64


MAX_WIDTH = 1024  # a ResNet-18 of width 1024 already has ~2.8e9 parameters


MAX_THREADS = 1024


# Stated bounds of the recipe and of distillation that Recipe and check_kd_params leave open above. Past them
# a run fails late (a NaN loss in the first epochs) or learns nothing (the weights decayed to zero).
MAX_LR = 10.0  # 50x the paper's 0.2; plain SGD on these models diverges far below it


MAX_WEIGHT_DECAY = 0.1  # 200x the paper's 5e-4; and lr * weight_decay < 1, see _check_recipe


TEMPERATURE_RANGE = (0.01, 1000.0)  # the paper's T is 20 (E7 sweeps 1-20); beyond 1000 the soft targets are flat,


# below 0.01 one-hot, and logits / T overflow float16 autocast (65504) from logits of a few hundred

TOP = {"defaults", "experiments", "profiles"}


DEFAULTS = {"temperature", "alpha"}


EXPERIMENT = {"title", "dataset", "teachers", "from", "teacher_regimes", "students", "student_regimes",
              "no_teacher", "same_regime", "temperature", "alpha", "temperatures", "teacher_calibration", "extension",
              "kd_logits"}


TEACHERS = {"model", "regimes", "label_smoothing", "match_accuracy_of", "untrained"}


PROFILE = {"description", "datasets", "seeds", "models", "recipes", "failed_runs", "flipcrop_fill", "threads",
           "experiments", "reuse", "record_embeddings"}


CALIBRATIONS = ("none", "temperature")  # kdlib.runs.plan.CALIBRATIONS


DATASET = {"name", "subset", "test_subset", "subset_seed"}


RECIPE = set(Recipe.__dataclass_fields__)


MODEL_ARGS = {"resnet18": {"width"}, "alexnet": {"width", "dropout"}, "lenet": set()}


def check_keys(where: str, got: Any, allowed: set) -> None:
    if not isinstance(got, dict):
        raise ValueError(f"{where} must be a mapping, got {type(got).__name__} {got!r}")
    for key in got:
        if key not in allowed:
            hint = did_you_mean(str(key), sorted(allowed))
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


def _kd(where: str, temperature, alpha):
    """check_kd_params (T > 0, alpha in [0, 1]) and T within TEMPERATURE_RANGE."""
    try:
        check_kd_params(temperature, alpha)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    low, high = TEMPERATURE_RANGE
    if not low <= temperature <= high:
        raise ValueError(f"{where}: temperature {temperature!r} is outside [{low:g}, {high:g}] (the paper's T is 20; "
                         f"above {high:g} the teacher's soft targets are flat and T^2 scales the loss past 1e6, below "
                         f"{low:g} they are one-hot and logits / T overflow half precision). Use a temperature in that "
                         f"range")


def check_seeds(where: str, seeds: Any) -> list:
    """Seeds are a non-empty list of distinct integers in [0, MAX_SEED] (not 0.7, not "12", not true)."""
    _list(where, seeds)
    for s in seeds:
        _int(f"{where}: seed {s!r}", s, 0, MAX_SEED)
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"{where} lists a seed twice: {seeds}")
    return seeds


def check_threads(where: str, threads: Any) -> int | None:
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
            if "untrained" in exp["teachers"]:
                _bool(f"{where}.teachers.untrained", exp["teachers"]["untrained"])
                if exp["teachers"]["untrained"] and (exp["teachers"].get("label_smoothing")
                                                     or "match_accuracy_of" in exp["teachers"]):
                    raise ValueError(f"{where}.teachers: an untrained (random-weight) teacher has no label "
                                     f"smoothing or accuracy match (it is never trained); drop those keys")
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
                _kd(f"{where}.temperatures", t, exp.get("alpha", 0.5))
        if exp.get("teacher_calibration", "none") not in CALIBRATIONS:
            raise ValueError(f"{where}.teacher_calibration must be one of {list(CALIBRATIONS)} (temperature: distil "
                             f"from the teacher after post-hoc temperature scaling), got {exp['teacher_calibration']!r}")
        if exp.get("kd_logits", "raw") not in KD_LOGITS:
            raise ValueError(f"{where}.kd_logits must be one of {list(KD_LOGITS)} (standardized: logit "
                             f"standardisation, Sun et al. 2024), got {exp['kd_logits']!r}")
        if "temperature" in exp or "alpha" in exp:
            _kd(where, exp.get("temperature", 20.0), exp.get("alpha", 0.5))


def _canonical(name: str) -> str:
    return _ALIASES.get(name.lower(), name.lower())


def _names(ds: dict) -> list:
    return [_canonical(n) for n in (ds["name"] if isinstance(ds["name"], list) else [ds["name"]])]


def _train_images(ds: dict) -> tuple[int, str]:
    """The fewest training images the dataset spec can give (over the names it may resolve to), and how."""
    counts = []
    for n in _names(ds):
        if ds.get("subset") is not None:
            counts.append((ds["subset"] * len(CLASSES[n]), f"{n}: subset {ds['subset']} per class x "
                                                           f"{len(CLASSES[n])} classes"))
        else:
            counts.append((SPLIT_SIZES[n]["train"][0], f"{n}'s whole training split"))
    return min(counts)


def _check_recipe(where: str, rec: dict, datasets: dict):
    """What Recipe leaves open: lr, momentum and weight decay above, and the batch size against the data."""
    r = Recipe(**rec)  # types and Recipe's own bounds first (epochs, batch size, warm-up, label smoothing)
    if r.lr > MAX_LR:
        raise ValueError(f"{where}.lr: {r.lr!r} is more than {MAX_LR:g} (the paper's is 0.1-0.2; SGD diverges to a "
                         f"NaN loss long before). Use an lr in (0, {MAX_LR:g}]")
    if not r.momentum < 1:
        raise ValueError(f"{where}.momentum: {r.momentum!r} must be below 1 (the paper's is 0.9): at 1 or more the "
                         f"velocity never decays and SGD diverges. Use a momentum in [0, 1)")
    if r.weight_decay > MAX_WEIGHT_DECAY:
        raise ValueError(f"{where}.weight_decay: {r.weight_decay!r} is more than {MAX_WEIGHT_DECAY:g} (the paper's "
                         f"is 5e-4; the weights decay to zero). Use a weight_decay in [0, {MAX_WEIGHT_DECAY:g}]")
    if r.lr * r.weight_decay >= 1:
        raise ValueError(f"{where}: lr {r.lr!r} x weight_decay {r.weight_decay!r} = {r.lr * r.weight_decay:g} must be "
                         f"below 1: each step multiplies the weights by 1 - lr x weight_decay, so they are zeroed or "
                         f"flip sign every step. Lower one of them")
    for role, ds in datasets.items():
        n, how = _train_images(ds)
        if r.batch_size > n:
            raise ValueError(f"{where}.batch_size: {r.batch_size} is more than the {n:,} training images of dataset "
                             f"role {role!r} ({how}): every epoch would be one short batch. Use a batch_size of at "
                             f"most {n:,}, or a larger subset")


def _check_regimes_on_images(path, grid: dict):
    """Every regime a profile runs, against the image size of the dataset it runs on (flip+crop's padding below
    the side, Cutout's hole at most the side: kdlib.blocks.augment's bounds), naming experiment, profile and dataset."""
    experiments = grid.get("experiments") or {}
    for pname, prof in (grid.get("profiles") or {}).items():
        for ename in prof.get("experiments") or list(experiments):
            exp = experiments[ename]
            source = experiments[exp["from"]] if "from" in exp else exp
            role = source.get("dataset", "main")
            places = []
            if "teachers" in exp:
                places += [("teachers.regimes", r) for r in exp["teachers"]["regimes"]]
                if "match_accuracy_of" in exp["teachers"]:
                    places.append(("teachers.match_accuracy_of", exp["teachers"]["match_accuracy_of"]))
            for key in ("teacher_regimes", "student_regimes"):
                places += [(key, r) for r in exp.get(key, [])]
            for name in _names(prof["datasets"][role]):
                h, w, _ = IMAGE_SHAPES[name]
                for key, spec in places:
                    try:
                        build_augmentation(spec).check_image_size(h, w)
                    except ValueError as err:
                        raise ValueError(f"{path}: experiments.{ename}.{key}: {spec!r} on the {h}x{w} images of {name} "
                                         f"(profiles.{pname}.datasets.{role}): {err}") from None


def _check_dataset(where: str, ds):
    check_keys(where, ds, DATASET)
    if "name" not in ds:
        raise ValueError(f"{where} needs a name (one of {sorted(DATASETS)}, or a list of them: the first found)")
    names = ds["name"] if isinstance(ds["name"], list) else [ds["name"]]
    _list(f"{where}.name", names)
    for n in names:
        if not isinstance(n, str) or _ALIASES.get(n.lower(), n.lower()) not in DATASETS:
            raise ValueError(f"{where}.name: unknown dataset {n!r}; choose from {sorted(DATASETS)}")
    for key, split in (("subset", "train"), ("test_subset", "test")):
        if ds.get(key) is not None:
            # the smallest class of the split, over every dataset the role may resolve to (the first one found)
            fewest, name = min((SPLIT_SIZES[_canonical(n)][split][1], _canonical(n)) for n in names)
            value = ds[key]
            if not _is_int(value) or not 1 <= value <= fewest:
                raise ValueError(f"{where}.{key} must be a number of images per class, an integer in [1, {fewest:,}] "
                                 f"(the smallest class of {name}'s {split} split has {fewest:,}), got "
                                 f"{type(value).__name__} {value!r}. Lower it, or leave {key} out for the whole split")
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
            _check_recipe(f"{where}.recipes.{kind}", rec, prof["datasets"])
        except (TypeError, ValueError) as err:
            msg = str(err)
            raise ValueError(msg if msg.startswith(where) else f"{where}.recipes.{kind}: {msg}") from None
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


def check_grid(grid: Any, path: str | Path) -> dict:
    """Validate a parsed grid; returns it unchanged, or raises ValueError naming place, value and fix."""
    if grid is None:
        raise ValueError(f"{path} is empty; it needs experiments and profiles")
    check_keys(str(path), grid, TOP)
    defaults = grid.get("defaults") or {}
    check_keys(f"{path}: defaults", defaults, DEFAULTS)
    _kd(f"{path}: defaults", defaults.get("temperature", 20.0), defaults.get("alpha", 0.5))
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
                raise ValueError(f"{where}.experiments: {name!r} is not an experiment of the grid"
                                 + did_you_mean(str(name), experiments) + f" Known: {sorted(experiments)}")
        if "reuse" in prof and (prof["reuse"] not in profiles or prof["reuse"] == pname):
            raise ValueError(f"{where}.reuse: {prof['reuse']!r} must name another profile of the grid (whose finished "
                             f"runs this one reads when their configs match); known: {sorted(set(profiles) - {pname})}")
    _check_regimes_on_images(path, grid)
    return grid
