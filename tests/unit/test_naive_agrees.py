"""The numba kernels (kernels.evaluate) and the plain pylibfdt reference
(bench/naive_rule.py) find the same links with the same verdicts: on every
DTS snippet of test_rule.py, on corner cases of the kernel code, and on real
boards, under each modelled target kernel (TARGETS: one on each side of
every change of SPEC 1.1); on every snippet of test_kernel_decisions.py
under the target and binding its test names; and on one IOMMU of every
compatible either reading's driver tables know.  The two keep their own
tables of versions and drivers, so a mistake in one shows.  Links are compared as multisets of (dtb,
provider_path, master_path, link, master_kind, verdict).
"""
import inspect
import itertools
from collections import Counter
from pathlib import Path

import pytest

import snippets
import test_kernel_decisions
import test_rule
from bench.naive_rule import DRIVER_TABLE, RULES, sweep_dtb
from corpus.flat import flatten
from kernels.evaluate import evaluate
from kernels.providers import COMPATIBLES
from kernels.codes import Rule
from kernels.judging import Judging
from kernels.target import TargetKernel

KEY = ("dtb", "provider_path", "master_path", "link", "master_kind", "verdict")
# One version on each side of every change of SPEC 1.1.
TARGETS = ("5.10", "5.19", "6.1", "6.1.7", "6.5", "6.12", "7.2")


def kernel_links(flat, target, rule, legacy_dt_bindings):
    doc = snippets.document(evaluate(flat, target, Judging(rule=Rule(rule) if rule else None,
                                                           legacy_dt_bindings=legacy_dt_bindings)))
    return Counter(tuple(r[k] for k in KEY) for r in doc["links"])


def naive_links(flat, target, rule, legacy_dt_bindings):
    out = Counter()
    for name in flat.paths:
        for r in sweep_dtb(Path(flat.root) / name, rule, legacy_dt_bindings, dtb=name,
                           target=target):
            out[tuple(r[k] for k in KEY)] += 1
    return out


def assert_agree(flat, target, rule=None, legacy_dt_bindings=True):
    """Both versions over the DTBs of `flat`; returns the number of links."""
    target = TargetKernel.parse(target)
    kernels = kernel_links(flat, target, rule, legacy_dt_bindings)
    naive = naive_links(flat, target, rule, legacy_dt_bindings)
    only_kernels = sorted(kernels - naive, key=str)
    only_naive = sorted(naive - kernels, key=str)
    assert not only_kernels and not only_naive, (
        f"target {target}, rule {rule or target.rule}, legacy_dt_bindings={legacy_dt_bindings}:\n"
        + "".join(f"  kernels only: {x}\n" for x in only_kernels[:20])
        + "".join(f"  naive only:   {x}\n" for x in only_naive[:20]))
    return sum(kernels.values())


def assert_snippet_agrees(tmp_path, name, body, force=False):
    """One snippet under every target (its own rule), with and without the
    legacy binding, and under every explicit rule of the newest target."""
    dtb = snippets.compile_dts(tmp_path, name, body, force=force)
    flat = flatten([dtb], dtb.parent, cache=False)
    counts = [assert_agree(flat, target, None, legacy)
              for target, legacy in itertools.product(TARGETS, (True, False))]
    counts += [assert_agree(flat, "7.2", rule) for rule in RULES]
    assert max(counts) > 0, f"{name}: no links at all, nothing compared"


# -- (a) every snippet of test_rule.py -----------------------------------------

# test_rule.py tests that build their DTBs themselves: compared below.
NOT_SNIPPETS = {"test_link_explosion_is_bounded"}


# test_kernel_decisions.py tests that sweep no snippet through sweep_dts:
# the boards of the first are compared below, the others run the CLI.
NOT_DECISION_SNIPPETS = {"test_each_board_of_a_sweep_is_judged_alone",
                         "test_explain_shows_the_dma_parent_walk",
                         "test_explain_says_why_not_coherent"}


