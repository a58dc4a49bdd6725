"""JSON Schemas of the saved documents this version reads back (a sweep, a
history of sweeps, boot-log findings), and check(): a document against its schema, the first
problem as one line naming the file and the field.

Each schema node that a value can fail carries "what": the words of the
message ("socs[0].boards is not a list"). Fields are named by their path
in the document: `links[2].verdict`, `corpus.root`; a field of the
document itself by the document's name (`sweep.rule`). The format of each
document is in docs/formats.md.
"""
from __future__ import annotations

from jsonschema import Draft202012Validator, validators

from corpus.errors import UserError
from kernels.codes import DMA_ATTR_NAMES, KIND_NAMES, RULE_NAMES, VERDICT_NAMES, VIA_NAMES

# An integer is an int, not a bool and not 1.0 (Python's json reads both apart).
_TYPES = Draft202012Validator.TYPE_CHECKER.redefine(
    "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool))
_Validator = validators.extend(Draft202012Validator, type_checker=_TYPES)


# -- the words of one field ----------------------------------------------------------

def string():
    return {"type": "string", "what": "a string"}


def opt_string():
    return {"type": ["string", "null"], "what": "a string or null"}


def boolean():
    return {"type": "boolean", "what": "true or false"}


def opt_boolean():
    return {"type": ["boolean", "null"], "what": "true, false or null"}


def choice(names, nullable=False):
    allowed = list(names) + ([None] if nullable else [])
    return {"enum": allowed,
            "what": "one of " + ", ".join("null" if n is None else n for n in allowed)}


def strings():
    return {"type": "array", "what": "a list",
            "items": {"type": "string", "what": "a list of strings", "whole": True}}


def array(items):
    return {"type": "array", "what": "a list", "items": items}


def obj(properties, optional=()):
    """An object with these properties, all required but the optional ones."""
    return {"type": "object", "what": "an object", "properties": properties,
            "required": [k for k in properties if k not in optional]}


def counts():
    """{verdict: how many links}."""
    return {"type": "object", "what": "verdict counts",
            "propertyNames": {"enum": list(VERDICT_NAMES)},
            "additionalProperties": {"type": "integer", "minimum": 0}}


def line_number():
    return {"type": ["integer", "null"], "minimum": 1, "what": "a line number"}


def tree_path():
    """A path relative to the kernel tree, or null: `patch` reads it, so
    nothing absolute, no NUL and no `..` (a link out of the tree is refused
    where the tree is known: auditor.patch.dts.tree_file)."""
    return {"type": ["string", "null"], "what": "a string or null",
            "not": {"type": "string", "pattern": r"^$|^/|\x00|(^|/)\.\.(/|$)"},
            "refused": "a path inside the kernel tree"}


# -- the documents -------------------------------------------------------------------

def sweep_schema(schema: int) -> dict:
    """A saved sweep of schema 1 or 2 (2: target_kernel, severities, partial)."""
    two = schema > 1
    link = obj({
        "dtb": string(), "board": opt_string(), "soc": opt_string(),
        "provider_path": opt_string(), "provider_label": opt_string(),
        "provider_compatible": strings(), "driver": opt_string(),
        "provider_enabled": boolean(), "provider_coherent": boolean(),
        "link": choice(VIA_NAMES), "master_path": opt_string(),
        "master_kind": choice(KIND_NAMES), "master_enabled": boolean(),
        "master_dma_attr": choice(DMA_ATTR_NAMES), "bridge_path": opt_string(),
        "bridge_coherent": opt_boolean(), "placeholder_map": boolean(),
        "vfio_candidate": boolean(), "rule": choice(RULE_NAMES),
        "verdict": choice(VERDICT_NAMES), "note": opt_string(), "diagnostic": opt_string(),
    }, optional=("diagnostic",))
    provider = obj({
        "path": string(), "label": opt_string(), "compatible": strings(), "driver": string(),
        "coherent": boolean(), "affected": boolean(), "source_file": tree_path(),
        "source_line": line_number(), "dtbs": strings(), "verdict_counts": counts()})
    master = obj({"path": opt_string(), "kind": choice(KIND_NAMES),
                  "verdict": choice(VERDICT_NAMES), "dtbs": strings()})
    soc = obj({
        "soc": opt_string(), "affected": boolean(), "passthrough": boolean(),
        "boards": strings(), "affected_boards": strings(), "providers": array(provider),
        "broken_masters": array(master), "verdict_counts": counts()})
    from .evidence import CLASSES
    evidence = obj({
        "soc": opt_string(), "path": string(), "class": choice(CLASSES), "reason": string(),
        "logs": array(obj({"log": string(), "boards": strings(), "kernel": opt_string(),
                           "register_coherent": opt_boolean()}))})
    corpus = obj({"root": string(), "identity": opt_string(), "kernel_dir": opt_string(),
                  "partial": boolean()}, optional=() if two else ("partial",))
    diagnostic = obj({"dtb": string(), "path": opt_string(), "message": string(),
                      "severity": choice(("warning", "error"))},
                     optional=() if two else ("severity",))
    return obj({
        "rule": choice(RULE_NAMES), "target_kernel": opt_string(),
        "target_assumed": boolean(), "legacy_dt_bindings": boolean(), "corpus": corpus,
        "links": array(link), "socs": array(soc), "diagnostics": array(diagnostic),
        "evidence": array(evidence),
    }, optional=("evidence",) + (() if two else ("target_kernel", "target_assumed")))


SMMU_STATES = ("coherent", "non-coherent", "mixed")


def history_schema(versions: int) -> dict:
    """A history of saved sweeps (the git form is not read back)."""
    def row_of(names):
        words = f"a list of {versions} of " + ", ".join(names) + ", null"
        return {"type": "array", "minItems": versions, "maxItems": versions, "what": words,
                "items": {"enum": list(names) + [None], "what": words, "whole": True}}
    change = obj({"version": string(), "what": choice(("smmu", "verdict")),
                  "old": string(), "new": string()})
    return obj({
        "versions": dict(strings(), what="a list of strings"),
        "target_kernels": dict(array(opt_string()), minItems=versions, maxItems=versions,
                               what=f"a list of {versions} strings or nulls"),
        "rules": dict(array(choice(RULE_NAMES, True)), minItems=versions, maxItems=versions,
                      what=f"a list of {versions} rules or nulls"),
        "socs": array(obj({"soc": opt_string(), "verdicts": row_of(("affected", "unaffected")),
                           "smmu": row_of(SMMU_STATES), "changes": array(change)})),
    })


def bootlog_schema(findings, schema: int) -> dict:
    """A bootlog document (`bootlog --format json`) of this schema version,
    its findings one of `findings`: only what the site shows."""
    smmu = obj({"device": string(), "node": opt_string(), "note": opt_string(),
                "dt_coherent": opt_boolean(), "hw_coherent": opt_boolean(),
                "finding": choice(findings)})
    log = obj({"log": string(), "model": opt_string(), "kernel": opt_string(),
               "soc": opt_string(), "boards": strings(), "smmus": array(smmu)},
              optional=("soc",))
    return obj({"schema": {"const": schema, "what": str(schema)}, "logs": array(log),
                "socs": {"type": "array", "what": "a list"}}, optional=("socs",))


# -- checking ------------------------------------------------------------------------

def check(doc, schema: dict, name: str, invalid: str, root: str | None, error=UserError):
    """Raise error(name, f"{invalid}: FIELD is not WHAT") for the first
    field of `doc` that `schema` refuses (FIELD: "has no 'key'" for a
    missing one). root: how a field of the document itself is named
    ("sweep": sweep.rule), None to name it bare (versions)."""
    problem = next(iter(_Validator(schema).iter_errors(doc)), None)
    if problem is None:
        return
    path = list(problem.absolute_path)
    if problem.validator == "required":
        missing = next(k for k in problem.validator_value if k not in problem.instance)
        raise error(name, f"{invalid}: {_container(path, root)} has no {missing!r}")
    # The node that says what the value should be: the failing one, or the
    # nearest above it that has words (a list's items speak for the list).
    node, depth, said = schema, 0, (schema, 0)
    steps = list(problem.absolute_schema_path)
    while steps:
        step = steps.pop(0)
        if step == "properties":
            node = node["properties"][steps.pop(0)]
        elif step in ("items", "additionalProperties"):
            node = node[step]
        else:
            break
        depth += 1
        if "what" in node:
            said = (node, depth)
    node, depth = said
    if node.get("whole"):
        depth -= 1                  # the list, in the words of its items
    field = _value(path[:depth], root)
    if problem.validator == "not" and "refused" in node:
        raise error(name, f"{invalid}: {field} is not {node['refused']}: "
                          f"{problem.instance!r:.200}")
    raise error(name, f"{invalid}: {field} is not {node['what']}")


def _container(path, root) -> str:
    """How the object at `path` is named: root, "corpus", "links[2]"."""
    if not path:
        return root or "document"
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else key)
    return out


def _value(path, root) -> str:
    """How the value at `path` is named: "sweep.rule", "corpus.root", "links[2]"."""
    if len(path) == 1 and isinstance(path[0], str):
        return f"{root}.{path[0]}" if root else path[0]
    return _container(path, root)
