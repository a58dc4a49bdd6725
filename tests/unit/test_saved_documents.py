"""A saved document that is not valid is one line naming the file, the
field by its path in the document and what that field must be
(docs/formats.md, "Reading documents back"): every field of a saved sweep
and of a saved history, each wrong once, and each required one missing."""
import copy
import json

import pytest

from testpaths import GOLDEN

from auditor.model import SweepFileError, load_history, load_sweep

SWEEP = json.loads((GOLDEN / "snippets/sweep.json").read_text())
HISTORY = json.loads((GOLDEN / "snippets/history.json").read_text())

# The vocabularies as README.md and docs/rule.md list them.
RULES = "one of walk-or-device, walk-only, legacy-true, no-check"
VERDICTS = ("one of capable, rescued-by-device, broken, broken-bridge-coherent, no-iommu, "
            "unsupported-iommu, not-a-device")
VIAS = "one of iommus, iommu-map, mmu-masters"
KINDS = ("one of platform, pci-dt-child, pci-discovered, fsl-mc, host1x-context, "
         "gpcdma-channel, cdx")
DMA = "one of coherent, non-coherent, not-supported"
CLASSES = "one of hardware-says-coherent, coherent-masters, known-noncoherent, no-evidence"

A_STRING, OR_NULL, BOOL = "a string", "a string or null", "true or false"
LINK_FIELDS = {
    "dtb": A_STRING, "board": OR_NULL, "soc": OR_NULL, "provider_path": OR_NULL,
    "provider_label": OR_NULL, "driver": OR_NULL, "provider_enabled": BOOL,
    "provider_coherent": BOOL, "link": VIAS, "master_path": OR_NULL, "master_kind": KINDS,
    "master_enabled": BOOL, "master_dma_attr": DMA, "bridge_path": OR_NULL,
    "bridge_coherent": "true, false or null", "placeholder_map": BOOL, "vfio_candidate": BOOL,
    "rule": RULES, "verdict": VERDICTS, "note": OR_NULL, "diagnostic": OR_NULL}
PROVIDER_FIELDS = {"path": A_STRING, "label": OR_NULL, "driver": A_STRING, "coherent": BOOL,
                   "affected": BOOL, "source_file": OR_NULL, "source_line": "a line number",
                   "verdict_counts": "verdict counts"}
SOC_FIELDS = {"soc": OR_NULL, "affected": BOOL, "passthrough": BOOL,
              "verdict_counts": "verdict counts"}
TOP_FIELDS = {"rule": RULES, "target_kernel": OR_NULL, "target_assumed": BOOL,
              "legacy_dt_bindings": BOOL}


def wrong(what):
    """A value of the wrong kind for a field that must be `what`."""
    return 17 if what in (A_STRING, OR_NULL, BOOL) or what.startswith("true") else "nonsense"


def set_at(doc, path, value):
    doc = copy.deepcopy(doc)
    *parents, last = path
    node = doc
    for key in parents:
        node = node[key]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return doc


def provider_path():
    s = next(k for k, soc in enumerate(SWEEP["socs"]) if soc["providers"]
             and soc["broken_masters"])
    return ["socs", s, "providers", 0], f"socs[{s}].providers[0]"


CASES = [(["rule"], "nonsense", f"sweep.rule is not {RULES}")]
CASES += [([f], wrong(w), f"sweep.{f} is not {w}") for f, w in TOP_FIELDS.items()]
CASES += [(["corpus"], [], "sweep.corpus is not an object"),
          (["corpus", "root"], None, "corpus.root is not a string"),
          (["corpus", "identity"], 1, "corpus.identity is not a string or null"),
          (["corpus", "kernel_dir"], 1, "corpus.kernel_dir is not a string or null"),
          (["corpus", "partial"], "no", "corpus.partial is not true or false"),
          (["links"], {}, "sweep.links is not a list"),
          (["links", 0], 1, "links[0] is not an object"),
          (["links", 0, "provider_compatible"], "x", "links[0].provider_compatible is not a list"),
          (["links", 0, "provider_compatible"], [1],
           "links[0].provider_compatible is not a list of strings"),
          (["socs"], 1, "sweep.socs is not a list"),
          (["diagnostics"], 1, "sweep.diagnostics is not a list"),
          (["evidence"], 1, "sweep.evidence is not a list")]
