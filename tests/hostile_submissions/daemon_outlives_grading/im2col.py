"""Starts processes in new sessions that try to outlive grading."""
import os
import subprocess
import sys


def im2col(x, kh, kw, stride=1, padding=0):
    script = "import time\nwhile True: time.sleep(1)  # MINIDENSE_HOSTILE_MARK"
    subprocess.Popen([sys.executable, "-c", script], start_new_session=True,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execv(sys.executable, [sys.executable, "-c", script])
        os._exit(0)
    raise NotImplementedError
