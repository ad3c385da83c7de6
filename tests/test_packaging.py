"""The wheel works without the source tree: built, installed into a fresh virtual environment outside the
checkout, and run from elsewhere, it scores against the default library it ships."""

import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from rollmatch import read_notes
from rollmatch.library import CACHE_DIR

from .conftest import REPO, chorale_path, write_midi

#: What the build reads; copied so that the build leaves nothing in the checkout and finds nothing stale there.
SOURCES = ("pyproject.toml", "README.md", "rollmatch", "server", "exemplars", "proto")
LEFT_OUT = shutil.ignore_patterns("__pycache__", "*.egg-info", ".rollmatch-cache", ".rollmatch.lock", "build")

PROBE = """
import importlib.resources, json, rollmatch, rollmatch.server.app
from rollmatch import Library, default_library_path
proto = importlib.resources.files("rollmatch.proto").joinpath("rollmatch/v1/rollmatch.proto").read_text()
print(json.dumps({
    "rollmatch": rollmatch.__file__,
    "server": rollmatch.server.app.__file__,
    "library": str(default_library_path()),
    "exemplars": len(Library.open().exemplars),
    "service": "service RollmatchService" in proto,
    "typed": importlib.resources.files("rollmatch").joinpath("py.typed").is_file(),
}))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A virtual environment holding the built wheel; its dependencies come from this environment."""
    root = tmp_path_factory.mktemp("packaging")
    source = root / "source"
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=LEFT_OUT)
        else:
            shutil.copy2(REPO / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
    _checked(*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(root / "dist"), str(source))
    (wheel,) = (root / "dist").glob("rollmatch-*.whl")
    venv = root / "venv"
    _checked(sys.executable, "-m", "venv", "--without-pip", str(venv))
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    _checked(*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel))
    # Plain path lines (no 'import' lines) add this environment's packages after the new one's own, without
    # running the editable install's hook: the wheel's rollmatch comes first.
    purelib = _checked(str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").strip()
    ours = [*site.getsitepackages(), sysconfig.get_path("purelib"), sysconfig.get_path("platlib")]
    if site.ENABLE_USER_SITE:
        ours.append(site.getusersitepackages())
    (Path(purelib) / "dependencies.pth").write_text("".join(f"{path}\n" for path in dict.fromkeys(ours)))
    return venv


def _checked(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{args}: {done.stderr}"
    return done.stdout


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ROLLMATCH_LIBRARY", "PYTHONPATH", "PYTHONHOME")}
    # In a fresh environment the sparse engine's numba kernels would first compile for some ten seconds;
    # interpreted, they score one fragment in about one. The engine is not what this test is about.
    env["NUMBA_DISABLE_JIT"] = "1"
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_the_installed_wheel_needs_no_source_tree(installed, tmp_path):
    bin_dir = installed / ("Scripts" if os.name == "nt" else "bin")
    probe = run(str(bin_dir / "python"), "-c", PROBE, cwd=tmp_path)
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    inside = installed.resolve()
    for key in ("rollmatch", "server", "library"):
        assert Path(found[key]).resolve().is_relative_to(inside), (key, found[key])
    assert found["exemplars"] == 33 and found["service"] and found["typed"]

    # The first phrase of a chorale the default library holds, as a MIDI file, scored by the console script.
    # Installed for everyone, the library cannot be written: its notes cache goes unwritten (a file stands
    # where the cache folder would go, which stops root too).
    (Path(found["library"]) / CACHE_DIR).write_text("not a folder")
    fragment = write_midi(tmp_path / "bwv101.7-opening.mid", read_notes(chorale_path("bwv101.7"), end_beat=8))
    scored = run(str(bin_dir / "rollmatch"), "score", fragment.name, cwd=tmp_path)
    assert scored.returncode == 0, scored.stderr
    (line,) = scored.stdout.splitlines()
    assert line.startswith("bwv101.7-opening.mid  GOOD ") and "good: bwv101.7-phrase1 1.000" in line


def test_only_the_service_wing_imports_grpc():
    # the server, the generated code and the client; everything else stays free of gRPC
    wing = {REPO / "rollmatch" / "client.py", *REPO.glob("server/*.py"), *REPO.glob("rollmatch/_pb/**/*.py")}
    importers = {
        path.relative_to(REPO).as_posix()
        for path in (*REPO.glob("rollmatch/**/*.py"), *REPO.glob("server/*.py"))
        if path not in wing
        and any(line.lstrip().startswith(("import grpc", "from grpc")) for line in path.read_text().splitlines())
    }
    assert importers == set()
    assert "import grpc" in (REPO / "rollmatch" / "client.py").read_text()  # the check sees an import where one is
