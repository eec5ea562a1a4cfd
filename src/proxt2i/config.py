"""One way to configure a command: a frozen dataclass, named presets, `key=value` overrides and flags.

A command's settings are the fields of one frozen dataclass. Each field carries its help text (and,
where needed, its flag alias or the legacy sentinel older recorded configs used for "none") in
`dataclasses.field(metadata=...)`, written with `option(...)`. From that one class this module

- adds the command-line options (`add_config_arguments`): `--field-name VALUE`, `--flag/--no-flag`
  for booleans, comma lists for tuples, "none" for Optional fields, `[PRESET|FILE.json] [key=value ...]`
  positionals and `--print-config`;
- resolves them (`config_from_args`, `resolve_config`): preset (or a recorded JSON config), then the
  flags, then the `key=value` overrides, each value coerced from the field's annotation; a bad key or
  value is one UsageError line naming the key and the type expected;
- loads recorded configs (`config_from_dict`), mapping legacy sentinels (width=0, time_grid="") to None;
- writes the shortest command that rebuilds a config (`to_command`).

Only the stdlib and proxt2i.errors: every layer may import it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import shlex
import sys
import types
import typing
from typing import Any, Callable

from .errors import UsageError, read_json

_NO_LEGACY = object()
_DEST = "config:"  # argparse dest prefix: config flags never collide with a command's own options


def option(default=dataclasses.MISSING, help: str = "", *, flag: str | None = None, legacy=_NO_LEGACY,
           required: bool = False, metavar: str | None = None):
    """A config field with its help text. flag: the command-line name when it differs from the field's
    (e.g. "logprob" for `reduce`; the field's own name works too). legacy: the value older recorded
    configs wrote for None (read back as None). required: the command needs it although the class
    has a default (e.g. --out)."""
    meta = {"help": help, "flag": flag, "legacy": legacy, "required": required, "metavar": metavar}
    return dataclasses.field(default=default, metadata=meta)


# --- types ----------------------------------------------------------------------------------------


def field_types(cls) -> dict[str, Any]:
    """Field name -> resolved annotation (strings from `from __future__ import annotations` evaluated)."""
    hints = typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _split_optional(tp) -> tuple[Any, bool]:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def _element_type(tp, default) -> type:
    """The element type of a tuple field: tuple[X, ...], else that of the default's items (str if empty)."""
    args = [a for a in typing.get_args(tp) if a is not Ellipsis]
    if args:
        return args[0]
    return type(default[0]) if isinstance(default, tuple) and default else str


def _type_name(tp, default=None) -> str:
    inner, optional = _split_optional(tp)
    if inner is tuple or typing.get_origin(inner) is tuple:
        name = f"comma-separated {_element_type(inner, default).__name__}s"
    elif inner is float:
        name = "finite float"
    else:
        name = getattr(inner, "__name__", str(inner))
    return f"{name} or none" if optional else name


def parse_value(cls, name: str, raw: str):
    """The value of field `name` of `cls` written as the string `raw` (a flag or a key=value override)."""
    f = _fields(cls)[name]
    tp = field_types(cls)[name]
    try:
        return _coerce(tp, raw, f.default)
    except ValueError:
        raise UsageError(f"bad value {raw!r} for {name} (expected {_type_name(tp, f.default)})") from None


def _coerce(tp, raw: str, default):
    inner, optional = _split_optional(tp)
    if optional and raw.strip().lower() == "none":
        return None
    if inner is bool:
        low = raw.strip().lower()
        if low not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(raw)
        return low in ("true", "1", "yes")
    if inner is int:
        return int(raw)
    if inner is float:
        value = float(raw)
        if not math.isfinite(value):  # nan and inf are never a setting: they would poison every step
            raise ValueError(raw)
        return value
    if inner is tuple or typing.get_origin(inner) is tuple:
        kind = _element_type(inner, default)
        return tuple(_coerce(kind, item, None) for item in re.split(r"[,\s]+", raw.strip()) if item)
    if inner is str:
        return raw
    raise TypeError(f"config fields of type {tp!r} are not supported")  # a programming error, not the user's


def _fits(tp, value, default) -> bool:
    """Whether a recorded (JSON) value has the field's type (an int is a float; a bool is neither)."""
    inner, optional = _split_optional(tp)
    if value is None:
        return optional
    if inner is tuple or typing.get_origin(inner) is tuple:
        kind = _element_type(inner, default)
        return isinstance(value, tuple) and all(_fits(kind, v, None) for v in value)
    if inner is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if inner is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, inner)


