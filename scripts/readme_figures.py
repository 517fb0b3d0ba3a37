"""Copy the README's figures out of the stored, executed tutorials (run after ``scripts/execute_tutorials.py``).

    python scripts/readme_figures.py

A tutorial cell tagged ``readme-figure:<name>`` gives its first figure to ``docs/_static/readme/<name>.png``,
scaled to at most 900 pixels wide, so the README shows what the tutorials show without anyone running them.
``tests/test_readme.py`` checks that every figure the README shows exists and comes from a tagged cell.
"""

from __future__ import annotations

import base64
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "_static" / "readme"
TAG = "readme-figure:"
MAX_WIDTH = 900


def tagged_figures() -> dict[str, bytes]:
    """``{name: png bytes}`` of every tutorial cell tagged ``readme-figure:<name>`` (its first image)."""
    import nbformat

    found: dict[str, bytes] = {}
    for path in sorted((ROOT / "tutorials").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            for tag in (t for t in cell.metadata.get("tags", []) if t.startswith(TAG)):
                images = [o["data"]["image/png"] for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
                if not images:
                    msg = f"{path.name}: the cell tagged {tag!r} has no figure; run scripts/execute_tutorials.py"
                    raise SystemExit(msg)
                found[tag[len(TAG) :]] = base64.b64decode(images[0])
    return found


def shrink(png: bytes) -> bytes:
    """The image at most :data:`MAX_WIDTH` pixels wide, as an optimised PNG."""
    from PIL import Image

    image = Image.open(io.BytesIO(png))
    if image.width > MAX_WIDTH:
        image = image.resize((MAX_WIDTH, round(image.height * MAX_WIDTH / image.width)), Image.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def main() -> int:
    """Write every tagged figure; print what was written."""
    figures = tagged_figures()
    OUT.mkdir(parents=True, exist_ok=True)
    for name, png in sorted(figures.items()):
        data = shrink(png)
        (OUT / f"{name}.png").write_bytes(data)
        print(f"docs/_static/readme/{name}.png: {len(data) / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
