"""The workflow's config against its JSON schema: defaults filled in, each error in one line.

`check_config` does what Snakemake's `validate` does for a config (fill in every default the
schema gives, then validate with JSON Schema draft 2020-12), but a config that breaks the
schema raises an `InputError` of one line per error naming the key's dotted path, instead of
jsonschema's report with the whole schema in it. An unknown key names the closest key its
section takes (a typo in a nested section, `inference.shard_sise`, would otherwise read like
a problem with the whole file):

    config/config.yaml: unknown key inference.shard_sise; the closest is inference.batch_size
    (inference takes: batch_size, compile, ...)

The workflow calls it once, in workflow/rules/common.smk, before any job.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, ValidationError, validators
from jsonschema.exceptions import best_match

from posecore.errors import InputError


def _fill_defaults(validator_class: type) -> type:
    """`validator_class` whose "properties" check first sets each absent property to its default.

    The jsonschema FAQ's recipe, the one Snakemake's `validate` uses.
    """
    check_properties = validator_class.VALIDATORS["properties"]

    def properties(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema:
                    instance.setdefault(name, subschema["default"])
        yield from check_properties(validator, properties, instance, schema)

    return validators.extend(validator_class, {"properties": properties})


DefaultingValidator = _fill_defaults(Draft202012Validator)


def load_schema(path: str | Path) -> dict[str, Any]:
    """A JSON schema from a YAML (or JSON) file."""
    return yaml.safe_load(Path(path).read_text())


def check_config(config: dict[str, Any], schema: Mapping[str, Any], source: str | Path) -> dict[str, Any]:
    """Fill in the schema's defaults in `config` (in place) and check it against `schema`.

    Args:
        config: the config as read from YAML.
        schema: its JSON schema (`load_schema`).
        source: the config file, named in the error.

    Returns:
        `config`, its defaults filled in.

    Raises:
        InputError: one line per error, each naming the key's dotted path.
    """
    errors = sorted(DefaultingValidator(schema).iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path])
    lines = [line for error in errors for line in describe(error)]
    if lines:
        raise InputError(source, lines[0] if len(lines) == 1 else "\n".join([f"{len(lines)} errors", *lines]))
    return config


def key_path(parts: Any) -> str:
    """A dotted key path, list items in brackets: ["dataset", "labels", 0] -> "dataset.labels[0]"."""
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path


def describe(error: ValidationError) -> Iterator[str]:
    """One line for each thing wrong that a jsonschema error reports, naming the key."""
    where = key_path(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = sorted(error.schema.get("properties", {}))
        section = f"{where}." if where else ""
        for key in sorted(set(error.instance) - set(known), key=str):
            closest = difflib.get_close_matches(str(key), known, n=1, cutoff=0.0)
            guess = f"; the closest is {section}{closest[0]}" if closest else ""
            takes = f"{where or 'the config'} takes: {', '.join(known)}"
            yield f"unknown key {section}{key}{guess} ({takes})"
    elif error.validator == "required":
        missing = [name for name in error.validator_value if name not in error.instance]
        for name in missing:
            yield f"{key_path([*error.absolute_path, name])} is required but missing"
    elif error.validator in ("anyOf", "oneOf") and error.context:
        # jsonschema's best match is the alternative of the value's own type ("auto" or an integer
        # >= 1: -1 is too small, not "not valid under any of the given schemas"); a value of no
        # alternative's type gets the types it could have.
        best = best_match([error])
        shown = [best] if best is not error else [e for e in error.context if e.validator == "type"] or [error]
        reasons = dict.fromkeys(" ".join(e.message.split()) for e in shown)
        yield f"{key_path(best.absolute_path) or 'the config'}: {'; '.join(reasons)}"
    else:
        yield f"{where or 'the config'}: {' '.join(error.message.split())}"