def _rule_tests(module=test_rule, skip=NOT_SNIPPETS):
    """Every test of `module` with each of its parametrize values."""
    for name, test in inspect.getmembers(module, inspect.isfunction):
        if not name.startswith("test_") or name in skip:
            continue
        marks = [m for m in getattr(test, "pytestmark", []) if m.name == "parametrize"]
        grids = []
        for m in marks:
            names = [n.strip() for n in m.args[0].split(",")] if isinstance(m.args[0], str) \
                else list(m.args[0])
            grids.append([dict(zip(names, v if len(names) > 1 else (v,))) for v in m.args[1]])
        for i, combo in enumerate(itertools.product(*grids)):
            kwargs = {k: v for d in combo for k, v in d.items()}
            yield pytest.param(test, kwargs, id=f"{name}[{i}]" if grids else name)


@pytest.mark.parametrize("test, kwargs", list(_rule_tests()))
def test_rule_snippets_agree(tmp_path, monkeypatch, test, kwargs):
    """Run the test_rule.py test, keeping every DTS body it sweeps, then
    compare both versions on each body."""
    bodies = []

    def recording_sweep_dts(tmp_path, body, *args, force=False, **kwargs):
        bodies.append((body, force))
        return snippets.sweep_dts(tmp_path, body, *args, force=force, **kwargs)

    monkeypatch.setattr(test_rule, "sweep_dts", recording_sweep_dts)
    (tmp_path / "rule").mkdir()
    try:
        test(tmp_path=tmp_path / "rule", **kwargs)
    except AssertionError:
        pass            # test_rule.py reports its own assertions; only the bodies matter here
    assert bodies, f"{test.__name__} swept no snippet"
    (tmp_path / "agree").mkdir()
    for i, (body, force) in enumerate(dict.fromkeys(bodies)):
        assert_snippet_agrees(tmp_path / "agree", f"snippet{i}", body, force)


@pytest.mark.parametrize("test, kwargs", list(_rule_tests(test_kernel_decisions,
                                                         NOT_DECISION_SNIPPETS)))
def test_decision_snippets_agree(tmp_path, monkeypatch, test, kwargs):
    """Each test_kernel_decisions.py snippet under the target, rule and
    binding its test sweeps it with (one sweep each: the file has many)."""
    calls = []

    def recording_sweep_dts(tmp_path, body, rule=None, legacy_dt_bindings=True,
                            target=snippets.DEFAULT_TARGET, force=False):
        calls.append((body, rule, legacy_dt_bindings, target, force))
        return snippets.sweep_dts(tmp_path, body, rule=rule, legacy_dt_bindings=legacy_dt_bindings,
                                  target=target, force=force)

    monkeypatch.setattr(test_kernel_decisions, "sweep_dts", recording_sweep_dts)
    (tmp_path / "rule").mkdir()
    test(tmp_path=tmp_path / "rule", **kwargs)
    assert calls, f"{test.__name__} swept no snippet"
    (tmp_path / "agree").mkdir()
    for i, (body, rule, legacy, target, force) in enumerate(dict.fromkeys(calls)):
        dtb = snippets.compile_dts(tmp_path / "agree", f"snippet{i}", body, force=force)
        flat = flatten([dtb], dtb.parent, cache=False)
        assert_agree(flat, target, rule, legacy)


def test_boards_of_one_sweep_agree(tmp_path):
    """test_kernel_decisions.ALONE_CASES, all in one sweep, under every target."""
    dtbs = [snippets.compile_dts(tmp_path, f"b{i}", body)
            for i, body in enumerate(test_kernel_decisions.ALONE_CASES)]
    flat = flatten(dtbs, tmp_path, cache=False)
    for target, legacy in itertools.product(TARGETS, (True, False)):
        assert_agree(flat, target, None, legacy)


def test_every_known_compatible_agrees(tmp_path):
    """One IOMMU of each compatible that either reading's tables know, with a
    device behind it, under every target, with its rule and with no-check:
    the two driver tables agree on which driver binds it in which version."""
    names = sorted({c for _, _, compatibles, _ in COMPATIBLES for c in compatibles}
                   | {c for c, _, _, _ in DRIVER_TABLE})
    nodes = "".join(
        snippets.smmu(f'"{c}"', label=f"p{i}", unit=f"{i + 1:x}000")
        + f"\t\tdev@{i + 1:x} {{ compatible = \"test,dev\"; iommus = <&p{i} 1>; }};\n"
        for i, c in enumerate(names))
    dtb = snippets.compile_dts(tmp_path, "all", snippets.soc(nodes))
    flat = flatten([dtb], dtb.parent, cache=False)
    for target in TARGETS:
        assert assert_agree(flat, target) == len(names)
        # no-check: capable behind any IOMMU driver the version has, so a
        # driver present in one table and not the other shows in any version
        assert_agree(flat, target, "no-check")


