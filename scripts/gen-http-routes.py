#!/usr/bin/env python3
"""Writes crates/uhrwerk-server/src/http_api/annotations.txt: the `google.api.http` bindings of
WorkflowService and OperatorService, read from the service.proto files of the temporalio-protos
crate that Cargo.lock pins (in the local cargo registry; run `cargo fetch` first).

The descriptor set temporalio-protos publishes has lost these method options, so the HTTP API
reads this table instead. Run again after upgrading temporalio-protos:

    python3 scripts/gen-http-routes.py
"""

import glob
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "crates/uhrwerk-server/src/http_api/annotations.txt")
SERVICES = [
    ("temporal.api.workflowservice.v1.WorkflowService", "workflowservice"),
    ("temporal.api.operatorservice.v1.OperatorService", "operatorservice"),
]


def pinned_version() -> str:
    lock = open(os.path.join(ROOT, "Cargo.lock")).read()
    m = re.search(r'name = "temporalio-protos"\nversion = "([^"]+)"', lock)
    if not m:
        sys.exit("temporalio-protos is not in Cargo.lock")
    return m.group(1)


def proto_dir(version: str) -> str:
    home = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))
    found = glob.glob(os.path.join(home, "registry/src/*", f"temporalio-protos-{version}", "protos/api_upstream"))
    if not found:
        sys.exit(f"temporalio-protos {version} not in the cargo registry; run `cargo fetch`")
    return found[0]


def bindings(block: str):
    """(verb, path, body) of an http option block and its additional bindings."""
    out = []
    for part in re.split(r"additional_bindings\s*\{", block):
        verb = re.search(r'\b(get|post|put|delete|patch)\s*:\s*"([^"]+)"', part)
        if verb:
            body = re.search(r'\bbody\s*:\s*"([^"]*)"', part)
            out.append((verb.group(1).upper(), verb.group(2), body.group(1) if body else ""))
    return out


def main() -> None:
    version = pinned_version()
    base = proto_dir(version)
    lines = [f"# google.api.http bindings of temporalio-protos {version}; written by scripts/gen-http-routes.py"]
    for service, package in SERVICES:
        text = open(os.path.join(base, f"temporal/api/{package}/v1/service.proto")).read()
        # A method's options block ends at the first line closing it; `{}` has none.
        pattern = r"rpc\s+(\w+)\s*\([^)]*\)\s*returns\s*\([^)]*\)\s*\{(\}|.*?\n    \})"
        for m in re.finditer(pattern, text, re.S):
            method, body = m.group(1), m.group(2)
            http = re.search(r"option\s*\(google\.api\.http\)\s*=\s*\{(.*?)\};", body, re.S)
            if not http:
                continue
            for verb, path, req_body in bindings(http.group(1)):
                lines.append(f"{service} {method} {verb} {path} {req_body or '-'}")
    with open(OUT, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{len(lines) - 1} bindings written to {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    main()
