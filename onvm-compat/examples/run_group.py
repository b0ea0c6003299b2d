#!/usr/bin/env python3
"""OpenNetVM's examples/run_group.py for Reinforce: starts a group of NFs from a
deployment file and stops them together.

    cd examples && python3 run_group.py example_nf_deploy.json

The file is ONVM's format (ONVM-COMPAT.md section 4.3):

    {"globals": [{"TTL": 10}, {"directory": "output_files"}, {"directory-prefix": "run-"}],
     "<nf folder>": [{"parameters": "<arguments after ./go.sh>"}, ...], ...}

Each entry runs `./go.sh <parameters>` in examples/<nf folder>, with its stdout
and stderr in <log dir>/log-<nf>-<first parameter>.txt. When one NF exits, the
others are stopped ("Error occurred. Exiting..."); when the TTL (seconds) runs
out, all are stopped ("Exiting on timeout..."). The log directory is the given
one, else the prefix plus the time of day (HH:MM:SS).

Where this differs from ONVM's script, on purpose:
  - The TTL is measured with time.monotonic(); ONVM's script called
    time.clock(), which Python 3.8 removed, so its TTL mode crashed there.
  - NFs are stopped with SIGINT to their process group (the NF prints its
    exit summary), then SIGKILL after 5 s; ONVM's parses `ps -ef` output and
    runs `sudo kill`.
  - Two entries whose log files would share a name get "-2", "-3"... rather
    than overwriting each other.
  - Errors exit with status 1; ONVM's exits 0 for a missing config file.
  - "globals" may also be a single object, and an entry without "parameters"
    is reported instead of raising KeyError.
Python 3 standard library only.
"""

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from datetime import datetime

STOP_GRACE_S = 5.0
POLL_S = 0.1


class Group:
    """The NF processes started so far and their log files."""

    def __init__(self):
        self.procs = []  # (name, Popen)
        self.logs = []

    def stop(self):
        """SIGINT every NF's process group, wait, then SIGKILL what is left."""
        for _, p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGINT)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + STOP_GRACE_S
        for _, p in self.procs:
            try:
                p.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
        for lf in self.logs:
            lf.close()


def fail(group, msg, code=1):
    """Print msg, stop the group and exit."""
    if group is not None:
        group.stop()
    print(msg, flush=True)
    sys.exit(code)


def load_config(argv):
    """Returns the parsed deployment file named on the command line."""
    if len(argv) < 2:
        fail(None, "Error: Specify config file")
    name = argv[1]
    if not os.path.exists(name):
        fail(None, "Error: No config file found")
    try:
        with open(name) as f:
            data = json.load(f)
    except (OSError, ValueError):
        fail(None, "Cannot load config file. Check JSON syntax")
    if not isinstance(data, dict):
        fail(None, "Cannot load config file. Check JSON syntax")
    return data


def parse(data):
    """Splits the file into (ttl, directory, prefix, [(nf, parameters)])."""
    ttl, directory, prefix, nfs = 0, None, "", []
    for key, value in data.items():
        if key == "globals":
            items = value if isinstance(value, list) else [value]
            for item in items:
                if not isinstance(item, dict):
                    fail(None, "Error: globals must be a list of objects")
                if "TTL" in item:
                    try:
                        ttl = float(item["TTL"])
                    except (TypeError, ValueError):
                        fail(None, "Error: TTL must be a number of seconds, not %r" % (item["TTL"],))
                if "directory" in item and directory is None:
                    directory = str(item["directory"])
                if "directory-prefix" in item:
                    prefix = str(item["directory-prefix"])
            continue
        entries = value if isinstance(value, list) else [value]
        for entry in entries:
            if not isinstance(entry, dict) or "parameters" not in entry:
                fail(None, "Error: every entry of %s needs \"parameters\"" % key)
            nfs.append((key, str(entry["parameters"])))
    return ttl, directory, prefix, nfs


def make_log_dir(directory, prefix):
    """Creates (or reuses) the log directory, printing what ONVM prints."""
    if directory is None:
        directory = prefix + datetime.now().strftime("%H:%M:%S")
    if os.path.isdir(directory):
        print("Outputting log files to %s" % directory)
        return directory
    try:
        os.makedirs(directory)
    except OSError:
        fail(None, "Creation of directory %s failed" % directory)
    print("Creating directory %s" % directory)
    return directory


def main(argv):
    if os.path.basename(os.getcwd()) != "examples":
        fail(None, "Error: Run script from within /examples folder")
    ttl, directory, prefix, nfs = parse(load_config(argv))
    log_dir = make_log_dir(directory, prefix)

    group = Group()

    def on_signal(signum, frame):  # pylint: disable=unused-argument
        group.stop()
        print("\nExiting...", flush=True)
        sys.exit(0)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    used = set()
    cwd = os.getcwd()
    for nf, params in nfs:
        args = shlex.split(params)
        first = args[0] if args else "none"
        log_name = "log-%s-%s.txt" % (nf, first)
        n = 2
        while log_name in used:
            log_name = "log-%s-%s-%d.txt" % (nf, first, n)
            n += 1
        used.add(log_name)
        nf_dir = os.path.join(cwd, nf)
        if not os.path.isdir(nf_dir) or not os.path.exists(os.path.join(nf_dir, "go.sh")):
            fail(group, "Error: Unable to access NF directory %s. Check syntax in your configuration file" % nf)
        log = open(os.path.join(log_dir, log_name), "w")
        group.logs.append(log)
        try:
            p = subprocess.Popen(["./go.sh"] + args, cwd=nf_dir, stdout=log, stderr=log,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError as e:
            fail(group, "Error: cannot start %s: %s" % (nf, e))
        group.procs.append((nf, p))
        print("Starting %s ./go.sh %s" % (nf, params), flush=True)

    start = time.monotonic()
    while True:
        for nf, p in group.procs:
            if p.poll() is not None:
                print("%s exited with status %d" % (nf, p.returncode), flush=True)
                fail(group, "Error occurred. Exiting...")
        if ttl > 0 and time.monotonic() - start >= ttl:
            fail(group, "Exiting on timeout...", 0)
        time.sleep(POLL_S)


if __name__ == "__main__":
    main(sys.argv)