# -- corner cases of the kernel code that test_rule.py does not pin ------------

HOST_BRIDGE = """
		pcie@40000000 {{
			compatible = "test,pcie"; device_type = "pci";
			#address-cells = <3>; #size-cells = <2>;
			reg = <0 0x40000000 0 0x1000>;
			iommu-map = <0 &smmu 0x100 0x200>;
			{inside}
		}};
"""
ROOT_PORT = ('pcie@0,0 {{ device_type = "pci"; reg = <0 0 0 0 0>;'
             " #address-cells = <3>; #size-cells = <2>; {inside} }};")


CORNER_CASES = [
    pytest.param(HOST_BRIDGE.format(inside="nic@0,0 { reg = <0 0 0 0 0>; dma-coherent; };"),
                 id="plain-host-bridge"),
    pytest.param(HOST_BRIDGE.format(inside=ROOT_PORT.format(
        inside="nic@0,0 { reg = <0x10000 0 0 0 0>; }; nic@0,1 { reg = <0x10100 0 0 0 0>; };")),
        id="two-functions-below-a-root-port"),
    pytest.param(HOST_BRIDGE.format(inside="iommus = <&smmu 0x5>;"), id="host-bridge-iommus"),
    pytest.param(HOST_BRIDGE.format(
        inside="multifunc-device@0 { nic@0,2 { reg = <0x200 0 0 0 0>; }; };"),
        id="multifunc-device-with-unit-address"),
    pytest.param(HOST_BRIDGE.format(inside=ROOT_PORT.format(
        inside="multifunc-device { nic@0,1 { reg = <0x10100 0 0 0 0>; }; };")),
        id="multifunc-device-below-a-root-port"),
    pytest.param(HOST_BRIDGE.format(inside=ROOT_PORT.format(
        inside="a@0,0 { reg = <0x10000 0 0 0 0>; }; b@0,0 { reg = <0x10000 0 0 0 0>; };")),
        id="same-devfn-twice-below-a-root-port"),
    pytest.param(test_rule.pcie(map="<0 &smmu 0 0 0x17>"), id="bad-length-map-with-empty-entry"),
]


@pytest.mark.parametrize("inside", CORNER_CASES)
def test_corner_cases_agree(tmp_path, inside):
    assert_snippet_agrees(tmp_path, "corner", snippets.soc(snippets.smmu(), inside))


def test_link_explosion_agrees(tmp_path):
    """Both drop the links of a DTB above the limit, and keep the others."""
    big = snippets.compile_dts(tmp_path, "big", test_rule.explosion(400, 256))
    small = snippets.compile_dts(tmp_path, "small", snippets.soc(snippets.smmu(),
                                                                 test_rule.PLAIN_DEV))
    flat = flatten([big, small], tmp_path, cache=False)
    assert assert_agree(flat, "6.12") == 1


# -- (b) real boards -------------------------------------------------------------

REAL = [
    pytest.param("linux-source-6.12", ["freescale/fsl-ls1028a-*", "nvidia/tegra234-*",
                                       "qcom/sm8250-*", "apple/*"], id="6.12-sample"),
    pytest.param("linux-source-6.1", ["freescale/fsl-ls1028a-*", "freescale/fsl-ls1088a-*"],
                 id="6.1-layerscape"),
    pytest.param("linux-source-6.12", ["nvidia/tegra186-p2771-0000.dtb"], id="6.12-tegra186"),
    pytest.param("sid/linux-source-7.2", ["qcom/sm8250-*", "qcom/qrb5165-rb5.dtb",
                                          "nvidia/tegra234-p3737-0000+p3701-0000.dtb"],
                 id="7.2-sample"),
    pytest.param("bullseye/linux-source-5.10", ["freescale/fsl-ls10*", "qcom/sdm845-*"],
                 id="5.10-sample"),
]


@pytest.mark.parametrize("debian, select", REAL)
def test_real_boards_agree(real_corpus_factory, debian, select):
    corpus = real_corpus_factory(debian, select)
    root = Path(corpus.root)
    flat = flatten([root / e.dtb for e in corpus.boards], root)
    assert not flat.errors()
    counts = {target: assert_agree(flat, target) for target in TARGETS}
    assert min(counts.values()) > 0, counts
