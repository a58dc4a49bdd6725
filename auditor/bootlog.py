"""`dtb-audit bootlog`: what kernel boot logs say of each SMMU's register,
against what the corpus's DT says.

A boot log carries the word of the SMMU's ID register (IDR0.CTTW for
arm-smmu, IDR0.COHACC for arm-smmu-v3) in the lines the drivers print at
probe; docs/bootlog.md quotes them, from Debian's 6.1, 6.12 and 7.2
sources (identical in the three), and says what each combination reveals.
In short, with `fw` the DT the booted kernel read (of_dma_is_coherent) and
`reg` the register:

  arm-smmu     "\\t%scoherent table walk" when fw or reg ("" if fw, "non-"
               if not), then "\\t(IDR0.CTTW overridden by FW configuration)"
               when fw != reg; nothing when both are false.  Lines printed
               after that point ("\\tstream matching with ...", "\\t%u
               context banks ...") tell a log that went past it.
  arm-smmu-v3  "IDR0.COHACC overridden by FW configuration (%s)" with fw
               when fw != reg; the closing "... oas %lu-bit (features
               0x%08x)" line tells a log that went past it.  When they
               agree the log says nothing of fw, so the register is known
               only by taking the corpus's DT as the booted one (same X.Y).

Logs are read as people keep them: dmesg with or without timestamps,
journalctl -k, serial captures with console prefixes and CRLF, LAVA and
KernelCI logs (the messages found wherever they sit on a line), gzip.
Each file is read once and scanned with bytes.find for a few fixed words,
so thousands of logs take seconds.  Text from logs is shown through
text.shown() in the table; JSON escapes by its own rules.
"""
from __future__ import annotations

import bisect
import json
import os
import re
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from corpus.errors import UserError
from kernels import codes
from store.kept import open_regular

from .settled import settled_for
from .text import shown

SCHEMA = 1
FINDINGS = ("agree", "dt-lacks-coherent", "dt-overrides-hw", "known-noncoherent", "no-node",
            "unknown")


class LogError(UserError):
    """A log that cannot be used."""


class _OtherBoard(LogError):
    """A log of a board the corpus lacks."""


# -- reading one log ---------------------------------------------------------------

@dataclass
class SmmuLog:
    """What one boot's log says of one SMMU device."""
    device: str
    driver: str                   # "arm-smmu" or "arm-smmu-v3"
    probing: bool = False         # arm-smmu: "probing hardware configuration..."
    fw: bool | None = None        # the booted DT's coherency, when the log says it
    override: bool = False        # the register disagreed with the booted DT
    past: bool = False            # the log went past the coherency lines
    failed: str | None = None     # arm-smmu: the probe stopped before them (its message)

    @property
    def booted(self) -> bool | None:
        """The booted DT's coherency (cttw_fw, `coherent`), when the log tells it."""
        if self.driver == "arm-smmu" and self.fw is None and self.past:
            return False
        return self.fw

    @property
    def register(self) -> bool | None:
        """The register's word, when the log alone tells it."""
        if self.driver == "arm-smmu":
            if self.fw is not None and (self.override or self.past):
                return self.fw != self.override
            if self.fw is None and self.past:
                return False          # neither the DT nor the register: nothing printed
            return None
        if self.override:
            return not self.fw
        return None


@dataclass
class Boot:
    """One boot of a log: its banner, model and SMMUs."""
    log: str
    boot: int                     # 1-based, in the order of the file
    model: str | None = None
    kernel: str | None = None     # UTS_RELEASE: "6.12.117-arm64", "6.1.0-28-arm64"
    version: str | None = None    # "6.12.117": Debian's own in UTS_VERSION, else the release's
    smmus: dict = field(default_factory=dict)   # device -> SmmuLog, in order of appearance


