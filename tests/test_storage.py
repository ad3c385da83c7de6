import os
import stat

import pytest

from rollmatch import ExemplarSpec, Library, storage
from rollmatch.library import CACHE_DIR, FILES_DIR
from rollmatch.manifest import MANIFEST_NAME
from rollmatch.storage import LOCK_NAME, current_umask, write_output

from .conftest import REPO, chorale_path


@pytest.fixture(params=[0o022, 0o027])
def umask(request):
    """Run under this umask (process-wide), restoring the old one after."""
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_every_file_a_library_writes_follows_the_umask(tmp_path, umask):
    library = Library.init(tmp_path / "shared").add(
        REPO / "exemplars" / "bad" / "parallel-fifths.json", ExemplarSpec(label="bad")
    )
    library = library.add(chorale_path("bwv66.6"), ExemplarSpec(label="good", bars=(1, 2)))
    write_output(tmp_path / "shared" / "report.html", b"<p>made for a colleague</p>")
    (entry, _) = sorted((library.path / CACHE_DIR).glob("*.npy"))
    written = [
        library.path / MANIFEST_NAME,
        library.path / FILES_DIR / "parallel-fifths.json",
        library.path / FILES_DIR / "bwv66.6.mxl",
        entry,
        library.path / LOCK_NAME,
        library.path / "report.html",
    ]
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in written}
    assert modes == {path.name: 0o666 & ~umask for path in written}
    assert all(mode & stat.S_IROTH for mode in modes.values()) == (umask == 0o022)
    # Folders get what mkdir gives them.
    assert stat.S_IMODE((library.path / CACHE_DIR).stat().st_mode) == 0o777 & ~umask


def test_the_umask_is_read_without_proc_too(umask, monkeypatch):
    assert current_umask() == umask

    def no_proc(*args, **kwargs):
        raise OSError("no /proc here")

    monkeypatch.setattr(storage, "open", no_proc, raising=False)
    assert current_umask() == umask and os.umask(umask) == umask  # read, and left as it was
