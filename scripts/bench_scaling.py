"""Engine throughput vs block size and vs device count (forced host devices on CPU).

    python scripts/bench_scaling.py [--samples 1048576] [--devices 1 2 4] [--json out.json]

Device counts run in subprocesses with XLA_FLAGS=--xla_force_host_platform_device_count=N
(on a multi-GPU host pass --real to use the real devices instead). On a CPU all forced
devices share the host's cores (XLA:CPU splits every kernel over all of them, and
jax 0.10 ignores --xla_cpu_multi_thread_eigen=false), so forced devices test the
multi-device code path, not scaling. Median of --repeats runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

CHILD = r"""
import sys, time, json, numpy as np, jax, yieldmc
from yieldmc.io.config import problem_from_config
from yieldmc.engine.blocks import accumulate
samples, block, ndev, overrides = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
p = problem_from_config(yieldmc.compose(overrides + [f"samples={samples}", f"engine.block_size={block}",
                                                      "engine.blocks_per_call=4"]))
accumulate(p, range(min(p.n_blocks, 2 * ndev)), n_devices=ndev)  # compile on every device
walls = []
for _ in range(int(__import__("os").environ.get("BENCH_REPEATS", "3"))):
    t = time.perf_counter(); accumulate(p, range(p.n_blocks), n_devices=ndev); walls.append(time.perf_counter() - t)
dt = float(np.median(walls))
print(json.dumps({"block_size": block, "devices": ndev, "seconds": dt, "modules_per_s": samples / dt,
                  "device_kind": jax.devices()[0].device_kind, "available": jax.device_count()}))
"""


def run(samples, block, ndev, overrides, force, repeats=3):
    env = dict(os.environ, BENCH_REPEATS=str(repeats))
    env.pop("JAX_NUM_CPU_DEVICES", None)
    if force:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={max(ndev, 1)}"
        env["JAX_PLATFORMS"] = "cpu"
    out = subprocess.run([sys.executable, "-c", CHILD, str(samples), str(block), str(ndev), *overrides],
                         capture_output=True, text=True, env=env)
    if out.returncode:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=1 << 20)
    ap.add_argument("--blocks", type=int, nargs="+", default=[2048, 8192, 16384, 65536])
    ap.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--real", action="store_true", help="use the real devices, not forced host devices")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    rows = []
    for b in args.blocks:
        rows.append(run(args.samples, b, 1, args.overrides, not args.real, repeats=args.repeats))
        print(f"block {b:6d}: {rows[-1]['modules_per_s']:10.4g} modules/s", flush=True)
    base = None
    for d in args.devices:
        r = run(args.samples, 16384, d, args.overrides, not args.real, args.repeats)
        base = base or r["modules_per_s"]
        r["scaling_vs_1"] = r["modules_per_s"] / base
        rows.append(r)
        print(f"devices {d}: {r['modules_per_s']:10.4g} modules/s, x{r['scaling_vs_1']:.2f} "
              f"(ideal x{d}, {r['scaling_vs_1'] / d:.2f} of linear)", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"overrides": args.overrides, "rows": rows, "time": time.ctime()}, fh, indent=2)


if __name__ == "__main__":
    main()
