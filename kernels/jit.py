"""Where the kernels' machine code is kept between runs, when it is stale,
and whether a process compiles the kernels or runs them as plain Python.

numba's own cache keys a kernel on its own file only, and keeps a callee's
inlined machine code after the callee changes (numba issue 1833): here every
kernel is cached under one key of everything the code is made of, in files
that carry their own checksum. docs/store.md says how; install() (called by
kernels.config before any kernel is defined) puts it in place for the
kernels of this folder only.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import pickle
import sys
from pathlib import Path

from store.durable import writing
from store.folders import cache_dir
from store.kept import NotKept, read_kept
from store.prune import mark_used, prune

KERNELS_DIR = Path(__file__).resolve().parent
# Key folders kept besides the one in use (other checkouts, versions).
KEEP_OTHER_KEYS = 3
# Written into the key folder once every kernel module was imported compiled.
_COMPLETE = "complete"
# Below this many bytes of DTBs a process without compiled kernels runs them
# as plain Python: about a second per megabyte, against 15 to 40 seconds to
# compile them all.
SMALL_WORK_BYTES = 2 << 20

_CORRUPT = "compiled kernel cache file truncated or corrupt; compiling it again"

_key = None
_pruned = False
_warned = set()


def cache_root() -> Path:
    """$XDG_CACHE_HOME/dtb-audit/numba (~/.cache/dtb-audit/numba)."""
    return cache_dir() / "numba"


def kernel_sources() -> list[Path]:
    """Every file the kernels' machine code may be made of."""
    return sorted(KERNELS_DIR.glob("*.py"))


def kernels_key() -> str:
    """Hash of the kernel sources, the compiler versions and the target."""
    global _key
    if _key is None:
        import llvmlite
        import numba
        from numba.core.registry import cpu_target

        from numba.core import config

        h = hashlib.sha256()
        # numba's settings that change the machine code but not its own index
        # key (NUMBA_BOUNDSCHECK=1 for the fuzzer must not serve production).
        settings = (config.BOUNDSCHECK, config.OPT, config.DEBUGINFO_DEFAULT,
                    config.LOOP_VECTORIZE, config.SLP_VECTORIZE, config.ENABLE_AVX)
        for part in (numba.__version__, llvmlite.__version__, sys.version, sys.abiflags,
                     repr(cpu_target.target_context.codegen().magic_tuple()), repr(settings)):
            h.update(part.encode() + b"\0")
        for f in kernel_sources():
            h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
        _key = h.hexdigest()[:16]
    return _key


def cache_path() -> Path:
    """The folder of the current key."""
    return cache_root() / kernels_key()


def _warn(path, message: str) -> None:
    """One line per file and process: `path: warning: message`."""
    if path not in _warned:
        _warned.add(path)
        sys.stderr.write(f"{path}: warning: {message}\n")


class CorruptCacheFile(Exception):
    """A cache file whose checksum is wrong: args[0] is its path."""


def _is_kernel(py_func) -> bool:
    try:
        return Path(py_func.__code__.co_filename).resolve().parent == KERNELS_DIR
    except (OSError, ValueError):
        return False


def _classes():
    """The numba subclasses, defined on first use (numba is imported lazily)."""
    from numba.core import caching

    class KernelLocator(caching._CacheLocator):
        """Every kernel of this folder in the folder of the current key."""

        def __init__(self, py_func, py_file):
            self._py_file = py_file
            self._lineno = py_func.__code__.co_firstlineno
            self._cache_path = str(cache_path())

        def ensure_cache_path(self):
            global _pruned
            super().ensure_cache_path()
            if not _pruned:
                _pruned = True
                mark_used(cache_path())
                prune(cache_path(), KEEP_OTHER_KEYS)

        def get_cache_path(self):
            return self._cache_path

        def get_source_stamp(self):
            # The folder is the key already; the stamp repeats it so that a
            # file copied into another key's folder is never taken for current.
            return kernels_key()

        def get_disambiguator(self):
            return str(self._lineno)

        @classmethod
        def from_function(cls, py_func, py_file):
            self = cls(py_func, py_file)
            try:
                self.ensure_cache_path()
            except OSError:
                return None
            return self

    class KernelCacheImpl(caching.CompileResultCacheImpl):
        _locator_classes = [KernelLocator]

    class CheckedCacheFile(caching.IndexDataCacheFile):
        """numba's index and data files, each with a SHA-256 of its payload."""

        def _dump(self, obj):
            payload = super()._dump(obj)
            return hashlib.sha256(payload).digest() + payload

        def _checked(self, path, raw):
            digest, payload = raw[:32], raw[32:]
            if len(raw) < 32 or hashlib.sha256(payload).digest() != digest:
                raise CorruptCacheFile(path)
            return pickle.loads(payload)

        def _load_index(self):
            try:
                raw = read_kept(self._index_path)
            except FileNotFoundError:
                return {}
            except OSError as e:       # a FIFO, a device, a folder: compiled again, rewritten
                _warn(self._index_path, f"compiled kernel cache file unusable ({e}); "
                                        f"compiling it again")
                return {}
            try:
                stream = io.BytesIO(raw)
                version = pickle.load(stream)
                if version != self._version:
                    return {}
                stamp, overloads = self._checked(self._index_path, stream.read())
            except Exception:  # noqa: BLE001 - any unreadable index is a miss
                _warn(self._index_path, _CORRUPT)
                return {}
            return overloads if stamp == self._source_stamp else {}

        def _load_data(self, name):
            path = self._data_path(name)
            try:
                raw = read_kept(path)
            except NotKept as e:       # numba takes an OSError here for a miss: say why
                _warn(path, f"compiled kernel cache file unusable ({e}); compiling it again")
                raise
            return self._checked(path, raw)

        def _open_for_write(self, filepath):
            return writing(filepath)

    class KernelCache(caching.FunctionCache):
        """FunctionCache in the keyed folder, with checked files; a file that
        cannot be read or written is compiled again, never a traceback."""

        _impl_class = KernelCacheImpl

        def __init__(self, py_func):
            super().__init__(py_func)
            self._cache_file = CheckedCacheFile(
                cache_path=self._cache_path, filename_base=self._impl.filename_base,
                source_stamp=self._impl.locator.get_source_stamp())

        def load_overload(self, sig, target_context):
            try:
                return super().load_overload(sig, target_context)
            except CorruptCacheFile as e:
                _warn(e.args[0], _CORRUPT)
            except Exception as e:  # noqa: BLE001 - bad pickles and object code raise anything
                _warn(self._cache_path, f"compiled {self._py_func.__qualname__} unreadable "
                                        f"({type(e).__name__}: {e}); compiling it again")
            return None

        def save_overload(self, sig, data):
            try:
                super().save_overload(sig, data)
            except OSError as e:
                _warn(self._cache_path, f"cannot write compiled kernels ({e.strerror or e})")

    return KernelCache


