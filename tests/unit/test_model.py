"""auditor/model.py: the typed model, its JSON document, and load_sweep(),
the one validated way a saved sweep comes back (every other document is
refused with one line naming the file and the field)."""
import copy
import dataclasses
import json

import pytest

from auditor.model import (LINK_FIELDS, SCHEMA, BrokenMaster, CorpusInfo, Link, Links,
                           Provider, SocSummary, SweepFileError, link_json, load_sweep,
                           sweep_from_json)
from corpus.errors import UserError
from testpaths import GOLDEN



@pytest.fixture(scope="module")
def doc():
    return json.loads((GOLDEN / "snippets/sweep.json").read_text())


@pytest.fixture(scope="module")
def sweep():
    return load_sweep(GOLDEN / "snippets/sweep.json")


def test_round_trip(doc, sweep):
    assert sweep.to_json() == doc
    assert sweep_from_json(sweep.to_json()) == sweep
    assert list(doc) == ["tool", "schema", "rule", "target_kernel", "target_assumed",
                         "legacy_dt_bindings", "corpus", "links", "socs", "diagnostics",
                         "evidence"]
    assert (sweep.tool, sweep.schema) == ("dtb-audit", SCHEMA) and SCHEMA == 2


def test_typed_fields(sweep):
    link = sweep.links[0]
    assert isinstance(link, Link) and isinstance(link.provider_compatible, tuple)
    s = sweep.socs[0]
    assert isinstance(s, SocSummary) and isinstance(s.boards, tuple)
    assert isinstance(s.providers[0], Provider) and isinstance(s.broken_masters[0], BrokenMaster)
    assert isinstance(sweep.corpus, CorpusInfo)
    with pytest.raises(dataclasses.FrozenInstanceError):
        sweep.rule = "walk-only"


def test_link_json_fields(sweep):
    (link,) = [l for l in sweep.links if l.dtb == "mc-rdb.dtb"]
    link = link._replace(diagnostic="x")
    assert list(link_json(link)) == list(Link._fields)
    assert link_json(link)["diagnostic"] == "x"
    assert list(link_json(link, with_diagnostic=False)) == list(LINK_FIELDS)
    assert LINK_FIELDS == Link._fields[:-1] and LINK_FIELDS[-1] == "note"
    assert link_json(link)["provider_compatible"] == ["arm,mmu-500"]


def test_link_affected_and_key(sweep):
    by = {(l.dtb, l.master_path): l for l in sweep.links}
    broken = by[("plat-evk.dtb", "/soc/dma@1000")]
    assert broken.affected and broken.verdict == "broken"
    assert by[("mc-rdb.dtb", "/soc/fsl-mc@80c000000")].affected
    assert not by[("plat-evk.dtb", "/soc/crypto@2000")].affected      # rescued-by-device
    assert not broken._replace(vfio_candidate=False).affected
    assert broken.key == ("plat-evk.dtb", "/soc/iommu@5000000", "/soc/dma@1000", "iommus")


def test_provider_evidence_and_where(sweep):
    p = sweep.socs[0].providers[0]
    assert p.evidence and p.where is None
    assert dataclasses.replace(p, source_file="a.dtsi", source_line=7).where == "a.dtsi:7"
    assert not dataclasses.replace(p, verdict_counts={"broken": 3, "capable": 1}).evidence
    assert dataclasses.replace(p, verdict_counts={"rescued-by-device": 1}).evidence
    assert not dataclasses.replace(p, verdict_counts={"rescued-by-device": 0}).evidence


def test_sweep_name_and_affected(sweep):
    assert sweep.name == sweep.corpus.identity
    nameless = dataclasses.replace(sweep, corpus=dataclasses.replace(sweep.corpus, identity=None))
    assert nameless.name == sweep.corpus.root
    assert [s.soc for s in sweep.affected] == ["acme,mc", "acme,pci", "acme,plat",
                                              "evil\nsoc\x1b[31m"]


def test_schema_1_documents_still_read(doc):
    old = copy.deepcopy(doc)
    for key in ("schema", "target_kernel", "target_assumed"):
        del old[key]
    del old["corpus"]["partial"]
    for d in old["diagnostics"]:
        del d["severity"]
    s = sweep_from_json(old, "old.json")
    assert (s.schema, s.target_kernel, s.target_assumed, s.corpus.partial) == (1, None, False, False)
    assert {d.severity for d in s.diagnostics} == {"warning"}
    assert s.links == sweep_from_json(doc).links


def test_a_missing_diagnostic_key_reads_as_none(doc):
    changed = copy.deepcopy(doc)
    del changed["links"][0]["diagnostic"]
    assert sweep_from_json(changed).links[0].diagnostic is None


def _set(doc, path, value):
    """doc with the value at path (keys and indexes) replaced; DELETE removes it."""
    out = copy.deepcopy(doc)
    target = out
    for key in path[:-1]:
        target = target[key]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return out


