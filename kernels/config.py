"""Numba settings for every kernel, in one place (as stumpy's config.py)."""

# cache=True: a second process loads machine code instead of compiling.
NJIT = dict(nogil=True, cache=True, boundscheck=False)
