"""A scan's findings as JSON or SARIF 2.1.0 (what GitHub code scanning uploads).

GitHub reads `properties.security-severity` (a CVSS-like number) of each rule to rank
alerts, and wants every result to have a physical location: the file in the image that
records the package (e.g. /var/lib/dpkg/status), as Trivy and Grype report it.
"""

from __future__ import annotations

import json
from typing import Any

from portside import __version__
from portside.errors import InvalidArgument
from portside.trust.vulns.match import Finding

FORMATS = ("table", "json", "sarif")
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
# a number per level when the record carries no CVSS score (GitHub's bands)
_SCORE = {"critical": 9.5, "high": 8.0, "medium": 5.5, "low": 2.0, "unknown": 0.0}
_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note",
          "unknown": "note"}


class BadFormat(InvalidArgument):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown output format {name!r}: want one of {', '.join(FORMATS)}")


def as_dict(f: Finding) -> dict[str, Any]:
    return {
        "id": f.advisory.id, "aliases": list(f.advisory.aliases), "package": f.package.name,
        "ecosystem": f.package.ecosystem, "installed": f.package.version,
        "source": f.package.source or None, "fixed": f.fixed or None,
        "severity": f.severity, "score": f.advisory.score or None,
        "summary": f.advisory.summary, "path": "/" + f.package.path if f.package.path else "",
        "layer": f.package.layer, "purl": f.package.purl,
    }


def to_json(image: str, digest: str, findings: list[Finding]) -> str:
    return json.dumps({"image": image, "digest": digest,
                       "vulnerabilities": [as_dict(f) for f in findings]}, indent=2)


def to_sarif(image: str, digest: str, findings: list[Finding]) -> str:
    rules: dict[str, dict[str, Any]] = {}
    results = []
    for f in findings:
        a = f.advisory
        rules.setdefault(a.id, {
            "id": a.id,
            "name": a.id.replace("-", ""),
            "shortDescription": {"text": (a.summary or a.id)[:120]},
            "fullDescription": {"text": a.summary or a.id},
            "helpUri": f"https://osv.dev/vulnerability/{a.id}",
            "help": {"text": f"{a.id} ({', '.join(a.aliases) or 'no aliases'})"},
            "properties": {"security-severity": f"{a.score or _SCORE[f.severity]:.1f}",
                           "tags": ["security", "vulnerability", f.severity]},
        })
        fix = f"fixed in {f.fixed}" if f.fixed else "no fix yet"
        results.append({
            "ruleId": a.id,
            "level": _LEVEL[f.severity],
            "message": {"text": f"{f.package.name} {f.package.version} in {image} is affected "
                                f"by {a.id} ({f.severity}); {fix}"},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": f.package.path or "image", "uriBaseId": "ROOTPATH"},
                "region": {"startLine": 1, "startColumn": 1, "endLine": 1, "endColumn": 1},
            }, "message": {"text": f"{image}@{digest}, layer {f.package.layer}"}}],
            "partialFingerprints": {"package/advisory": f"{f.package.name}@{f.package.version}"
                                                        f"/{a.id}"},
        })
    return json.dumps({
        "$schema": SARIF_SCHEMA, "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "portside", "version": __version__,
                                "informationUri": "https://github.com/portside/portside",
                                "rules": list(rules.values())}},
            "originalUriBaseIds": {"ROOTPATH": {"uri": "file:///"}},
            "results": results,
        }],
    }, indent=2)