_installed = False


def install() -> None:
    """Make numba cache the kernels of this folder under the current key
    (docs/store.md, "The compiled kernels").  Idempotent."""
    global _installed
    if _installed:
        return
    from numba.core import dispatcher

    KernelCache = _classes()
    numba_enable_caching = dispatcher.Dispatcher.enable_caching

    def enable_caching(self):
        if _is_kernel(self.py_func):
            try:
                self._cache = KernelCache(self.py_func)
            except RuntimeError:
                # No writable cache folder: compile every run rather than
                # fall back to numba's per-file cache, which goes stale.
                _warn(cache_root(), "not writable: kernels are compiled on every run")
        else:
            numba_enable_caching(self)

    dispatcher.Dispatcher.enable_caching = enable_caching
    _installed = True


# -- compiled or plain Python ---------------------------------------------------------

_MACHINERY = ("__init__", "config", "jit")
_tier = None


def kernel_modules() -> list[str]:
    """The modules of this folder but the machinery (kernels.config, kernels.jit)."""
    return [f"kernels.{f.stem}" for f in kernel_sources() if f.stem not in _MACHINERY]


def compiled_ready() -> bool:
    """Whether every kernel module was compiled under the current key."""
    return (cache_path() / _COMPLETE).exists()


def _dispatchers():
    """The numba kernels of the kernel modules imported so far."""
    from numba.core.dispatcher import Dispatcher
    return [v for m in kernel_modules() if m in sys.modules
            for v in vars(sys.modules[m]).values()
            if isinstance(v, Dispatcher) and v.__module__ == m]


def _imported_compiled() -> bool:
    return bool(_dispatchers())


def compile_all() -> list[str]:
    """Import every kernel module compiled: the kernels with a signature are
    compiled now (or loaded from the cache).  Returns the kernels without
    one (compiled when first called); when there are none, the key is
    marked complete (compiled_ready())."""
    global _tier
    if _tier == "python":
        raise RuntimeError("the kernels of this process are plain Python")
    for name in kernel_modules():
        importlib.import_module(name)
    _tier = "compiled"
    lazy = sorted(f"{d.__module__}.{d.__name__}" for d in _dispatchers() if not d.signatures)
    if not lazy:
        with contextlib.suppress(OSError):
            (cache_path() / _COMPLETE).touch()
    return lazy


def choose_tier(work_bytes: int) -> str:
    """How this process runs the kernels, decided before the first kernel
    module is imported: "python" when the work is under SMALL_WORK_BYTES of
    DTBs and the current kernels were never compiled here, "compiled"
    otherwise (compiling now what is not in the cache).  Once decided (or
    once a kernel module was imported), later calls keep the decision."""
    global _tier
    if _tier is None:
        from numba.core import config as numba_config

        if _imported_compiled() or work_bytes >= SMALL_WORK_BYTES or compiled_ready():
            compile_all()
        else:
            before = numba_config.DISABLE_JIT
            numba_config.DISABLE_JIT = True   # njit() returns the function itself
            try:
                for name in kernel_modules():
                    importlib.import_module(name)
            finally:
                numba_config.DISABLE_JIT = before
            _tier = "python"
    return _tier


def main() -> int:
    """`python -m kernels.jit`: compile every kernel ahead (setup.sh); the
    cache folder on stdout."""
    import time as _time
    started = _time.monotonic()
    lazy = compile_all()
    sys.stderr.write(f"dtb-audit: kernels compiled (or found compiled) in "
                     f"{_time.monotonic() - started:.1f} s\n")
    if lazy:
        sys.stderr.write(f"dtb-audit: {len(lazy)} kernels without a signature are compiled "
                         f"when first used: {', '.join(lazy)}\n")
    print(cache_path())
    return 0


if __name__ == "__main__":
    # As kernels.jit, the module kernels.config installed: one state.
    from kernels.jit import main as kernels_jit_main
    sys.exit(kernels_jit_main())