# --- ranges: what a config's __post_init__ checks -------------------------------------------------

SEED_MAX = 2**63 - 1  # torch.Generator.manual_seed takes a signed 64-bit seed


def _bounds_text(lo, hi) -> str:
    if lo is not None and hi is not None:
        return f"in {lo}..{hi}"
    return f">= {lo}" if lo is not None else f"<= {hi}"


def check_ranges(cfg, **bounds) -> None:
    """Refuse a field outside its bounds, one UsageError naming it: bounds are field=(lo, hi), inclusive,
    None for no bound. None values (a field's "unset") are skipped; a tuple's every element is checked."""
    for name, (lo, hi) in bounds.items():
        value = getattr(cfg, name)
        for v in value if isinstance(value, tuple) else (value,):
            if v is None:
                continue
            if isinstance(v, float) and not math.isfinite(v) or (lo is not None and v < lo) or (hi is not None and v > hi):
                raise UsageError(f"{name} must be {_bounds_text(lo, hi)}, got {value}")
        if isinstance(value, tuple) and not value:
            raise UsageError(f"{name} must list at least one value")


def check_seed(value: int, name: str = "seed") -> None:
    if not 0 <= value <= SEED_MAX:
        raise UsageError(f"{name} must be an integer in 0..{SEED_MAX}, got {value}")


def seed_value(raw: str) -> int:
    """argparse type of a --seed flag: an integer torch can seed with, else one line with the valid range."""
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"must be an integer in 0..{SEED_MAX}, got {raw!r}")
    return value


def _float_arg(raw: str, ok: Callable[[float], bool], expected: str) -> float:
    """float(raw) if it is a finite number that satisfies `ok`, else argparse's one-line refusal."""
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and ok(value)):
        raise argparse.ArgumentTypeError(f"must be {expected}, got {raw!r}")
    return value


def positive_float(raw: str) -> float:
    """argparse type of a finite number > 0 (a duration, a scale)."""
    return _float_arg(raw, lambda v: v > 0, "a finite number > 0")


def finite_float(raw: str) -> float:
    """argparse type of a finite number (nan and inf are refused: they would poison every step)."""
    return _float_arg(raw, lambda v: True, "a finite number")


# --- building and loading configs -----------------------------------------------------------------


def _fields(cls) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _aliases(cls) -> dict[str, str]:
    """Every accepted key (field names and flag aliases, - or _) -> field name."""
    out = {}
    for f in dataclasses.fields(cls):
        for name in (f.name, f.metadata.get("flag")):
            if name:
                out[name.replace("-", "_")] = f.name
    return out


def _check_keys(cls, keys, prefix: str = "") -> dict[str, str]:
    aliases = _aliases(cls)
    unknown = sorted(prefix + k for k in keys if k.replace("-", "_") not in aliases)
    if unknown:
        raise UsageError(f"unknown config keys {unknown} for {prefix.rstrip('.') or cls.__name__}; valid keys: {', '.join(_fields(cls))}")
    return {k: aliases[k.replace("-", "_")] for k in keys}


def config_from_dict(cls, values: dict, base=None, prefix: str = ""):
    """A config from a recorded dict (a run's config.json, a recipe): unknown keys are an error, JSON
    lists become tuples, and a field's legacy sentinel (e.g. width=0, time_grid="") reads as None.
    prefix: how errors name the keys' place (e.g. "uvit." for a model config.json's section)."""
    if not isinstance(values, dict):
        raise UsageError(f"{prefix.rstrip('.') or cls.__name__} must be a JSON object {{...}}, got {type(values).__name__}")
    names = _check_keys(cls, values, prefix)
    fields_, types_ = _fields(cls), field_types(cls)
    kw = {}
    for key, value in values.items():
        name = names[key]
        legacy = fields_[name].metadata.get("legacy", _NO_LEGACY)
        if legacy is not _NO_LEGACY and value == legacy and type(value) is type(legacy):
            value = None
        elif isinstance(value, list):
            value = tuple(value)
        if not _fits(types_[name], value, fields_[name].default):
            raise UsageError(f"bad value {value!r} for {prefix}{name} "
                             f"(expected {_type_name(types_[name], fields_[name].default)})")
        kw[name] = float(value) if _split_optional(types_[name])[0] is float and isinstance(value, int) else value
    try:
        return dataclasses.replace(base if base is not None else cls(), **kw)
    except UsageError as err:  # the class's own range checks (__post_init__): name where the values came from
        if not prefix:
            raise
        names_a_field = str(err).split(" ", 1)[0] in _fields(cls)  # "width must be >= 1" -> "uvit.width must be >= 1"
        raise UsageError(f"{prefix}{err}" if names_a_field else f"{prefix.rstrip('.')}: {err}") from None