_BANNER = b"Linux version "
_MODEL = b"Machine model: "
_SMMU = b"arm-smmu"
# "arm-smmu 15000000.iommu: msg", "arm-smmu-v3 2b400000.iommu: msg" (dev_printk's prefix).
_SMMU_LINE = re.compile(r"arm-smmu(-v3)? (\S+): (.*)")
# A tab at the start of a message, as a log may keep it: itself, spaces, "\t", "^I".
_LEAD = re.compile(r"^(?:\s|\\t|\^I)+")
_RELEASE = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")
# UTS_VERSION ("#1 SMP Debian 6.1.119-1 (2024-11-22)"), after the compiler's own
# "(Debian 14.2.0-19)".
_DEBIAN = re.compile(r"#\d+[^#]*? Debian (\d+\.\d+(?:\.\d+)?)")
_OAS = re.compile(r"oas \d+-bit \(features 0x")
_COHACC = "IDR0.COHACC overridden by FW configuration ("
# arm-smmu messages printed after the coherency lines of arm_smmu_device_cfg_probe().
_PAST_CTTW = ("stream matching with ", "Supported page sizes:", "Stage-1: ", "Stage-2: ",
              "preserved ")
_BANKS = re.compile(r"\d+ context banks \(")        # "\t%u context banks (%u stage-2 only)"
_CFG_ERRORS = ("no translation support!", "stream-matching supported, but no SMRs present!")

# Another architecture's boot, when no arm64 word is there: (marker, architecture).
_FOREIGN = ((b"BIOS-e820", "x86"), (b"x86/fpu", "x86"), (b"x86/cpu", "x86"),
            (b"CPU: ARMv", "32-bit arm"), (b"riscv: ", "riscv"), (b"SBI specification", "riscv"),
            (b"PowerPC", "powerpc"))
_ARM64 = (b"CPU features: ", b"arm64", b"aarch64", b"AArch64")
_ARM64_BOOT = re.compile(rb"Booting Linux on physical CPU 0x[0-9a-f]{10} ")


def read_bytes(path) -> tuple[bytes, str | None]:
    """The log's bytes (gzip undone) and a warning when it is truncated."""
    try:
        with open_regular(path) as f:    # a FIFO or a device is refused, not read
            data = f.read()
    except OSError as why:
        raise LogError(shown(path), f"cannot read: {why.strerror or why}") from None
    if data[:2] != b"\x1f\x8b":
        return data, None
    inflate = zlib.decompressobj(wbits=31)
    try:
        out = inflate.decompress(data) + inflate.flush()
    except zlib.error as why:
        raise LogError(shown(path), f"not a readable gzip file ({why})") from None
    if not inflate.eof:
        return out, "truncated: its gzip stream ends early"
    return out, None


def _lines(data, word, start=0):
    """(offset, the text after `word` to the end of its line) of each occurrence."""
    n = len(word)
    find = data.find
    at = find(word, start)
    while at >= 0:
        end = find(b"\n", at)
        if end < 0:
            end = len(data)
        # latin-1: one character per byte, as DTB strings are read (flat.py).
        text = data[at + n:end].decode("latin-1").replace("\r", "").rstrip()
        if _LAVA in data[data.rfind(b"\n", 0, at) + 1:at]:
            text = _lava_message(text)
        yield at, text
        at = find(word, end)


# LAVA's YAML logs (KernelCI keeps them): `- {"dt": ..., "lvl": "target", "msg": "..."}`,
# the console line a JSON string.
_LAVA = b'"msg": "'


def _lava_message(tail):
    """The rest of a LAVA record's message from `tail` (its JSON string's end)."""
    body = tail.removesuffix("}").rstrip().removesuffix('"')
    try:
        return json.loads('"' + body + '"')
    except ValueError:
        return body


def architecture(data) -> str | None:
    """The other architecture a log is of; None for arm64 or when it cannot tell."""
    if _ARM64_BOOT.search(data) or any(w in data for w in _ARM64):
        return None
    for marker, arch in _FOREIGN:
        if marker in data:
            return arch
    return None