DELETE = object()
VERDICTS = ("capable, rescued-by-device, broken, broken-bridge-coherent, no-iommu, "
            "unsupported-iommu, not-a-device")


@pytest.mark.parametrize("path, value, message", [
    (("tool",), "other", "not a dtb-audit sweep (write one with `dtb-audit sweep --format json`)"),
    (("kind",), "history", "a dtb-audit history document, not a sweep (write one with "
                           "`dtb-audit sweep --format json`)"),
    (("schema",), 3, "sweep schema 3 is not one this version reads (1 or 2): sweep again"),
    (("schema",), "2", "sweep schema '2' is not one this version reads (1 or 2): sweep again"),
    (("rule",), "sometimes", "not a valid sweep: sweep.rule is not one of walk-or-device, "
                             "walk-only, legacy-true, no-check"),
    (("target_kernel",), 6.1, "not a valid sweep: sweep.target_kernel is not a string or null"),
    (("target_assumed",), "yes", "not a valid sweep: sweep.target_assumed is not true or false"),
    (("legacy_dt_bindings",), DELETE, "not a valid sweep: sweep has no 'legacy_dt_bindings'"),
    (("corpus",), [], "not a valid sweep: sweep.corpus is not an object"),
    (("corpus", "root"), None, "not a valid sweep: corpus.root is not a string"),
    (("corpus", "identity"), 1, "not a valid sweep: corpus.identity is not a string or null"),
    (("corpus", "partial"), None, "not a valid sweep: corpus.partial is not true or false"),
    (("links",), {}, "not a valid sweep: sweep.links is not a list"),
    (("links", 2), "x", "not a valid sweep: links[2] is not an object"),
    (("links", 2, "verdict"), 7, f"not a valid sweep: links[2].verdict is not one of {VERDICTS}"),
    (("links", 2, "link"), "dma", "not a valid sweep: links[2].link is not one of iommus, "
                                  "iommu-map, mmu-masters"),
    (("links", 2, "master_kind"), "gpu", "not a valid sweep: links[2].master_kind is not one of "
                                         "platform, pci-dt-child, pci-discovered, fsl-mc, "
                                         "host1x-context, gpcdma-channel, cdx"),
    (("links", 2, "master_dma_attr"), None, "not a valid sweep: links[2].master_dma_attr is not "
                                            "one of coherent, non-coherent, not-supported"),
    (("links", 2, "provider_compatible"), "arm,mmu-500",
     "not a valid sweep: links[2].provider_compatible is not a list"),
    (("links", 2, "provider_compatible"), [1],
     "not a valid sweep: links[2].provider_compatible is not a list of strings"),
    (("links", 2, "bridge_coherent"), 0, "not a valid sweep: links[2].bridge_coherent is not "
                                         "true, false or null"),
    (("links", 2, "dtb"), None, "not a valid sweep: links[2].dtb is not a string"),
    (("links", 2, "note"), DELETE, "not a valid sweep: links[2] has no 'note'"),
    (("socs", 0), None, "not a valid sweep: socs[0] is not an object"),
    (("socs", 0, "boards"), "x.dtb", "not a valid sweep: socs[0].boards is not a list"),
    (("socs", 0, "affected"), 1, "not a valid sweep: socs[0].affected is not true or false"),
    (("socs", 0, "verdict_counts"), {"broken": -1},
     "not a valid sweep: socs[0].verdict_counts is not verdict counts"),
    (("socs", 0, "verdict_counts"), {"fine": 1},
     "not a valid sweep: socs[0].verdict_counts is not verdict counts"),
    (("socs", 0, "verdict_counts"), {"broken": True},
     "not a valid sweep: socs[0].verdict_counts is not verdict counts"),
    (("socs", 0, "verdict_counts"), [], "not a valid sweep: socs[0].verdict_counts is not "
                                        "verdict counts"),
    (("socs", 0, "providers", 0), 5, "not a valid sweep: socs[0].providers[0] is not an object"),
    (("socs", 0, "providers", 0, "source_line"), 0,
     "not a valid sweep: socs[0].providers[0].source_line is not a line number"),
    (("socs", 0, "providers", 0, "source_line"), True,
     "not a valid sweep: socs[0].providers[0].source_line is not a line number"),
    (("socs", 0, "providers", 0, "source_line"), "27",
     "not a valid sweep: socs[0].providers[0].source_line is not a line number"),
    (("socs", 0, "providers", 0, "driver"), None,
     "not a valid sweep: socs[0].providers[0].driver is not a string"),
    (("socs", 0, "broken_masters", 0), [], "not a valid sweep: socs[0].broken_masters[0] is not "
                                           "an object"),
    (("socs", 0, "broken_masters", 0, "kind"), "gpu",
     "not a valid sweep: socs[0].broken_masters[0].kind is not one of platform, pci-dt-child, "
     "pci-discovered, fsl-mc, host1x-context, gpcdma-channel, cdx"),
    (("diagnostics", 1), "x", "not a valid sweep: diagnostics[1] is not an object"),
    (("diagnostics", 1, "severity"), "fatal", "not a valid sweep: diagnostics[1].severity is not "
                                              "one of warning, error"),
    (("diagnostics", 0, "message"), None, "not a valid sweep: diagnostics[0].message is not a string"),
    (("diagnostics", 0, "dtb"), 3, "not a valid sweep: diagnostics[0].dtb is not a string"),
    (("diagnostics", 0, "path"), 3, "not a valid sweep: diagnostics[0].path is not a string or null"),
    (("diagnostics",), {}, "not a valid sweep: sweep.diagnostics is not a list"),
    (("socs", 0, "providers", 0, "path"), None,
     "not a valid sweep: socs[0].providers[0].path is not a string"),
    (("socs", 0, "providers", 0, "label"), 1,
     "not a valid sweep: socs[0].providers[0].label is not a string or null"),
    (("socs", 0, "providers", 0, "compatible"), "arm,mmu-500",
     "not a valid sweep: socs[0].providers[0].compatible is not a list"),
    (("socs", 0, "providers", 0, "coherent"), None,
     "not a valid sweep: socs[0].providers[0].coherent is not true or false"),
    (("socs", 0, "providers", 0, "affected"), None,
     "not a valid sweep: socs[0].providers[0].affected is not true or false"),
    (("socs", 0, "providers", 0, "source_file"), 1,
     "not a valid sweep: socs[0].providers[0].source_file is not a string or null"),
    (("socs", 0, "providers", 0, "dtbs"), None,
     "not a valid sweep: socs[0].providers[0].dtbs is not a list"),
    (("socs", 0, "providers", 0, "verdict_counts"), DELETE,
     "not a valid sweep: socs[0].providers[0] has no 'verdict_counts'"),
    (("socs", 0, "broken_masters", 0, "path"), 1,
     "not a valid sweep: socs[0].broken_masters[0].path is not a string or null"),
])
def test_every_field_is_checked(doc, path, value, message):
    with pytest.raises(SweepFileError) as why:
        sweep_from_json(_set(doc, path, value), "s.json")
    assert str(why.value) == f"s.json: error: {message}"


