"""The library report: a self-contained page, checked by reading it and by rendering it in headless Chromium
with no network."""

import base64
import io
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from rollmatch import Library, draw
from rollmatch.lint import Finding
from rollmatch.manifest import ExemplarSpec
from rollmatch.report import CONTENT_SECURITY_POLICY, library_report

from .conftest import chorale_path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: Flags that run Chromium headless on a CI machine, as root, without reaching any network service.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND",
)


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Library:
    """Two chorale phrases, a note-list fault and an exemplar whose file has gone missing."""
    tmp = tmp_path_factory.mktemp("report")
    library = Library.init(tmp / "lib", name="report <test>")
    library = library.add(
        chorale_path("bwv269"),
        ExemplarSpec(label="good", end_beat=10, tags=["bach"], provenance="music21 corpus & public domain"),
        exemplar_id="bwv269-opening",
    )
    library = library.add(
        chorale_path("bwv18.5-lz"), ExemplarSpec(label="good", end_beat=9), exemplar_id="bwv18.5-opening"
    )
    fault = tmp / "fifths.json"
    fault.write_text(
        '[{"pitch": 48, "start": 0, "end": 2}, {"pitch": 55, "start": 0, "end": 2},'
        ' {"pitch": 50, "start": 2, "end": 4}, {"pitch": 57, "start": 2, "end": 4}]'
    )
    library = library.add(
        fault, ExemplarSpec(label="bad", threshold=0.7, description="parallel <fifths>"), exemplar_id="fifths"
    )
    gone = tmp / "gone.json"
    gone.write_text('[{"pitch": 60, "start": 0, "end": 1}]')
    library = library.add(gone, ExemplarSpec(label="bad"), exemplar_id="gone")
    (library.path / library.get("gone").file).unlink()
    return Library.open(library.path)


FINDINGS = [
    Finding(
        "near-duplicate",
        "bwv269-opening and bwv18.5-opening match each other at 0.97",
        ("bwv269-opening", "bwv18.5-opening"),
    ),
    Finding("unreadable", "gone: its file is missing", ("gone",)),
    Finding("library", "a <script>alert(1)</script> finding for the whole library"),
]


@pytest.fixture(scope="module")
def page(library) -> str:
    return library_report(library, FINDINGS)


def test_drawing_shows_progress_when_asked(library, capsys):
    library_report(library, FINDINGS, progress=True)
    assert "drawing exemplars:" in capsys.readouterr().err  # a tqdm bar on stderr, of the 4 exemplars
    library_report(library, FINDINGS)
    assert capsys.readouterr().err == ""


def test_the_page_loads_nothing_from_anywhere(page):
    parsed = Elements()
    parsed.feed(page)
    tags = [tag for tag, _ in parsed.tags]
    assert "script" not in tags and "link" not in tags and "iframe" not in tags
    assert not re.search(r"(?i)(https?:|ftp:|@import|url\()", page)
    for tag, attrs in parsed.tags:
        for name in ("src", "href", "srcset", "action", "poster"):
            if name in attrs:
                assert attrs[name].startswith(("data:image/png;base64,", "#exemplar-")), (
                    f"<{tag} {name}={attrs[name][:40]}>"
                )
    csp = [a["content"] for t, a in parsed.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp == [CONTENT_SECURITY_POLICY]


def test_every_readable_exemplar_has_its_roll_and_details(page, library):
    parsed = Elements()
    parsed.feed(page)
    images = [a for t, a in parsed.tags if t == "img"]
    assert [a["alt"] for a in images] == [
        "piano roll of bwv269-opening",
        "piano roll of bwv18.5-opening",
        "piano roll of fifths",
    ]
    for attrs in images:
        png = Image.open(io.BytesIO(base64.b64decode(attrs["src"].split(",", 1)[1])))
        assert png.format == "PNG" and png.size == (int(attrs["width"]), int(attrs["height"]))
        assert png.size[0] >= draw.MIN_ROLL_WIDTH_PX and png.size[1] >= draw.MIN_ROLL_HEIGHT_PX
    articles = {a["id"]: a["class"] for t, a in parsed.tags if t == "article"}
    assert articles == {
        "exemplar-bwv269-opening": "exemplar good has-findings",
        "exemplar-bwv18.5-opening": "exemplar good has-findings",
        "exemplar-fifths": "exemplar bad",
        "exemplar-gone": "exemplar bad has-findings",
    }
    text = "".join(parsed.text)
    assert "report <test>" in text and "music21 corpus & public domain" in text and "parallel <fifths>" in text
    assert "0.7 (its own)" in text and "bars 0-3 of the piece" in text  # bwv269's pickup and 3/4 bars
    assert "cannot show this exemplar" in text and "gone.json" in text  # the broken one says why
    assert "a <script>alert(1)</script> finding" in text and "<script>alert" not in page  # escaped, never markup
    assert "Lint findings (3)" in text


def test_a_clean_library_says_so(library):
    assert "No findings: the library passes its checks." in library_report(library, [])


def find_chromium() -> str | None:
    named = os.environ.get("ROLLMATCH_CHROMIUM")
    return named or next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


def chromium(tmp_path, *args: str) -> subprocess.CompletedProcess:
    browser = find_chromium()
    if browser is None:
        pytest.skip(
            "no Chromium found: install it (Debian: apt-get install -y chromium; .ci/run does) "
            "or name it in $ROLLMATCH_CHROMIUM"
        )
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    command = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


PROBE = (
    "<script>addEventListener('load', () => document.body.setAttribute('data-decoded', "
    "[...document.images].filter(i => i.complete && i.naturalWidth > 0).length + '/' + document.images.length));"
    "</script>\n</body>"
)


def test_chromium_decodes_every_roll_with_no_network(page, tmp_path):
    # A copy whose policy lets one inline script record how many images decoded once the page loaded.
    probe = page.replace("default-src 'none';", "default-src 'none'; script-src 'unsafe-inline';").replace(
        "</body>", PROBE
    )
    path = tmp_path / "probe.html"
    path.write_text(probe)
    dom = chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", path.as_uri()).stdout
    assert re.search(r'data-decoded="(\d+)/(\d+)"', dom).groups() == ("3", "3")
    # Under the report's own policy the browser refuses that script, as it would refuse any fetch.
    path.write_text(page.replace("</body>", PROBE))
    dom = chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", path.as_uri()).stdout
    assert "<article" in dom and "data-decoded" not in dom.split("<script>")[0]


def test_chromium_screenshot_shows_the_rolls(page, tmp_path):
    path = tmp_path / "report.html"
    path.write_text(page)
    shot = tmp_path / "shot.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", path.as_uri())
    image = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert image.shape == (2000, 1280, 3)
    notes = np.all(np.abs(image - [0x00, 0x72, 0xB2]) <= 12, axis=-1)
    good_band = np.all(np.abs(image - [0x00, 0x9E, 0x73]) <= 12, axis=-1)
    assert notes.sum() > 2000  # piano-roll notes, drawn by the browser from the embedded PNGs
    assert good_band.sum() > 500  # the good exemplars' coloured borders and labels from the inline style
    assert len(np.unique(image @ [65536, 256, 1])) > 50  # not a blank page
