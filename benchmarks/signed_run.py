"""`portside run --rm` of a signed image under a policy that requires the signature,
against the same run with no policy (issue 13: at most 1.1x once verified).

One registry (`portside registry serve`) and one daemon on a private root: busybox is
pushed to the registry, signed with a key `portside key generate` made, and pulled; the
run is timed with no policy, then the daemon is restarted with PORTSIDE_POLICY (a
`sigstoreSigned` rule for the repository, everything else rejected), the first (verifying)
run is timed on its own and the rest, which the daemon's cached verdict serves, like the
first series.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import Context, NotAvailable, Result, register
from benchmarks._portside import Portside
from benchmarks.containers import timed_min

RUNS = 12
IDLE = 0.2
_CACHE: dict[str, Any] = {}


def _measure(ctx: Context) -> dict[str, Any]:
    if os.geteuid() != 0:
        raise NotAvailable("needs root")
    work = Path(tempfile.mkdtemp(prefix="ps-sig-bench-", dir="/var/tmp"))
    ps = Portside(work)
    reg = subprocess.Popen([ps.exe, "registry", "serve", "--addr", "127.0.0.1:0",
                            "--root", str(work / "registry")], env=ps.env,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out: dict[str, Any] = {}
    try:
        assert reg.stdout is not None
        host = reg.stdout.readline().split("://", 1)[-1].strip()
        if not host:
            raise NotAvailable("the registry did not start")
        ps.start()
        image = f"{host}/bench/busybox:1"
        ps("tag", "busybox", image)
        ps("push", image)
        env = {**ps.env, "COSIGN_PASSWORD": "bench"}
        for args in (["key", "generate", "--name", "k", "--dir", str(work)],
                     ["sign", "--key", str(work / "k.key"), image]):
            r = subprocess.run([ps.exe, *args], env=env, capture_output=True, text=True)
            if r.returncode != 0:
                raise NotAvailable(f"portside {args[0]}: {r.stderr.strip()[-160:]}")

        def run() -> None:
            ps("run", "--rm", "--network", "none", image, "true")
        ps.stop()  # each series on a daemon just started, so neither has the other's warmth
        ps.start()
        run()  # warm
        out["plain"] = timed_min(run, RUNS, IDLE) * 1000
        policy = {"default": [{"type": "reject"}],
                  "transports": {"docker": {f"{host}/bench": [
                      {"type": "sigstoreSigned", "keyPath": str(work / "k.pub"),
                       "signedIdentity": {"type": "matchRepository"}}]}}}
        (work / "policy.json").write_text(json.dumps(policy))
        ps.stop()
        ps.env["PORTSIDE_POLICY"] = str(work / "policy.json")
        ps.start()
        t = time.perf_counter()
        run()  # the first (and the warm-up): fetches and verifies the signature
        out["first"] = (time.perf_counter() - t) * 1000
        out["policy"] = timed_min(run, RUNS, IDLE) * 1000
        ctx.log(f"run --rm: {out['plain']:.0f} ms without a policy, {out['policy']:.0f} ms "
                f"under it once verified (the first, verifying, run {out['first']:.0f} ms)")
    finally:
        ps.stop()
        reg.terminate()
        reg.wait(30)
        subprocess.run(["umount", "-R", str(work)], capture_output=True, check=False)
    return out


@register("`portside run --rm` of a signed image under a sigstoreSigned policy vs no policy",
          goal=1.1, higher_is_better=False, order=24)
def run_under_policy(ctx: Context) -> Result:
    if not _CACHE:
        _CACHE.update(_measure(ctx))
    return Result(_CACHE["policy"], _CACHE["plain"], "ms", "the same run with no policy")


if __name__ == "__main__":
    sys.exit("run through `python -m benchmarks -k policy`")
