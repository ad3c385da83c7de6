"""The library report: one static, self-contained HTML page showing every exemplar and the lint findings.

Every piano roll is embedded as a ``data:`` URI and the style sheet is inline; the page names no external
address of any kind, and its Content-Security-Policy forbids loading anything but its own images, so it
renders the same from a laptop, a mail attachment or a machine with no network.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence

from . import __version__
from .draw import roll_picture
from .errors import RollmatchError
from .inspection import summarize_exemplar, summary_rows
from .library import Library
from .lint import Finding
from .manifest import Exemplar
from .progress import Show, progress_bar
from .verdict import Label

#: The page may load its own inline style and data: images, nothing else.
CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; padding: 1.5em; max-width: 1400px; color: #222; }
h1 { margin: 0 0 .2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; }
.meta { color: #555; margin: .2em 0; }
.findings li { margin: .3em 0; } .findings code { background: #f3f3f3; padding: 0 .3em; }
.clean { color: #00704f; }
.exemplars { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 1.2em; }
.exemplar { border: 1px solid #ddd; border-left: 6px solid #999; border-radius: 4px; padding: .6em .9em; }
.exemplar.good { border-left-color: #009E73; } .exemplar.bad { border-left-color: #D55E00; }
.exemplar.has-findings { background: #fff8f2; }
.exemplar h3 { margin: .1em 0 .4em; font-family: ui-monospace, monospace; }
.label { font: bold 12px sans-serif; color: #fff; padding: .1em .5em; border-radius: 3px; vertical-align: middle; }
.label.good { background: #009E73; } .label.bad { background: #D55E00; }
.exemplar img { max-width: 100%; height: auto; display: block; margin: .3em 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .1em .8em; margin: .4em 0; }
dt { color: #666; } dd { margin: 0; }
.error { color: #a33; font-weight: bold; }
footer { margin-top: 2em; color: #777; font-size: 12px; }
"""


def library_report(
    library: Library,
    findings: Sequence[Finding],
    *,
    beats_per_bar: float | None = None,
    progress: Show = False,
) -> str:
    """The report page for ``library`` with ``findings`` (from :func:`rollmatch.lint.check_library`).

    Each exemplar gets its roll (with its piece's bars, or regular bars of ``beats_per_bar`` when given),
    label, tags, provenance and summary; an exemplar whose file cannot be read gets the error instead, so
    that a broken library still gets its report.
    """
    e = html.escape
    config = library.config
    good = sum(x.label is Label.GOOD for x in library.exemplars)
    cards = []
    for exemplar in progress_bar(library.exemplars, desc="drawing exemplars", show=progress):
        concerning = [f for f in findings if exemplar.id in f.exemplars]
        cards.append(_card(library, exemplar, concerning, beats_per_bar))
    listed = "\n".join(f"<li>{_finding(f)}</li>" for f in findings)
    finding_section = (
        f'<ul class="findings">\n{listed}\n</ul>'
        if findings
        else '<p class="clean">No findings: the library passes its checks.</p>'
    )
    counts = f"{len(library.exemplars)} exemplars ({good} good, {len(library.exemplars) - good} bad)"
    thresholds = (
        f"thresholds good {config.good_threshold:g} / bad {config.bad_threshold:g}, "
        f"min coverage {config.min_coverage:g}, mode {e(config.mode.value)}"
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>rollmatch library {e(config.name)}</title>
<style>{_STYLE}</style>
</head>
<body>
<header>
<h1>{e(config.name)}</h1>
<p class="meta">{e(config.description)}</p>
<p class="meta">{counts}, version {e(library.version)};
{thresholds};
{config.steps_per_beat} steps per beat;
{"velocity-weighted" if config.velocity else "binary"} rolls</p>
</header>
<section id="findings">
<h2>Lint findings ({len(findings)})</h2>
{finding_section}
</section>
<section id="exemplars">
<h2>Exemplars</h2>
<div class="exemplars">
{"".join(cards)}
</div>
</section>
<footer>rollmatch {e(__version__)} library report of {e(str(library.path))}</footer>
</body>
</html>
"""


def _finding(finding: Finding) -> str:
    links = ", ".join(f'<a href="#exemplar-{html.escape(x)}">{html.escape(x)}</a>' for x in finding.exemplars)
    return f"<code>{html.escape(finding.code)}</code> {html.escape(finding.message)}" + (f" ({links})" if links else "")


def _card(library: Library, exemplar: Exemplar, findings: Sequence[Finding], beats_per_bar: float | None) -> str:
    e = html.escape
    exemplar_id = exemplar.id
    label = exemplar.label.value
    try:
        summary = summarize_exemplar(library, exemplar_id, beats_per_bar=beats_per_bar)
    except RollmatchError as exc:
        body = (
            f'<p class="error">cannot show this exemplar: {e(str(exc))}</p>\n'
            f"<dl>{_row('file', exemplar.file)}{_row('provenance', exemplar.provenance or '-')}</dl>"
        )
    else:
        picture = roll_picture(summary.notes, bars=summary.bars, title=summary.title)
        image = base64.b64encode(picture.png).decode("ascii")
        rows = "".join(_row(name, value) for name, value in summary_rows(summary))
        body = (
            f'<img src="data:image/png;base64,{image}" width="{picture.width}" height="{picture.height}" '
            f'alt="piano roll of {e(exemplar_id)}">\n<dl>{rows}</dl>'
        )
    listed = "".join(f"<li>{_finding(f)}</li>" for f in findings)
    notes = f'\n<ul class="findings">{listed}</ul>' if findings else ""
    flagged = " has-findings" if findings else ""
    return (
        f'\n<article class="exemplar {label}{flagged}" id="exemplar-{e(exemplar_id)}">\n'
        f'<h3>{e(exemplar_id)} <span class="label {label}">{label}</span></h3>\n{body}{notes}\n</article>'
    )


def _row(name: str, value: str) -> str:
    return f"<dt>{html.escape(name)}</dt><dd>{html.escape(value)}</dd>"