def parse(name, data) -> list[Boot]:
    """The boots of one log's bytes."""
    banners = [at for at, _ in _lines(data, _BANNER)]
    boots = [Boot(name, k + 1) for k in range(len(banners) + 1)]

    def boot_at(at):
        return boots[bisect.bisect_right(banners, at)]

    for at, text in _lines(data, _BANNER):
        b = boot_at(at)
        b.kernel = text.split(" ", 1)[0] or None
        debian = _DEBIAN.search(text)
        release = _RELEASE.match(b.kernel or "")
        b.version = debian.group(1) if debian else (release.group(0) if release else None)
    for at, text in _lines(data, _MODEL):
        b = boot_at(at)
        if b.model is None:
            b.model = text.strip()
    for at, text in _lines(data, _SMMU):
        m = _SMMU_LINE.match("arm-smmu" + text)
        if m is None:
            continue
        driver = "arm-smmu-v3" if m.group(1) else "arm-smmu"
        smmus = boot_at(at).smmus
        s = smmus.get(m.group(2))
        if s is None:
            s = smmus[m.group(2)] = SmmuLog(m.group(2), driver)
        _read_message(s, _LEAD.sub("", m.group(3)))
    # Text before the first banner is a boot whose banner was lost (a ring
    # buffer that wrapped); kept only when it says something.
    if boots[0].model is None and not boots[0].smmus and len(boots) > 1:
        boots = boots[1:]
    for k, b in enumerate(boots):
        b.boot = k + 1
    return boots


def _read_message(s, message):
    if s.driver == "arm-smmu":
        if message.startswith("probing hardware configuration"):
            s.probing = True
        elif message.startswith(("coherent table walk", "non-coherent table walk")):
            s.fw = not message.startswith("non-")
        elif message.startswith("(IDR0.CTTW overridden by FW configuration)"):
            s.override = True
        elif message.startswith(_PAST_CTTW) or _BANKS.match(message):
            s.past = True
        elif message.startswith(_CFG_ERRORS):
            s.failed = message
        elif s.fw is not None:
            s.past = True             # any later line: the override line was not printed
    else:
        if message.startswith(_COHACC):
            s.fw = message[len(_COHACC):].startswith("true")
            s.override = True
        elif _OAS.search(message):
            s.past = True


# -- the corpus's boards -------------------------------------------------------------

@dataclass(frozen=True)
class SmmuNode:
    path: str
    name: str                     # "iommu@15000000"
    label: str | None
    driver: str
    coherent: bool


class Boards:
    """The boards of a judged corpus: by the name the kernel prints for them
    (`model`, else the first root `compatible`: of_flat_dt_get_machine_name),
    with their SMMU nodes."""

    def __init__(self, flat, ev, corpus=None):
        from .sweep import NodeText
        self.flat, self.ev, self.corpus = flat, ev, corpus
        self.text = NodeText(flat)
        self.by_model = defaultdict(list)
        self.compatibles = {}
        smmu = (ev.role == codes.ARM_SMMU) | (ev.role == codes.ARM_SMMU_V3)
        nodes = np.flatnonzero(smmu)
        self._smmu_nodes = defaultdict(list)
        for i, d in zip(nodes.tolist(), flat.node_dtb[nodes].tolist()):
            self._smmu_nodes[d].append(i)
        self._smmus = {}
        for d in range(flat.n_dtb):
            start, end = int(flat.dtb_node_start[d]), int(flat.dtb_node_start[d + 1])
            if start == end:
                continue
            compatible = flat.strings(start, "compatible")
            self.compatibles[d] = tuple(compatible)
            model = flat.strings(start, "model")
            name = model[0] if model else (compatible[0] if compatible else None)
            if name is not None:
                self.by_model[name.strip()].append(d)

    @property
    def version(self) -> str | None:
        return getattr(self.corpus, "kernel_version", None)

    def dtb(self, d) -> str:
        return self.flat.paths[d]

    def soc(self, d) -> str | None:
        c = self.compatibles.get(d)
        return c[-1] if c else None

    def find(self, name) -> int | None:
        """A board by DTB path or name (as `explain` takes it)."""
        wanted = name.removesuffix(".dtb")
        for d, path in enumerate(self.flat.paths):
            if path.removesuffix(".dtb") == wanted or Path(path).stem == wanted:
                return d
        return None

    def smmus(self, d) -> list:
        got = self._smmus.get(d)
        if got is None:
            nodes = self._smmu_nodes.get(d, [])
            labels = self.text.labels(d, nodes) if nodes else {}
            got = self._smmus[d] = [
                SmmuNode(self.text.path(i), self.text.name(i), labels.get(i),
                         codes.DRIVER_NAMES[int(self.ev.role[i])], bool(self.ev.coherent[i]))
                for i in nodes]
        return got