@pytest.mark.parametrize("line", [1, 27])
def test_a_valid_line_number_is_kept(doc, line):
    s = sweep_from_json(_set(doc, ("socs", 0, "providers", 0, "source_line"), line))
    assert s.socs[0].providers[0].source_line == line


def test_zero_counts_are_counts(doc):
    s = sweep_from_json(_set(doc, ("socs", 0, "verdict_counts"), {"broken": 0, "capable": 2}))
    assert s.socs[0].verdict_counts == {"broken": 0, "capable": 2}


@pytest.mark.parametrize("value, kind", [([], "a list"), (None, "null"), ("x", "a string"),
                                         (True, "a boolean"), (3, "a number")])
def test_not_an_object(value, kind):
    with pytest.raises(SweepFileError) as why:
        sweep_from_json(value, "x.json")
    assert str(why.value) == f"x.json: error: not a dtb-audit sweep (the JSON is {kind}, not an object)"


def test_load_sweep_errors_name_the_file(tmp_path):
    assert issubclass(SweepFileError, UserError)
    missing = tmp_path / "missing.json"
    with pytest.raises(SweepFileError) as why:
        load_sweep(missing)
    assert str(why.value) == f"{missing}: error: cannot read: No such file or directory"
    with pytest.raises(SweepFileError) as why:
        load_sweep(tmp_path)
    assert str(why.value) == (f"{tmp_path}: error: cannot read: {tmp_path.name} is a folder, "
                              f"not a regular file")
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"tool": "dtb-audit \xe9"}')
    with pytest.raises(SweepFileError) as why:
        load_sweep(latin)
    assert str(why.value) == f"{latin}: error: not a saved sweep (not UTF-8 text: invalid continuation byte)"
    bad = tmp_path / "bad.json"
    bad.write_text('{"tool": ')
    with pytest.raises(SweepFileError) as why:
        load_sweep(str(bad))
    assert str(why.value) == (f"{bad}: error: not a saved sweep (not JSON: Expecting value: "
                              "line 1 column 10 (char 9))")


