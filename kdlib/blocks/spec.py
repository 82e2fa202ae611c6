"""The augmentation spec grammar (``flipcrop+cutout(length=8)``) and the bounds of its values."""
from __future__ import annotations

import math
import re

__all__ = ["mixer_names", "bare_spec", "parse_spec"]


# Upper bounds that keep one batch's augmentation within memory and time: padding grows every
# image to (H + 2p)^2, each Cutout hole is one pass over the batch, a side beyond any image is moot.
MAX_PADDING = 64


MAX_HOLES = 64


MAX_SIDE = 1024


def _check_int(regime, name, value, minimum, maximum=None):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{regime}: {name} must be an integer >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{regime}: {name} must be at most {maximum} (larger values only cost memory and time), "
                         f"got {value!r}")


# Beta parameters the sampler is exact and finite for (below 1e-4 the log-Gamma draw of one
# side can reach -inf and lambda is 0 or 1 in practice; above 1e4 lambda is 0.5 to 4 digits).
BETA_RANGE = (1e-4, 1e4)


def _check_positive(regime, name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or math.isinf(value):
        raise ValueError(f"{regime}: {name} must be a positive number, got {value!r}")
    low, high = BETA_RANGE
    if not low <= value <= high:
        raise ValueError(f"{regime}: {name} must lie in [{low:g}, {high:g}] (a Beta parameter outside it makes "
                         f"every lambda 0, 1 or 0.5), got {value!r}")


# --------------------------------------------------------------------------- spec parsing
_PART = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?\s*$")


def _literal(text: str):
    t = text.strip()
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    try:
        return int(t)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        pass
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", t):  # a word, e.g. fill=black
        return t
    raise ValueError(f"cannot read {text!r} as a number, true/false or a word") from None


def parse_spec(spec: str) -> list[tuple[str, dict]]:
    """``"flipcrop+cutout(length=8)"`` -> ``[("flipcrop", {}), ("cutout", {"length": 8})]``."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"augmentation spec must be a non-empty string like 'flipcrop+cutmix', got {spec!r}")
    parts = []
    for raw in spec.split("+"):
        m = _PART.match(raw)
        if not m:
            raise ValueError(
                f"cannot parse augmentation {raw!r} in spec {spec!r}; write name or name(key=value,...), "
                f"e.g. 'cutout(length=8)'"
            )
        name, args = m.group(1).lower(), m.group(2)
        kwargs = {}
        if args and args.strip():
            for item in args.split(","):
                if "=" not in item:
                    raise ValueError(f"augmentation argument {item.strip()!r} in {raw.strip()!r} must be key=value")
                key, value = item.split("=", 1)
                try:
                    kwargs[key.strip()] = _literal(value)
                except ValueError as err:
                    raise ValueError(f"augmentation {name}: argument {key.strip()}: {err}") from None
        parts.append((name, kwargs))
    return parts


def mixer_names(spec: str) -> list[str]:
    """The mixers of a spec in order, without their arguments: ``"flipcrop(padding=4)+cutmix(beta=1.0)"`` ->
    ``["flipcrop", "cutmix"]`` (parsed by :func:`parse_spec`, the one reader of the grammar)."""
    return [name for name, _ in parse_spec(spec)]


def bare_spec(spec: str) -> str:
    """A spec without its arguments: ``"flipcrop(padding=4)+mixup(alpha=1.0)"`` -> ``"flipcrop+mixup"``."""
    return "+".join(mixer_names(spec))
