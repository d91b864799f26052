"""Copy the approved model and its report to release/, with who decided what and when."""

import hashlib
import json
import shutil
from pathlib import Path

inp, output = snakemake.input, snakemake.output  # noqa: F821 (set by Snakemake)
for name in ("model", "report", "confusion"):
    shutil.copyfile(inp[name], output[name])
report = json.loads(Path(inp.report).read_text())
manifest = {
    "model": Path(output.model).name,
    "sha256": hashlib.sha256(Path(output.model).read_bytes()).hexdigest(),
    "test_accuracy": report["test_accuracy"],
    "lr": report["lr"],
    # the decisions as the gates wrote them: choice, fields, by, at, comment, gate id
    "decisions": {
        "review_pilot": json.loads(Path(inp.review).read_text()),
        "signoff": json.loads(Path(inp.signoff).read_text()),
    },
}
Path(output.manifest).write_text(json.dumps(manifest, indent=1) + "\n")
signoff = manifest["decisions"]["signoff"]
print(f"released {output.model}: approved by {', '.join(signoff['by'])} at {signoff['at']}")
