"""The recipes of a profile as the methods chapter shows them: every value as written (no 35.0 for 35), every
default that the grid leaves implicit made explicit from :class:`kdlib.train.recipe.Recipe` and the regimes'
defaults, and the paper's own recipe (text and public code, ``book/paper_tables.yaml``) beside ours."""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # names for annotations only
    import pandas as pd


__all__ = ["fmt_value", "full_recipe", "recipe_table", "beside_paper"]


def fmt_value(v: object) -> str:
    """A recipe value as a reader writes it: integers without '.0', small floats in short scientific form."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e6:
            return str(int(v))
        return f"{v:g}"
    return str(v)


def full_recipe(recipe: dict) -> dict:
    """A grid recipe with every field of :class:`kdlib.train.recipe.Recipe`, the defaults filled in."""
    from ..train.recipe import Recipe

    return dataclasses.asdict(Recipe(**recipe))


def recipe_table(profile: dict) -> pd.DataFrame:
    """One row per recipe field, one column per role (teacher, student), values as written."""
    import pandas as pd

    full = {role: full_recipe(r) for role, r in profile["recipes"].items()}
    fields = list(next(iter(full.values())))
    return pd.DataFrame([{"": f, **{role: fmt_value(full[role][f]) for role in full}} for f in fields])


def _ours(profile: dict, defaults: dict) -> dict:
    from ..blocks.augment import build_augmentation

    t, s = full_recipe(profile["recipes"]["teacher"]), full_recipe(profile["recipes"]["student"])
    crop, cut, mix, cm = (build_augmentation(r).regimes[0] for r in ("flipcrop", "cutout", "mixup", "cutmix"))

    def both(key, fmt=fmt_value):
        a, b = fmt(t[key]), fmt(s[key])
        return a if a == b else f"{a} (teacher), {b} (student)"

    fill = profile.get("flipcrop_fill", "black")
    sched = {"onecycle": "one-cycle (linear warm-up over {w} of the steps, then linear decay to 0)",
             "cosine": "cosine to 0"}
    return {
        "batch size": both("batch_size"),
        "optimiser": f"SGD, momentum {both('momentum')}" + (", Nesterov" if t["nesterov"] else ""),
        "learning rate": both("lr"),
        "weight decay": both("weight_decay"),
        "schedule": " / ".join(dict.fromkeys(sched.get(r["schedule"], r["schedule"]).format(w=fmt_value(r["warmup"]))
                                             for r in (t, s))),
        "epochs": both("epochs"),
        "flip+crop": f"pad {crop.padding} ({'border at the dataset mean' if fill == 'mean' else 'black border'})"
                     ", random crop; horizontal flip",
        "Cutout": f"{cut.n_holes} hole of side {cut.length}",
        "Mixup": f"λ ~ Beta({fmt_value(mix.alpha)}, {fmt_value(mix.alpha)})"
                ,
        "CutMix": f"β = {fmt_value(cm.beta)}, on a batch with probability {fmt_value(cm.prob)}"
                 ,
        "augmentations combined": "flip+crop under every mixer (E1); the mixers alone in E6",
        "distillation": f"T = {fmt_value(defaults.get('temperature', 20.0))}, α = "
                        f"{fmt_value(defaults.get('alpha', 0.5))} on the soft term, KL summed over classes and "
                        f"averaged over the batch (batchmean), T²",
        "student input": "clean images (E2); augmented in E4, E5 and E8",
    }


def beside_paper(profile: dict, paper_recipe: list[dict], defaults: dict | None = None) -> pd.DataFrame:
    """The paper's recipe (its text and its public code) beside this profile's, one row per item."""
    import pandas as pd

    ours = _ours(profile, defaults or {})
    return pd.DataFrame([{"": r["item"], "the paper's text": r["text"], "the paper's public code": r["code"],
                          "this profile": ours.get(r["item"], "-")} for r in paper_recipe])
