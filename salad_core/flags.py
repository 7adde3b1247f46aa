"""A config dataclass and its command line, both ways: flags generated from the fields, and a config written back as
the flags that rebuild it (`to_argv`). One definition serves `salad train|select`, the dashboard's forms and the
jobs they start, so a page cannot drift from the command line.

Each field is one flag, named as the field (`kl_temperature` -> `--kl-temperature`); its help is the comment at the
end of the field's line in the dataclass source. Fields with a fixed set of values name them in `choices`.
"""

from __future__ import annotations

import argparse
import inspect
import io
import tokenize
from dataclasses import MISSING, dataclass, fields

FLAG_ALIASES = {"from_run": ["--from"], "round_id": ["--round"], "model_path": ["--model"]}  # the names docs use


@dataclass(frozen=True)
class FieldSpec:
    """What a form or a parser needs to know of one config field."""

    name: str
    kind: type  # int | float | str | bool (of each element, for a list)
    optional: bool  # None is a value (e.g. a budget left unset)
    is_list: bool  # comma-separated on the command line, and the flag repeatable
    default: object
    choices: tuple | None
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def field_comments(cls) -> dict[str, str]:
    """The comment at the end of each field's line in a dataclass's source (`alpha: float = 1.0  # SALAD uses 1.0`):
    the config documents its fields once, and `--help` and the forms show the same words."""
    comments, line_field = {}, {}
    for token in tokenize.generate_tokens(io.StringIO(inspect.getsource(cls)).readline):
        row = token.start[0]
        if token.type == tokenize.NAME and row not in line_field and token.line.strip().startswith(token.string + ":"):
            line_field[row] = token.string
        elif token.type == tokenize.COMMENT and row in line_field:
            comments[line_field[row]] = token.string.lstrip("#").strip()
    return comments


def _kind(annotation: str, default: object) -> type:
    if default is not None and not isinstance(default, (list, tuple)):
        return type(default)
    if "list[str]" in str(annotation):
        return str
    for name, kind in (("bool", bool), ("float", float), ("int", int)):
        if name in str(annotation):
            return kind
    return str


def field_specs(cls, choices: dict[str, tuple] | None = None) -> list[FieldSpec]:
    comments = field_comments(cls)
    specs = []
    for f in fields(cls):
        default = f.default if f.default is not MISSING else (f.default_factory() if f.default_factory is not MISSING
                                                               else None)
        specs.append(FieldSpec(f.name, _kind(f.type, default), "None" in str(f.type), "list[" in str(f.type), default,
                               (choices or {}).get(f.name), comments.get(f.name, "")))
    return specs


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


class _ExtendList(argparse.Action):
    """A list flag may be given again: `--speech A --speech B` is `--speech A,B`."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, (getattr(namespace, self.dest) or []) + list(values))


def add_list_flag(parser: argparse.ArgumentParser, flag: str, help: str, **options) -> None:
    """A list flag of a command's own (not a config field's), read as the dataclass flags' lists are: comma-separated
    and repeatable (`--speech A --speech B,C` is [A, B, C])."""
    parser.add_argument(flag, type=_csv, action=_ExtendList, default=None, help=help.replace("%", "%%"), **options)


def add_dataclass_flags(parser: argparse.ArgumentParser, cls, recipes: dict[str, dict] | None = None,
                        choices: dict[str, tuple] | None = None) -> None:
    """One flag per field, default None: a flag not given leaves the field to the recipe, then to the default."""
    for spec in field_specs(cls, choices):
        given = ", ".join(f"{p}: {r[spec.name]}" for p, r in (recipes or {}).items() if spec.name in r)
        shown = ",".join(spec.default) if spec.is_list and spec.default else spec.default
        text = f"{spec.help} (default: {shown}{'; preset ' + given if given else ''})".strip().replace("%", "%%")
        if spec.kind is bool and spec.default:  # on by default: a --no- flag turns it off
            parser.add_argument("--no-" + spec.name.replace("_", "-"), dest=spec.name, action="store_false",
                                default=None, help=f"leave out: {spec.help}")
        elif spec.kind is bool:  # off by default: the flag turns it on
            parser.add_argument(spec.flag, dest=spec.name, action="store_true", default=None, help=spec.help)
        else:
            parser.add_argument(*FLAG_ALIASES.get(spec.name, []), spec.flag, dest=spec.name, default=None,
                                type=_csv if spec.is_list else spec.kind, help=text,
                                choices=None if spec.is_list else spec.choices,
                                action=_ExtendList if spec.is_list else "store")


def flag_value(value: object) -> str:
    """A value as its flag's text; floats by repr, so that parsing it back gives the same float; lists joined."""
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return repr(value) if isinstance(value, float) else str(value)


def to_argv(config, base=None, skip: tuple[str, ...] = ()) -> list[str]:
    """The flags that turn `base` (default: the dataclass defaults) into `config`: one per field that differs.

    A field that differs by being None cannot be written as a flag (flags left out mean "not given"): ValueError.
    """
    base = base if base is not None else type(config)(**{f.name: getattr(config, f.name) for f in fields(config)
                                                         if f.default is MISSING})
    argv = []
    for f in fields(config):
        value, start = getattr(config, f.name), getattr(base, f.name)
        if f.name in skip or value == start:
            continue
        if value is None:
            raise ValueError(f"{type(config).__name__}.{f.name} is None where the base has {start!r}: a command "
                             "line cannot unset a field. Fix: start from a base that leaves it unset.")
        if isinstance(value, bool):  # a switch's one flag sets it away from the field's default
            if value == f.default:
                raise ValueError(f"{type(config).__name__}.{f.name}: its flag only sets it to {not f.default}.")
            argv.append(("--" if value else "--no-") + f.name.replace("_", "-"))
        else:
            argv += ["--" + f.name.replace("_", "-"), flag_value(value)]
    return argv