def board_index(corpus, target):
    """Boards of a corpus.build.Corpus judged under `target` (a TargetKernel)."""
    from kernels.evaluate import evaluate

    from .sweep import flatten_corpus
    flat = flatten_corpus(corpus)
    return Boards(flat, evaluate(flat, target), corpus)


def with_boot_logs(sweep, corpus, logs, judging, problem, board=None):
    """The Sweep with the evidence of each SMMU classified again with what
    the boot logs under `logs` say of its register;
    problem(line) is told each log that cannot be used. board: (flat,
    Evaluation) of the one board `explain` judged (logs of other boards are
    then not news), else the boards of the whole corpus are judged."""
    from dataclasses import replace

    from .evidence import classify
    from .sweep import target_of
    if board is not None:
        boards = Boards(*board, corpus)
    else:
        boards = board_index(corpus, target_of(corpus, judging))
    doc = audit([logs], boards, problem=problem, others_quiet=board is not None)
    return replace(sweep, evidence=classify(sweep, doc))


# -- matching and findings -----------------------------------------------------------

# of_device_make_bus_id(): "%llx.%pOFn" (address, node name without unit),
# or "%llx.%x.%pOFn" when the node has a `mask`; a ":child" tail for nodes
# named through their parent.
_DEVICE = re.compile(r"^([0-9a-f]+)\.(?:[0-9a-f]+\.)?([^:@]+)$")


def node_for(device, nodes):
    """The SMMU node of `nodes` that the kernel names `device`, or None."""
    m = _DEVICE.match(device)
    if m is None:
        return None
    from .settled import unit_name
    wanted = unit_name(f"{m.group(2)}@{m.group(1)}")
    for n in nodes:
        if unit_name(n.name) == wanted:
            return n
    return None


