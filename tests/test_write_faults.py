"""A full disk while writing a report: one line naming the file (exit 3), what was finished kept whole and
named, never a traceback.  On a real tmpfs of a few kilobytes where this process may mount one (root on
Linux), else with the plot writer made to fail as PIL does when the disk is full (ENOSPC, no file name)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess

import pytest
from genaccel.testing import cli

RUN = ("run", "hstu/ranking", "--preset", "tiny", "--samples", "2", "--seq-len", "64")


@pytest.fixture(params=["tmpfs", "patched"])
def full_disk(request, tmp_path, monkeypatch):
    """A folder whose disk fills up after a few kilobytes: a 64 KiB tmpfs, or a patched figure writer."""
    folder = tmp_path / "disk"
    folder.mkdir()
    if request.param == "patched":
        import matplotlib.figure

        def no_space(*a, **k):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(matplotlib.figure.Figure, "savefig", no_space)
        yield folder
        return
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root; the patched variant covers the same path")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True).returncode:
        pytest.skip("this machine refuses to mount a tmpfs; the patched variant covers the same path")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_full_disk_is_one_line_naming_the_file_and_keeps_the_report(full_disk, capsys, monkeypatch):
    import genaccel.engine.machine as machine

    monkeypatch.setattr(machine, "_stream_bandwidth", lambda *a: 1e10)
    out = full_disk / "run"
    code, _, err = cli(capsys, *RUN, "--out", str(out))
    lines = [line for line in err.splitlines() if line.startswith("genaccel:")]
    assert code == 3 and len(lines) == 1 and "Traceback" not in err, err[-2000:]
    assert lines[0].startswith(f"genaccel: error: cannot write '{out}/") and "No space left on device" in lines[0]
    assert lines[0].endswith(f"finished cases are in {out / 'report.json'}")
    doc = json.loads((out / "report.json").read_text())  # whole
    assert doc["workload"] == "hstu/ranking" and len(doc["samples"]) == 2