CASES += [(["links", 0, f], wrong(w), f"links[0].{f} is not {w}") for f, w in LINK_FIELDS.items()]
CASES += [(["links", 0, f], KeyError, f"links[0] has no {f!r}")
          for f in LINK_FIELDS if f != "diagnostic"]
CASES += [(["socs", 0, f], wrong(w), f"socs[0].{f} is not {w}") for f, w in SOC_FIELDS.items()]
CASES += [(["socs", 0, f], "x", f"socs[0].{f} is not a list")
          for f in ("boards", "affected_boards", "providers", "broken_masters")]
CASES += [(["socs", 0, "boards"], [None], "socs[0].boards is not a list of strings"),
          (["socs", 0, "verdict_counts"], {"capable": -1}, "socs[0].verdict_counts is not "
                                                           "verdict counts"),
          (["socs", 0, "verdict_counts"], {"maybe": 1}, "socs[0].verdict_counts is not "
                                                        "verdict counts"),
          (["socs", 0, "soc"], KeyError, "socs[0] has no 'soc'")]
_P, _NAME = provider_path()
CASES += [(_P + [f], wrong(w), f"{_NAME}.{f} is not {w}") for f, w in PROVIDER_FIELDS.items()]
CASES += [(_P + [f], "x", f"{_NAME}.{f} is not a list") for f in ("compatible", "dtbs")]
CASES += [(_P + ["source_line"], 0, f"{_NAME}.source_line is not a line number"),
          (_P + ["source_file"], "/etc/passwd", f"{_NAME}.source_file is not a path inside the "
                                                f"kernel tree: '/etc/passwd'"),
          (_P + ["source_file"], "a/../../x", f"{_NAME}.source_file is not a path inside the "
                                              f"kernel tree: 'a/../../x'")]
_M, _MNAME = _P[:2] + ["broken_masters", 0], _NAME.rsplit(".", 1)[0] + ".broken_masters[0]"
CASES += [(_M + ["path"], 1, f"{_MNAME}.path is not a string or null"),
          (_M + ["kind"], "x", f"{_MNAME}.kind is not {KINDS}"),
          (_M + ["verdict"], "x", f"{_MNAME}.verdict is not {VERDICTS}"),
          (_M + ["dtbs"], "x", f"{_MNAME}.dtbs is not a list")]
CASES += [(["diagnostics", 0, "dtb"], None, "diagnostics[0].dtb is not a string"),
          (["diagnostics", 0, "path"], 1, "diagnostics[0].path is not a string or null"),
          (["diagnostics", 0, "message"], None, "diagnostics[0].message is not a string"),
          (["diagnostics", 0, "severity"], "fatal",
           "diagnostics[0].severity is not one of warning, error")]
CASES += [(["evidence", 0, "soc"], 1, "evidence[0].soc is not a string or null"),
          (["evidence", 0, "path"], None, "evidence[0].path is not a string"),
          (["evidence", 0, "class"], "x", f"evidence[0].class is not {CLASSES}"),
          (["evidence", 0, "reason"], None, "evidence[0].reason is not a string"),
          (["evidence", 0, "logs"], [{"log": 1, "boards": [], "kernel": None,
                                      "register_coherent": None}],
           "evidence[0].logs[0].log is not a string"),
          (["evidence", 0, "logs"], [{"log": "a.log", "boards": [], "kernel": 1,
                                      "register_coherent": None}],
           "evidence[0].logs[0].kernel is not a string or null"),
          (["evidence", 0, "logs"], [{"log": "a.log", "boards": [], "kernel": None,
                                      "register_coherent": "yes"}],
           "evidence[0].logs[0].register_coherent is not true, false or null")]


@pytest.mark.parametrize("path, value, message", CASES,
                         ids=[".".join(map(str, c[0])) + ("-gone" if c[1] is KeyError else "")
                              for c in CASES])
def test_a_saved_sweep_names_the_field_that_is_wrong(tmp_path, path, value, message):
    saved = tmp_path / "s.json"
    saved.write_text(json.dumps(set_at(SWEEP, path, value)))
    with pytest.raises(SweepFileError) as caught:
        load_sweep(saved)
    assert caught.value.line() == f"{saved}: error: not a valid sweep: {message}"