# Every field, wrong: the message names the record and the field.
FIELDS = (
    [(("links", 2, key), f"links[2].{key}") for key in Link._fields]
    + [(("socs", 0, key), f"socs[0].{key}") for key in
       ("soc", "affected", "passthrough", "boards", "affected_boards", "providers",
        "broken_masters", "verdict_counts")]
    + [(("socs", 0, "providers", 0, key), f"socs[0].providers[0].{key}") for key in
       ("path", "label", "compatible", "driver", "coherent", "affected", "source_file",
        "source_line", "dtbs", "verdict_counts")]
    + [(("socs", 0, "broken_masters", 0, key), f"socs[0].broken_masters[0].{key}")
       for key in ("path", "kind", "verdict", "dtbs")]
    + [(("diagnostics", 0, key), f"diagnostics[0].{key}")
       for key in ("dtb", "path", "message", "severity")]
    + [(("corpus", key), f"corpus.{key}") for key in ("root", "identity", "kernel_dir", "partial")]
    + [((key,), f"sweep.{key}") for key in ("rule", "target_kernel", "target_assumed",
                                            "legacy_dt_bindings", "links", "socs", "diagnostics")])


@pytest.mark.parametrize("path, where", FIELDS, ids=[w for _, w in FIELDS])
def test_a_wrong_field_is_named(doc, path, where):
    with pytest.raises(SweepFileError) as why:
        sweep_from_json(_set(doc, path, {"not": "this"}), "s.json")
    assert str(why.value).startswith(f"s.json: error: not a valid sweep: {where} is not ")


MISSING = [(("links", 2, "dtb"), "links[2]"), (("links", 2, "bridge_coherent"), "links[2]"),
           (("links", 2, "verdict"), "links[2]"), (("socs",), "sweep"), (("corpus",), "sweep"),
           (("socs", 0, "providers", 0, "verdict_counts"), "socs[0].providers[0]"),
           (("diagnostics", 0, "message"), "diagnostics[0]")]


@pytest.mark.parametrize("path, where", MISSING, ids=[".".join(map(str, p)) for p, _ in MISSING])
def test_a_missing_field_is_named(doc, path, where):
    with pytest.raises(SweepFileError) as why:
        sweep_from_json(_set(doc, path, DELETE), "s.json")
    assert str(why.value) == f"s.json: error: not a valid sweep: {where} has no {path[-1]!r}"


# -- what the kernels said, as Link records ---------------------------------------------------

def test_links_carry_the_bridge_coherency_notes_and_reasons_the_kernels_gave(tmp_path):
    """build_sweep from one snippet: a non-coherent PCIe host bridge whose map
    misses one requester ID, under 6.12 and under 5.15 (a target note)."""
    from auditor.sweep import build_sweep
    from snippets import compile_dts, evaluate_dtb, smmu, soc
    from test_rule import BRIDGE, pcie
    dtb = compile_dts(tmp_path, "board", soc(smmu(), pcie(extra="")))
    links = {l.master_path: l for l in build_sweep(evaluate_dtb(dtb, "6.12")).links}
    assert (links[BRIDGE].bridge_coherent, links[BRIDGE].driver) == (False, "arm-smmu")
    assert links[BRIDGE + "/rcec@1f,0"].note == "requester ID 0x00f8 is in no iommu-map entry"
    old = {l.master_path: l for l in build_sweep(evaluate_dtb(dtb, "5.15")).links}
    assert old[BRIDGE].note == (
        "VFIO does not ask for IOMMU_CAP_CACHE_COHERENCY before v5.19 (e8ae0e140c05): "
        "no device is refused for coherency")


@pytest.mark.parametrize("source_file, source_line, where", [
    ("arch/arm64/boot/dts/acme/a.dtsi", 12, "arch/arm64/boot/dts/acme/a.dtsi:12"),
    ("arch/arm64/boot/dts/acme/a.dtsi", None, "arch/arm64/boot/dts/acme/a.dtsi"),
    (None, None, None)])
def test_where_an_smmu_is_written_names_no_line_it_does_not_know(source_file, source_line,
                                                                 where):
    """A saved sweep may record a file without a line (docs/formats.md):
    the reports and the site then name the file, never "FILE:None"."""
    p = Provider(path="/soc/iommu@5000000", label=None, compatible=("arm,mmu-500",),
                 driver="arm-smmu", coherent=False, affected=True, source_file=source_file,
                 source_line=source_line, dtbs=("a.dtb",), verdict_counts={})
    assert p.where == where


def test_links_slice_as_a_sequence():
    """Links is a Sequence (collections.abc): a slice is a sequence of the
    links it spans, in order, across the DTBs."""
    rest = len(Link._fields) - 3
    links = Links([("a.dtb", "a", "acme,a", [[f"a{k}"] * rest for k in range(2)]),
                   ("b.dtb", "b", "acme,b", [["b0"] * rest])])
    every = list(links)
    assert [link.provider_path for link in every] == ["a0", "a1", "b0"]
    assert list(links[1:]) == every[1:] and list(links[:-1]) == every[:-1]
    assert list(links[::-1]) == every[::-1] and list(links[5:]) == []