def config_from_section(cls, values, section: str, optional=()):
    """A config from one section of a recorded file (a model config.json's "autoencoder" entry, less its
    "type"): every field must be present (a missing one would silently take the class default) except
    those in `optional`; types, ranges and unknown keys are checked by config_from_dict."""
    if not isinstance(values, dict):
        raise UsageError(f"{section} must be a JSON object {{...}}, got {type(values).__name__}")
    values = {k: v for k, v in values.items() if k != "type"}
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in values and f.name not in optional]
    if missing:
        raise UsageError(f"{section} lacks {', '.join(section + '.' + m for m in missing)}")
    return config_from_dict(cls, values, prefix=section + ".")


def config_dict(cfg) -> dict:
    """The config as a JSON-ready dict (tuples as lists): what runs record and --print-config prints."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def apply_overrides(cfg, overrides: dict[str, str]):
    """cfg with string overrides (key -> raw value) coerced from the annotations."""
    cls = type(cfg)
    names = _check_keys(cls, overrides)
    return dataclasses.replace(cfg, **{names[k]: parse_value(cls, names[k], v) for k, v in overrides.items()})


def split_settings(words) -> tuple[str | None, dict[str, str]]:
    """[PRESET|FILE.json] key=value ... -> (the preset or file, {key: raw value})."""
    source, kv = None, {}
    for i, word in enumerate(words):
        if "=" in word:
            k, v = word.split("=", 1)
            kv[k.strip()] = v
        elif i == 0:
            source = word
        else:
            raise UsageError(f"override {word!r} must look like key=value (a preset or .json file comes first)")
    return source, kv


def base_config(cls, source: str | None, presets: dict | None = None):
    """The config a preset name or a recorded .json config names (the class defaults when None)."""
    presets = presets or {}
    if source is None:
        return cls()
    if source in presets:
        return presets[source]
    if source.endswith(".json"):
        return config_from_dict(cls, read_json(source, "config file"))
    names = f"a preset ({', '.join(presets)}) or a .json file" if presets else "a .json config file"
    raise UsageError(f"unknown config {source!r}; use {names}")


def resolve_config(cls, words=(), presets: dict | None = None, flags: dict[str, str] | None = None):
    """Preset (or recorded .json config, or the defaults), then the flags, then the key=value words."""
    source, kv = split_settings(words)
    cfg = base_config(cls, source, presets)
    return apply_overrides(apply_overrides(cfg, flags or {}), kv)


# --- argparse -------------------------------------------------------------------------------------


def _show(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return ",".join(_show(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _metavar(name: str, inner) -> str:
    if inner is int or inner is float:
        return inner.__name__.upper()
    if inner is tuple or typing.get_origin(inner) is tuple:
        return "A,B,..."
    return name.split("_")[-1].upper()


def _flag_names(f: dataclasses.Field) -> list[str]:
    names = [f.metadata.get("flag"), f.name] if f.metadata.get("flag") else [f.name]
    return ["--" + n.replace("_", "-") for n in names]


class _IntermixedParser(argparse.ArgumentParser):
    """Flags and key=value words in any order: plain argparse stops matching positionals after the first run
    of them, so `--steps 2 group=4 --kl 0.1 seed=3` would leave seed=3 unrecognised."""

    _inside = False

    def parse_known_args(self, args=None, namespace=None):
        if self._inside:  # parse_known_intermixed_args calls this twice (optionals, then positionals)
            return super().parse_known_args(args, namespace)
        for add in self.__dict__.pop("_deferred", []):  # add_config_arguments_lazily: now that this command runs
            add()
        self._inside = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inside = False


_INTERMIXED: dict[type, type] = {argparse.ArgumentParser: _IntermixedParser}


def _make_intermixed(parser: argparse.ArgumentParser) -> None:
    """Give parser _IntermixedParser's parsing, keeping its own class's other behaviour (the CLI's one-line errors)."""
    cls = type(parser)
    if not issubclass(cls, _IntermixedParser):
        if cls not in _INTERMIXED:
            _INTERMIXED[cls] = type(f"Intermixed{cls.__name__}", (_IntermixedParser, cls), {})
        parser.__class__ = _INTERMIXED[cls]


def add_config_arguments(parser: argparse.ArgumentParser, cls, presets: dict | None = None, settings: bool = True,
                         defaults=None) -> None:
    """Add one option per field of `cls`, --print-config, and (settings) the positional
    `[PRESET|FILE.json] [key=value ...]`. defaults: the config whose values the help shows."""
    d = defaults if defaults is not None else cls()
    types_ = field_types(cls)
    _make_intermixed(parser)  # a subcommand's parser is made by add_parser: its class is not ours to choose
    if settings:
        first = dataclasses.fields(cls)[0]
        example = f"{first.name}={_show(getattr(d, first.name))}"
        what = f"a preset ({', '.join(presets)}) or a recorded .json config" if presets else "a recorded .json config"
        parser.add_argument("settings", nargs="*", metavar=f"[{'PRESET' if presets else 'CONFIG.json'}] [key=value]",
                            help=f"{what}, then key=value overrides of any option (e.g. {example})")
    for f in dataclasses.fields(cls):
        tp = types_[f.name]
        inner, _ = _split_optional(tp)
        text = (f.metadata.get("help") or "").replace("%", "%%")
        shown = _show(getattr(d, f.name))
        if f.metadata.get("required"):
            text += " (required)"
        elif inner is bool:
            text += f" (default {'on' if getattr(d, f.name) else 'off'})"
        else:
            text += f" (default {shown})"
        kw = dict(dest=_DEST + f.name, default=argparse.SUPPRESS, help=text.strip())
        if inner is bool:
            parser.add_argument(*_flag_names(f), action=argparse.BooleanOptionalAction, **kw)
        else:
            parser.add_argument(*_flag_names(f), metavar=f.metadata.get("metavar") or _metavar(f.name, inner), **kw)
    parser.add_argument("--print-config", action="store_true", help="print the resolved config as JSON and exit")


def add_config_arguments_lazily(parser: argparse.ArgumentParser, load_cls, **kwargs) -> None:
    """add_config_arguments(parser, load_cls(), ...) when this parser first parses (its command runs or shows
    --help), so that building the whole command line does not import the module that defines the class."""
    _make_intermixed(parser)
    parser._deferred = [lambda: add_config_arguments(parser, load_cls(), **kwargs)]


def flag_dest(name: str) -> str:
    """The argparse dest of field `name`'s flag (for a command's own action that sets a field, e.g. --aspect)."""
    return _DEST + name


def flag_values(cls, args: argparse.Namespace) -> dict[str, str]:
    """The config flags given on the command line, as field -> raw string (booleans as "true"/"false")."""
    out = {}
    for f in dataclasses.fields(cls):
        if hasattr(args, _DEST + f.name):
            value = getattr(args, _DEST + f.name)
            out[f.name] = _show(value) if isinstance(value, bool) else value
    return out


def config_from_args(cls, args: argparse.Namespace, presets: dict | None = None, words=None):
    """The config of a parsed command line: preset/file, flags, key=value words (args.settings by default);
    a required field still unset is one UsageError."""
    words = getattr(args, "settings", ()) if words is None else words
    cfg = resolve_config(cls, words, presets, flag_values(cls, args))
    for f in dataclasses.fields(cls):
        if f.metadata.get("required") and getattr(cfg, f.name) is None:
            raise UsageError(f"{_flag_names(f)[0]} is required (or {f.name}=VALUE)")
    return cfg


def print_config(cfg) -> None:
    print(json.dumps(config_dict(cfg)))


# --- back to a command line -----------------------------------------------------------------------


def to_command(prog: str, cfg, positional=(), base=None, keep=(), overrides: bool = False) -> str:
    """The shortest command `prog ...` that rebuilds `cfg`: the positional words (e.g. a preset name),
    then, in field order, every field that differs from `base` (the class defaults by default) and the
    fields in `keep` always. As flags, or as key=value words when `overrides` (train's syntax)."""
    base = base if base is not None else type(cfg)()
    fields_ = _fields(type(cfg))
    names = [n for n in fields_ if n in keep or getattr(cfg, n) != getattr(base, n)]
    parts = [prog, *map(shlex.quote, positional)]
    for name in names:
        value, f = getattr(cfg, name), fields_[name]
        if overrides:
            parts.append(shlex.quote(f"{name}={_show(value)}"))
        elif isinstance(value, bool):
            flag = _flag_names(f)[0]
            parts.append(flag if value else "--no-" + flag[2:])
        else:
            parts += [_flag_names(f)[0], shlex.quote(_show(value))]
    return " ".join(parts)