def _major_minor(version):
    m = _RELEASE.match(version or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def classify(boot: Boot, boards: Boards, ds: list) -> list[dict]:
    """The records of a boot's SMMUs against board DTBs `ds` (the first
    decides; others that differ are named in the note)."""
    d = ds[0]
    nodes = boards.smmus(d)
    same_release = (_major_minor(boot.version) is not None
                    and _major_minor(boot.version) == _major_minor(boards.version))
    out = []
    for s in boot.smmus.values():
        node = node_for(s.device, nodes)
        hw = s.register
        notes = []
        record = {"device": s.device, "driver": s.driver, "node": node and node.path,
                  "label": node and node.label, "dt_coherent": node and node.coherent,
                  "log_dt_coherent": s.booted, "hw_coherent": hw}
        if node is None:
            record.update(finding="no-node", note=f"the board's DT has no SMMU node the kernel "
                                                  f"would name {s.device}")
            out.append(record)
            continue
        others = sorted({boards.dtb(e) for e in ds[1:]
                         for n in [node_for(s.device, boards.smmus(e))]
                         if n is None or n.coherent != node.coherent})
        if others:
            notes.append(f"differs on {', '.join(others)}")
        if hw is None and s.driver == "arm-smmu-v3" and s.past and not s.override:
            # v3 says nothing when the register agrees with the booted DT.
            if same_release:
                hw = record["log_dt_coherent"] = node.coherent
                notes.append("the register agrees with the booted DT, taken as this "
                             "corpus's (same release)")
            else:
                notes.append(f"the register agrees with the DT of {boot.version or 'another'}"
                             f", which this corpus may not be")
        elif hw is None:
            notes.append(s.failed and f"the probe stopped: {s.failed}"
                         or ("the log ends before the coherency lines" if s.probing
                             or s.driver == "arm-smmu-v3"
                             else "no probe lines for it in the log"))
        if s.booted is not None and s.booted != node.coherent:
            notes.append(f"the log's kernel booted a DT that says "
                         f"{'coherent' if s.booted else 'not coherent'}")
        record["hw_coherent"] = hw
        settled = settled_for(boards.compatibles.get(d, ()), node.name)
        if settled is not None and settled.verdict == "noncoherent":
            finding = "known-noncoherent"
            notes.insert(0, f"upstream: not coherent on every board, {settled.reference}")
        elif hw is None:
            finding = "unknown"
        elif hw == node.coherent:
            finding = "agree"
        else:
            finding = "dt-lacks-coherent" if hw else "dt-overrides-hw"
        if settled is not None and settled.verdict == "register-wrong":
            notes.insert(0, "upstream: the register is wrong here, the hardware coherent"
                            + (f" ({settled.reference})" if settled.commit else ""))
        elif settled is not None and settled.verdict == "coherent":
            notes.append(f"upstream: coherent, {settled.reference}")
        record.update(finding=finding, note="; ".join(notes) or None)
        out.append(record)
    return out


# -- many logs --------------------------------------------------------------------

def log_files(paths):
    """Every file of `paths` (files, and the files under folders, sorted)."""
    for p in paths:
        p = os.fspath(p)
        if os.path.isdir(p):
            for top, dirs, files in os.walk(p):
                dirs.sort()
                for f in sorted(files):
                    yield os.path.join(top, f)
        elif os.path.exists(p):
            yield p
        else:
            raise LogError(shown(p), "no such file or folder")


def audit(paths, boards: Boards, board=None, problem=lambda line: None,
          others_quiet=False) -> dict:
    """The bootlog document of the logs under `paths`; each log that cannot
    be used is one `problem(line)` and the others go on.  others_quiet: logs
    naming a board that `boards` lacks are passed over in silence (boards is
    one board of a bigger folder of logs)."""
    fixed = None
    if board is not None:
        fixed = boards.find(board)
        if fixed is None:
            raise LogError(None, f"--board {board}: no such board in {boards.flat.root}")
    logs = []
    for name in log_files(paths):
        try:
            logs += _one_log(name, boards, fixed, problem)
        except _OtherBoard as why:
            if not others_quiet:
                problem(why.line())
        except LogError as why:
            problem(why.line())
    return {"schema": SCHEMA, "tool": "dtb-audit", "kind": "bootlog",
            "corpus": getattr(boards.corpus, "identity", None) or boards.flat.root,
            "corpus_version": boards.version, "logs": logs, "socs": socs(logs)}


def _one_log(name, boards, fixed, problem):
    data, truncated = read_bytes(name)
    if not data.strip():
        raise LogError(shown(name), "empty log")
    arch = architecture(data)
    if arch is not None:
        raise LogError(shown(name), f"a boot log of another architecture ({arch}), not arm64")
    try:
        return _boots(name, data, boards, fixed, truncated, problem)
    except LogError:
        if truncated:       # what is left of it names nothing: say why
            raise LogError(shown(name), truncated) from None
        raise


def _boots(name, data, boards, fixed, truncated, problem):
    boots = parse(name, data)
    out = []
    for b in boots:
        if b.model is not None:
            ds = boards.by_model.get(b.model)
            if not ds:
                raise _OtherBoard(shown(name), f"names no board of this corpus "
                                               f"(Machine model: {shown(b.model)})")
        elif fixed is not None:
            ds = [fixed]
        else:
            raise LogError(shown(name), "names no board (no `Machine model:` line; "
                                        "give --board)")
        cut = [s.device for s in b.smmus.values()
               if s.register is None and not s.failed and not s.past and b is boots[-1]
               and (s.probing or s.fw is not None)]
        if cut and truncated is None:
            truncated = f"truncated: the log ends during the probe of {cut[0]}"
        out.append({"log": name, "boot": b.boot, "model": b.model, "kernel": b.kernel,
                    "version": b.version, "boards": [boards.dtb(d) for d in ds],
                    "soc": boards.soc(ds[0]), "smmus": classify(b, boards, ds)})
    if truncated:
        problem(f"{shown(name)}: warning: {truncated}")
    return out


def socs(logs) -> list[dict]:
    """Per SoC and SMMU: how many logs and boards said what."""
    groups = {}
    for log in logs:
        for s in log["smmus"]:
            key = (log["soc"], s["node"] or s["device"])
            g = groups.get(key)
            if g is None:
                g = groups[key] = {"soc": log["soc"], "node": s["node"], "device": s["device"],
                                   "label": s["label"], "dt_coherent": set(), "logs": 0,
                                   "boards": set(), "register": defaultdict(lambda: [0, set()]),
                                   "findings": Counter(), "kernels": set()}
            g["logs"] += 1
            g["boards"].update(log["boards"])
            g["dt_coherent"].add(s["dt_coherent"])
            said = {True: "coherent", False: "non-coherent"}.get(s["hw_coherent"], "unknown")
            g["register"][said][0] += 1
            g["register"][said][1].update(log["boards"])
            g["findings"][s["finding"]] += 1
            if log["kernel"]:
                g["kernels"].add(log["kernel"])
    out = []
    for g in groups.values():
        dt = g["dt_coherent"]
        out.append({
            "soc": g["soc"], "node": g["node"], "device": g["device"], "label": g["label"],
            "dt_coherent": dt.pop() if len(dt) == 1 else None,
            "logs": g["logs"], "boards": sorted(g["boards"]), "kernels": sorted(g["kernels"]),
            "register": {k: {"logs": n, "boards": sorted(b)}
                         for k, (n, b) in sorted(g["register"].items())},
            "findings": dict(sorted(g["findings"].items()))})
    out.sort(key=lambda s: (s["soc"] or "", s["node"] or s["device"]))
    return out


# -- output ------------------------------------------------------------------------

def _yes(value, yes="coherent", no="not coherent"):
    return "?" if value is None else (yes if value else no)


def format_table(doc) -> str:
    lines = [f"bootlog: {len(doc['logs'])} boots read against {shown(doc['corpus'])}"]
    for log in doc["logs"]:
        lines.append("")
        lines.append(f"{shown(log['log'])}" + (f" (boot {log['boot']})" if log["boot"] > 1
                                               else ""))
        lines.append(f"  model    {shown(log['model']) if log['model'] else '(none: --board)'}")
        lines.append(f"  kernel   {shown(log['kernel']) if log['kernel'] else '?'}")
        lines.append(f"  boards   {', '.join(shown(b) for b in log['boards'])}")
        if not log["smmus"]:
            lines.append("  (no SMMU probe lines)")
        for s in log["smmus"]:
            where = shown(s["node"]) if s["node"] else "no node"
            label = f" ({shown(s['label'])})" if s["label"] else ""
            lines.append(f"  {shown(s['device'])}  {where}{label}: DT {_yes(s['dt_coherent'])}, "
                         f"register {_yes(s['hw_coherent'])}: {s['finding'].upper()}")
            if s["note"]:
                lines.append(f"      {shown(s['note'])}")
    if doc["socs"]:
        lines += ["", "socs"]
    for g in doc["socs"]:
        said = ", ".join(f"{k} in {v['logs']} log{'s' if v['logs'] != 1 else ''} "
                         f"({len(v['boards'])} board{'s' if len(v['boards']) != 1 else ''})"
                         for k, v in g["register"].items())
        label = f" ({shown(g['label'])})" if g["label"] else ""
        lines.append(f"  {shown(g['soc'] or '?')} {shown(g['node'] or g['device'])}{label}: "
                     f"DT {_yes(g['dt_coherent'])}; register {said}; "
                     + ", ".join(f"{k} {n}" for k, n in g["findings"].items()))
    return "\n".join(lines) + "\n"
