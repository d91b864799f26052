"""What of this project goes into the job image (for scripts/cloud/up).

project.py deps PYPROJECT     its runtime requirements, one a line (baked into the base image)
project.py files PYPROJECT    the paths a wheel is built from: pyproject.toml, the readme
                              and the top-level package directories, relative to the repo
"""

import sys
import tomllib
from pathlib import Path


def main(argv: list[str]) -> None:
    match argv:
        case [command, pyproject] if command in ("deps", "files"):
            meta = tomllib.loads(Path(pyproject).read_text())
        case _:
            sys.exit(__doc__)
    if command == "deps":
        print("\n".join(meta["project"]["dependencies"]))
        return
    readme = meta["project"].get("readme")
    packages = meta["tool"]["setuptools"]["packages"]
    tops = dict.fromkeys(name.split(".")[0] for name in packages)
    print("\n".join(["pyproject.toml", *([readme] if isinstance(readme, str) else []), *tops]))


if __name__ == "__main__":
    main(sys.argv[1:])
