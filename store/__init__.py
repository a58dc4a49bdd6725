"""The one store: every cache and report dtb-audit writes goes through here.

folders.py (where caches live, how their folders are named), durable.py
(temporaries and the one durable write: temporary file, fsync, rename,
fsync of the folder), kept.py (opening a cache file, trusting nothing),
stamps.py (what says a file changed), sealed.py (JSON carrying its own
checksum), bundle.py (checked array bundles), prune.py (the most recently
used entries kept), lock.py (taking turns on a flock lock).

It is plain Python and numpy, below corpus/ and kernels/, and imports
neither. docs/store.md says how each cache uses it.
"""
