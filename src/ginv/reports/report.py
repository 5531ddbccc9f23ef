"""``report.md`` and a self-contained ``report.html`` from a reproduction folder.

Reads ``config.json``, ``environment.json``, ``summary.json`` and each experiment's
``results.json``; figures are linked in Markdown and embedded (base64) in HTML. A section
whose own settings (its ``results.json``'s ``config``) differ from ``config.json`` says so.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ginv.errors import GinvError
from ginv.io import atomic_write_text
from ginv.provenance import source_commit
from ginv.records import RESULTS, check_record, read_record

UNORDERED = 10**6
"""Where a section without an ``order`` (an older results folder) goes: after the others."""


def collect(
    out: Path,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, float], list[dict[str, Any]]]:
    """What a report of ``out`` shows: its settings, environment, wall times and sections
    (every ``*/results.json``, checked, in registry order); damage is one GinvError line."""
    if not out.is_dir():
        raise GinvError(f"{out}: no such folder")
    config, env, summary, scale = (
        read_record(out / f"{name}.json", name) if (out / f"{name}.json").is_file() else {}
        for name in ("config", "environment", "summary", "scale")
    )
    # every folder with a results.json, in the order its experiment's registry gave it
    sections = sorted(
        (
            _section(out, path.parent.name, read_record(path, "results"))
            for path in out.glob("*/results.json")
            if path.parent.is_dir() and not path.parent.is_symlink()
        ),
        key=lambda s: (_order(s), s["experiment"]),
    )
    if not sections:
        raise GinvError(f"{out}: no experiment results to report (run `ginv reproduce` first)")
    if not config:  # no finished run yet: the settings its experiments recorded
        config = next((s["config"] for s in sections if s.get("config")), {})
    paper = scale.get("paper")
    if isinstance(paper, dict):  # what the scale warning compares with
        sections = [{**s, "paper_scale": paper} for s in sections]
    return config, env, summary, sections


def _order(section: dict[str, Any]) -> int:
    order = section.get("order")
    return order if isinstance(order, int) and not isinstance(order, bool) else UNORDERED


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _inside(out: Path, folder: str, name: object, path: Path) -> str:
    """``name`` if it is a file name within ``out/folder`` (after ``..`` and links are
    resolved): the report reads and links only files of the results folder itself."""
    base = (out / folder).resolve()
    if not isinstance(name, str) or not name or not (base / name).resolve().is_relative_to(base):
        raise GinvError(f"{path}: file {name!r} lies outside {out / folder}; refused")
    return name


def _section(out: Path, folder: str, raw: Any) -> dict[str, Any]:
    """The parts of ``folder/results.json`` that the report shows, type-checked against
    :data:`ginv.records.RESULTS`; every file it names must lie inside ``out/folder``. Anything
    else is one :class:`GinvError` naming it."""
    path = out / folder / "results.json"
    raw = check_record(raw, RESULTS, path)
    lists = {k: raw.get(k, []) for k in ("tables", "figures", "notes", "files")}
    for f in lists["figures"]:
        for kind in ("png", "pdf"):
            _inside(out, folder, f.get(kind), path)
    for name in lists["files"]:
        _inside(out, folder, name, path)
    # paths below are built from the folder, never from the file's own 'experiment'
    return {**raw, **lists, "experiment": folder, "passed": raw.get("passed")}


def _png(path: Path) -> bytes:
    """The bytes of ``path``, refused unless they are a PNG image."""
    data = path.read_bytes()
    if not data.startswith(PNG_MAGIC):
        raise GinvError(f"{path}: not a PNG image; refused")
    return data


def write_report(out: Path | str) -> tuple[Path, Path]:
    """Write ``out/report.md`` and ``out/report.html``; return their paths."""
    out = Path(out)
    config, env, summary, sections = collect(out)
    md, page = _markdown(config, env, summary, sections), _html(out, config, env, summary, sections)
    atomic_write_text(md, out / "report.md")
    atomic_write_text(page, out / "report.html")
    return out / "report.md", out / "report.html"


def _provenance(env: dict[str, Any]) -> str:
    """``Results computed at git commit <c>; report written <UTC time> by ginv <version>
    (git commit <c'>)``: the results' commit from ``environment.json``, when recorded."""
    from ginv import __version__

    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    commit = source_commit()
    written = f"written {when} by ginv {__version__}" + (
        f" (git commit {commit[:12]})" if commit else ""
    )
    made = str(env.get("commit") or "")
    if not made:
        return f"Report {written}"
    sha, _, rest = made.partition(" ")  # "<sha> + uncommitted changes"
    return (
        f"Results computed at git commit {sha[:12]}{' ' + rest if rest else ''}; report {written}"
    )


def _scale_warning(config: dict[str, Any], sections: Sequence[dict[str, Any]] = ()) -> str | None:
    """A warning for the smoke and quick profiles: their numbers are not the paper's scale.
    Sections whose own settings name such a profile are named when the report's do not."""
    name = config.get("profile")
    paper: dict[str, Any] = next((s["paper_scale"] for s in sections if "paper_scale" in s), {})
    epochs, seeds = paper.get("epochs", "?"), paper.get("seeds", [])
    seeds_text = ", ".join(map(str, seeds)) if isinstance(seeds, list) else "?"
    scale = (
        f"not the paper's scale ({epochs} epochs, seeds {seeds_text or '?'}, the whole test "
        "orbit): its numbers are not comparable with the paper's. Run "
        "`ginv reproduce all --profile paper` for those."
    )
    train = config.get("train") or {}  # the study's TrainConfig
    if name in ("smoke", "quick"):
        return (
            f"The {name} profile ({train.get('epochs', '?')} epochs, seeds "
            f"{_show(config.get('seeds', '?'))}, {train.get('n_train', '?')} training samples) is for "
            f"checking the pipeline, {scale}"
        )
    small = [
        f"{s['title']} ({s['config']['profile']})"
        for s in sections
        if s.get("config", {}).get("profile") in ("smoke", "quick")
    ]
    if small:
        return f"These sections come from a pipeline-checking profile, {scale}: " + "; ".join(small)
    return None


def _own_settings(config: dict[str, Any], section: dict[str, Any]) -> str | None:
    """The settings in which a section's own run (its ``results.json``'s ``config``) differs
    from the report's ``config.json``: a section left from an earlier or different run."""
    own = section.get("config") or {}
    if not own or not config:
        return None
    own, config = dict(_flat(own)), dict(_flat(config))  # train.epochs, not the whole train
    differ = [k for k in {**config, **own} if own.get(k) != config.get(k)]
    if not differ:
        return None
    return "This section's results come from other settings than the report's: " + "; ".join(
        f"{k} = {_show(own.get(k, '–'))} (report: {_show(config.get(k, '–'))})" for k in differ
    )


def _show(value: Any) -> str:
    """A setting as text: lists joined by commas, everything else as it is."""
    return ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)


