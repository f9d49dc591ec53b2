"""Imported first by the scripts that read HDF5 (compare_rounds.py, walltime.py): makes sure h5py imports.

The python3 first on PATH (pyenv, conda, a venv) may lack h5py; scripts/bootstrap.sh installs it for
Debian's /usr/bin/python3, so the script reruns itself there once before giving up with what to do.
Standard library only.
"""
import os
import sys

try:
    import h5py  # noqa: F401
except ModuleNotFoundError:
    if os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") and os.path.exists("/usr/bin/python3") \
            and not os.environ.get("PILOT_PY_REEXEC"):
        os.environ["PILOT_PY_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    sys.exit(f"{sys.argv[0]}: {sys.executable} has no h5py; run it with /usr/bin/python3 (scripts/bootstrap.sh "
             "installs python3-h5py there) or `pip install h5py numpy` into this Python")