def test_what_a_sweep_may_leave_out():
    """A link's diagnostic and the evidence are optional; in schema 1 also
    the target kernel, the corpus's partial and a diagnostic's severity."""
    import os
    import tempfile
    doc = set_at(set_at(SWEEP, ["evidence"], KeyError), ["links", 0, "diagnostic"], KeyError)
    old = set_at(set_at(set_at(set_at(set_at(doc, ["schema"], KeyError), ["target_kernel"],
                                      KeyError), ["target_assumed"], KeyError),
                        ["corpus", "partial"], KeyError), ["diagnostics", 0, "severity"], KeyError)
    with tempfile.TemporaryDirectory() as folder:
        for d in (doc, old):
            path = os.path.join(folder, "s.json")
            with open(path, "w") as f:
                json.dump(d, f)
            sweep = load_sweep(path)
            assert sweep.links[0].diagnostic is None and sweep.evidence == ()
    assert sweep.schema == 1 and sweep.target_kernel is None
    assert sweep.diagnostics[0].severity == "warning"


def test_a_sweep_missing_a_field_of_schema_2_says_so(tmp_path):
    saved = tmp_path / "s.json"
    for path, field, where in ((["target_kernel"], "target_kernel", "sweep"),
                               (["corpus", "partial"], "partial", "corpus"),
                               (["diagnostics", 0, "severity"], "severity", "diagnostics[0]")):
        saved.write_text(json.dumps(set_at(SWEEP, path, KeyError)))
        with pytest.raises(SweepFileError) as caught:
            load_sweep(saved)
        assert caught.value.message == f"not a valid sweep: {where} has no {field!r}"


VERSIONS = len(HISTORY["versions"])
ROW = f"a list of {VERSIONS} of"
HISTORY_CASES = [
    (["versions"], "x", "versions is not a list of strings"),
    (["versions"], [1, 2, 3], "versions is not a list of strings"),
    (["target_kernels"], ["7.2"], f"target_kernels is not a list of {VERSIONS} strings or nulls"),
    (["target_kernels"], [1] * VERSIONS, "target_kernels[0] is not a string or null"),
    (["rules"], ["walk-or-device"], f"rules is not a list of {VERSIONS} rules or nulls"),
    (["rules"], ["x"] * VERSIONS, f"rules[0] is not {RULES}, null"),
    (["socs", 0, "verdicts"], ["affected"], f"socs[0].verdicts is not {ROW} affected, "
                                            f"unaffected, null"),
    (["socs", 0, "verdicts"], ["maybe"] * VERSIONS, f"socs[0].verdicts is not {ROW} affected, "
                                                    f"unaffected, null"),
    # one verdict more than there are versions: a row is exactly one per version
    (["socs", 0, "verdicts"], ["affected"] * (VERSIONS + 1), f"socs[0].verdicts is not {ROW} "
                                                             f"affected, unaffected, null"),
    # a key of the document itself is missing: the document is named, as a whole
    (["socs"], KeyError, "document has no 'socs'"),
    (["socs", 0, "smmu"], ["x"] * VERSIONS, f"socs[0].smmu is not {ROW} coherent, "
                                            f"non-coherent, mixed, null"),
    (["socs", 0, "soc"], 1, "socs[0].soc is not a string or null"),
    (["socs", 0, "changes", 0, "what"], "x", "socs[0].changes[0].what is not one of smmu, "
                                             "verdict"),
    (["socs", 0, "changes", 0, "version"], 1, "socs[0].changes[0].version is not a string"),
    (["socs", 0, "changes", 0, "old"], KeyError, "socs[0].changes[0] has no 'old'"),
    (["socs", 0, "changes", 0, "new"], None, "socs[0].changes[0].new is not a string"),
]


@pytest.mark.parametrize("path, value, message", HISTORY_CASES,
                         ids=[f"{'.'.join(map(str, c[0]))}-{k}" for k, c in
                              enumerate(HISTORY_CASES)])
def test_a_saved_history_names_the_field_that_is_wrong(tmp_path, path, value, message):
    saved = tmp_path / "h.json"
    saved.write_text(json.dumps(set_at(HISTORY, path, value)))
    with pytest.raises(SweepFileError) as caught:
        load_history(saved)
    assert caught.value.line() == f"{saved}: error: not a valid history document: {message}"


def test_a_saved_history_reads_back_with_its_changes(tmp_path):
    saved = tmp_path / "h.json"
    saved.write_text(json.dumps(HISTORY))
    history = load_history(saved)
    assert [r.name for r in history.revisions] == HISTORY["versions"]
    (fine,) = [s for s in history.socs if s.soc == "acme,fine"]
    assert [(c.version, c.what, c.old, c.new) for c in fine.changes] == [
        tuple(c.values()) for c in HISTORY["socs"][0]["changes"]]