def _flat(config: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested settings as ``(dotted name, value)`` pairs: ``{"train": {"epochs": 3}}`` →
    ``[("train.epochs", 3)]``; an empty object stays one row."""
    pairs: list[tuple[str, Any]] = []
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            pairs += _flat(value, f"{name}.")
        else:
            pairs.append((name, value))
    return pairs


SUBSCRIPTS = dict(
    zip("0123456789+-=()aehijklmnoprstuvx−", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ₋", strict=True)
)
SUPERSCRIPTS = dict(zip("0123456789+-=()inT−", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁱⁿᵀ⁻", strict=True))
# TeX-style W_{k+1}, W_k, x^{T} in a text; a bare _ between words (nu_max_rounds) is no maths
MATHS = re.compile(r"(?<=[^\W_])([_^])(?:\{([^{}]+)\}|([0-9A-Za-z])(?![0-9A-Za-z_]))")


def _maths_text(text: str) -> str:
    """TeX-style sub- and superscripts in ``text`` as Unicode (``W_{k+1}`` → ``Wₖ₊₁``), for
    Markdown; one whose characters have no Unicode form stays as written."""

    def sub(m: re.Match[str]) -> str:
        body = m.group(2) or m.group(3)
        table = SUBSCRIPTS if m.group(1) == "_" else SUPERSCRIPTS
        return "".join(table[c] for c in body) if all(c in table for c in body) else m.group()

    return MATHS.sub(sub, text)


def _maths_html(escaped: str) -> str:
    """TeX-style sub- and superscripts in already escaped text as ``<sub>``/``<sup>``."""

    def sub(m: re.Match[str]) -> str:
        tag = "sub" if m.group(1) == "_" else "sup"
        return f"<{tag}>{m.group(2) or m.group(3)}</{tag}>"

    return MATHS.sub(sub, escaped)


def _slug(title: str) -> str:
    """The anchor GitHub gives a Markdown heading; the HTML report uses the same ids."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def _toc(sections: list[dict[str, Any]], summary: dict[str, float]) -> list[str]:
    return [s["title"] for s in sections] + ["Wall time"] * bool(summary) + ["Settings", "Software"]


def _md_table(columns: list[str], rows: list[list[Any]], maths: bool = True) -> str:
    """A Markdown table; ``maths``: cells with TeX-style sub- and superscripts as Unicode."""
    cell = (lambda v: _maths_text(str(v))) if maths else str
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _settings_rows(config: dict[str, Any]) -> list[list[Any]]:
    """One row per setting, nested ones flattened (``train.epochs``), lists joined."""
    return [[k, _show(v)] for k, v in _flat(config)]


LONG = 30
"""Tables with more rows than this come after the figures, collapsed (``<details>``)."""


def _split_tables(
    tables: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The tables shown before a section's figures, and the long ones shown after them."""
    return [t for t in tables if len(t["rows"]) <= LONG], [
        t for t in tables if len(t["rows"]) > LONG
    ]


def _markdown(config, env, summary, sections) -> str:
    parts = [
        "# ginv — genuine invariance study",
        f"Profile **{config.get('profile', '?')}**, seeds {_show(config.get('seeds', '?'))}. "
        f"{_provenance(env)}.",
    ]
    warning = _scale_warning(config, sections)
    if warning:
        parts.append(f"> **Not the paper's scale.** {warning}")
    parts.append("\n".join(f"- [{t}](#{_slug(t)})" for t in _toc(sections, summary)))
    for s in sections:
        name = s["experiment"]
        parts.append(f"## {s['title']}")
        parts.append(_maths_text(s["description"]))
        own = _own_settings(config, s)
        if own:
            parts.append(f"> **Other settings.** {own}")
        if s.get("passed") is not None:
            parts.append(f"**Check: {'passed' if s['passed'] else 'FAILED'}**")
        short, long = _split_tables(s["tables"])
        for t in short:
            parts.append(f"*{_maths_text(t['caption'])}*\n\n" + _md_table(t["columns"], t["rows"]))
        for f in s["figures"]:
            caption = _maths_text(f["caption"])
            parts.append(
                f"![{caption}]({name}/{f['png']})\n\n*{caption}* ([PDF]({name}/{f['pdf']}))"
            )
        for t in long:  # GitHub renders a Markdown table inside <details> between blank lines
            parts.append(
                f"<details><summary>{_maths_text(t['caption'])} ({len(t['rows'])} rows)</summary>"
                f"\n\n{_md_table(t['columns'], t['rows'])}\n\n</details>"
            )
        parts.extend(f"> {_maths_text(n)}" for n in s["notes"])
        if s.get("files"):
            parts.append("Data: " + ", ".join(f"[{f}]({name}/{f})" for f in s["files"]))
    if summary:
        rows = [[k, f"{v:.1f}"] for k, v in summary.items()]
        parts.append("## Wall time\n\n" + _md_table(["experiment", "seconds"], rows))
    parts.append("## Settings\n\n" + _md_table(["setting", "value"], _settings_rows(config), False))
    parts.append(
        "## Software\n\n" + _md_table(["", "version"], [[k, v] for k, v in env.items()], False)
    )
    return "\n\n".join(parts) + "\n"


def _html_table(columns: list[str], rows: list[list[Any]], maths: bool = True) -> str:
    """A table; ``maths``: cells with TeX-style sub- and superscripts rendered."""
    cell = (
        (lambda v: _maths_html(html.escape(str(v)))) if maths else (lambda v: html.escape(str(v)))
    )
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html(out: Path, config, env, summary, sections) -> str:
    e = html.escape

    def m(text: str) -> str:  # prose: escaped, its sub- and superscripts rendered
        return _maths_html(e(text))

    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>ginv report</title><style>",
        "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}",
        "table{border-collapse:collapse;margin:1em 0;font-size:14px}td,th{border:1px solid #ccc;padding:3px 8px}",
        "th{background:#f3f3f3}img{max-width:100%}figure{margin:1em 0}figcaption{font-size:13px;color:#555}",
        ".note{border-left:3px solid #c90;padding-left:8px;color:#555}.fail{color:#b00;font-weight:bold}",
        ".scale{background:#fff4d6;border:1px solid #e0b040;padding:8px 12px;margin:1em 0}",
        "nav ul{columns:2;font-size:14px}details{margin:1em 0}summary{cursor:pointer;font-size:14px}",
        "</style></head><body>",
        "<h1>ginv — genuine invariance study</h1>",
        f"<p>Profile <b>{e(str(config.get('profile', '?')))}</b>, seeds {e(_show(config.get('seeds', '?')))}. "
        f"{e(_provenance(env))}.</p>",
    ]
    warning = _scale_warning(config, sections)
    if warning:
        warning = re.sub(r"`([^`]*)`", r"<code>\1</code>", e(warning))
        parts.append(f"<p class='scale'><b>Not the paper's scale.</b> {warning}</p>")
    toc = "".join(f"<li><a href='#{_slug(t)}'>{e(t)}</a></li>" for t in _toc(sections, summary))
    parts.append(f"<nav><b>Contents</b><ul>{toc}</ul></nav>")
    for s in sections:
        name = s["experiment"]
        parts.append(
            f"<h2 id='{_slug(s['title'])}'>{e(s['title'])}</h2><p>{m(s['description'])}</p>"
        )
        own = _own_settings(config, s)
        if own:
            parts.append(f"<p class='scale'><b>Other settings.</b> {e(own)}</p>")
        if s.get("passed") is not None:
            cls = "" if s["passed"] else " class='fail'"
            parts.append(f"<p{cls}>Check: {'passed' if s['passed'] else 'FAILED'}</p>")
        short, long = _split_tables(s["tables"])
        for t in short:
            parts.append(f"<p><i>{m(t['caption'])}</i></p>" + _html_table(t["columns"], t["rows"]))
        for f in s["figures"]:
            png = out / name / f["png"]
            if png.is_file():
                data = base64.b64encode(_png(png)).decode()
                parts.append(
                    f"<figure><img src='data:image/png;base64,{data}' alt='{e(f['caption'])}'>"
                    f"<figcaption>{m(f['caption'])}</figcaption></figure>"
                )
        for t in long:
            parts.append(
                f"<details><summary><i>{m(t['caption'])}</i> ({len(t['rows'])} rows)</summary>"
                + _html_table(t["columns"], t["rows"]) + "</details>"
            )  # fmt: skip
        parts.extend(f"<p class='note'>{m(n)}</p>" for n in s["notes"])
    if summary:
        parts.append(
            "<h2 id='wall-time'>Wall time</h2>"
            + _html_table(["experiment", "seconds"], [[k, f"{v:.1f}"] for k, v in summary.items()])
        )
    parts.append(
        "<h2 id='settings'>Settings</h2>"
        + _html_table(["setting", "value"], _settings_rows(config), maths=False)
    )
    parts.append(
        "<h2 id='software'>Software</h2>"
        + _html_table(["", "version"], [[k, v] for k, v in env.items()], maths=False)
    )
    parts.append("</body></html>")
    return "\n".join(parts)
