"""Numba settings for every kernel, in one place (as stumpy's config.py),
and the types their signatures are written with."""
import numpy as np
from numba import from_dtype, types

from kernels import jit

# Before any kernel is defined: cache=True then keeps the machine code under a
# key of every kernel source, numba and the CPU (kernels/jit.py).
jit.install()

# cache=True: a second process loads machine code instead of compiling.
NJIT = dict(nogil=True, cache=True, boundscheck=False)
# Kernels that only other kernels call: numba need not build a Python entry
# point (argument unboxing) nor a C one for them.
INNER = dict(NJIT, no_cpython_wrapper=True, no_cfunc_wrapper=True)


def array(dtype, ndim=1, readonly=False):
    """The type of a C-contiguous array in a signature.  Give every kernel
    one explicit signature: without one numba compiles it again for every
    mix of argument types it meets (int32 or int64, each integer constant).
    A readonly parameter also takes writable arrays."""
    return types.Array(from_dtype(np.dtype(dtype)), ndim, "C", readonly=readonly)
