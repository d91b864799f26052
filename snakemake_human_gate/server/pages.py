"""The small HTML pages of one-click links (pure: a Page in, escaped HTML out)."""

from dataclasses import dataclass
from html import escape

# no scripts, no framing (clickjacking), forms only back to this server
PAGE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;"
    "line-height:1.5}dt{font-weight:600}button{font-size:1.1rem;padding:.5rem 1.5rem;"
    "cursor:pointer}.reject{background:#fdd}.approve{background:#dfd}"
)


@dataclass(frozen=True)
class Page:
    status: int
    title: str
    lines: tuple[str, ...] = ()  # paragraphs (plain text)
    facts: tuple[tuple[str, str], ...] = ()  # term, description (plain text)
    button: str | None = None  # label of the POST button, if the page offers one
    action: str = ""  # css class of the button: approve or reject
    dashboard: str | None = None  # a link to the dashboard at the gate


def render(page: Page) -> str:
    parts = [f"<h1>{escape(page.title)}</h1>"]
    parts += [f"<p>{escape(line)}</p>" for line in page.lines]
    if page.facts:
        items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in page.facts)
        parts.append(f"<dl>{items}</dl>")
    if page.button:
        parts.append(
            f'<form method="post"><button type="submit" class="{escape(page.action)}">'
            f"{escape(page.button)}</button></form>"
        )
    if page.dashboard:
        link = f'<a href="{escape(page.dashboard)}">Open the gate in the dashboard</a>'
        parts.append(f"<p>{link}</p>")
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{escape(page.title)}</title><style>{_STYLE}</style></head>"
        f"<body>{''.join(parts)}</body></html>\n"
    )
