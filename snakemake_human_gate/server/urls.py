"""Where things are on the gate server: the paths it serves, as URLs for others to show.

Pure string building, no FastAPI, so that notifications can make links without the
server's dependencies.
"""

from urllib.parse import quote


def base(public_url: str | None) -> str:
    """The server's public root without a trailing slash ('' when not known: relative)."""
    return (public_url or "").rstrip("/")


def artifact_path(gate_id: str, index: int) -> str:
    return f"/api/gates/{quote(gate_id, safe='')}/artifacts/{index}"


def link_url(public_url: str | None, token: str) -> str:
    """The one-click link for a token minted by :class:`~snakemake_human_gate.links.LinkSigner`."""
    return f"{base(public_url)}/l/{token}"


def page_url(public_url: str | None, gate_id: str) -> str:
    """The dashboard, opened at one gate."""
    return f"{base(public_url)}/?gate={quote(gate_id, safe='')}"
