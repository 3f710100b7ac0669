"""Time and peak memory of snnkit's DelayedLinear against dcls's dense Dcls1d (Hammouamri et al. ICLR 2024).

Layer sizes of the paper: SHD (140 -> 256, max delay 25) and SSC (512 -> 512, max delay 31), batch 256, 100 steps.
Modes, each for both implementations on the same weights, delays and input:

* ``train sigma=<D//2>``  forward + backward (gradients for x, weights and delays) at the schedule's first width
* ``train sigma=0.23``    the same at the schedule's last width (DelayedLinear touches 3 taps per synapse)
* ``train sigma=0.5``     width 0.5 = dcls's ``SIG = 0.23`` (dcls adds 0.27 inside its kernel; 7 taps here)
* ``inference``           forward without gradients: integer delays for DelayedLinear (one tap per synapse), the
                          dense kernel for Dcls1d (it has no integer mode; its cost does not depend on SIG)

Times are the best of ``--repeats`` runs after a warm-up, the two implementations' runs alternating. Dcls1d runs as in the paper's time-first use: permute to ``[B, C, T]``, left-pad by ``D - 1``, convolve, permute
back. Each row also checks the results: the largest difference to the dense oracle (``snnkit.ops.delayed_linear.
naive``) relative to the output's largest value, and to Dcls1d where dcls computes the same thing (train rows with
width >= 0.27). Peak memory: ``torch.cuda.max_memory_allocated`` above the inputs on CUDA; on CPU the peak of the
bytes torch allocated during the call (from the profiler's allocation events).

    python scripts/bench_delay.py                       # full sizes on the default device
    python scripts/bench_delay.py --small --threads 1   # batch 16: about a minute on one CPU core
    python scripts/bench_delay.py --batch 32 --time 50 --configs shd --out bench_delay.json

Prints a table and writes JSON with the device name, versions and every measurement.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone

import torch
import torch.nn.functional as F

from snnkit.benchmark import cpu_peak_bytes, cuda_peak_bytes, device_name, environment, time_interleaved, write_json
from snnkit.layers import DelayedLinear
from snnkit.ops.delayed_linear import delayed_linear_naive

CONFIGS = {"shd": (140, 256, 25), "ssc": (512, 512, 31)}


def make_dcls(c_in: int, c_out: int, D: int, layer: DelayedLinear, device: torch.device):
    from DCLS.construct.modules import Dcls1d

    m = Dcls1d(c_in, c_out, kernel_count=1, dilated_kernel_size=D, version="gauss", bias=False).to(device)
    with torch.no_grad():
        m.P.copy_(layer.dcls_parameters()["P"])
        m.weight.copy_(layer.weight.detach().unsqueeze(-1))
    return m


def dcls_forward(m, x: torch.Tensor, D: int) -> torch.Tensor:
    return m(F.pad(x.permute(1, 2, 0), (D - 1, 0))).permute(2, 0, 1)


def _peak(step, device: torch.device) -> int:
    peak = cuda_peak_bytes(step, device)
    return cpu_peak_bytes(step) if peak is None else peak


def measure_pair(ours, theirs, device: torch.device, repeats: int):
    """For both steps: the best (smallest) seconds over ``repeats`` runs after one warm-up, the runs of the two
    alternating so that both see the same load on a shared machine; then the peak memory and the output."""
    out_ours, out_theirs = ours(), theirs()  # warm-up: kernel compilation, allocator
    ms = time_interleaved({"ours": ours, "theirs": theirs}, device, repeats, warmup=0, statistic=min)
    return ((ms["ours"] / 1e3, _peak(ours, device), out_ours),
            (ms["theirs"] / 1e3, _peak(theirs, device), out_theirs))


def run_config(name: str, B: int, T: int, device: torch.device, repeats: int, seed: int) -> list[dict]:
    c_in, c_out, D = CONFIGS[name]
    g = torch.Generator().manual_seed(seed)
    layer = DelayedLinear(c_in, c_out, D, generator=g).to(device)
    dcls = make_dcls(c_in, c_out, D, layer, device)
    x = (torch.rand(T, B, c_in, generator=g) < 0.1).float().to(device)  # spikes, ~10% density
    gy = torch.randn(T, B, c_out, generator=g).to(device)
    rows = []
    modes = [("train", float(D // 2)), ("train", 0.23), ("train", 0.5), ("inference", None)]
    for mode, sigma in modes:
        if mode == "train":
            layer.train()
            layer.set_sigma(sigma)
            with torch.no_grad():
                dcls.SIG.fill_(max(sigma - 0.27, 0.0))
        else:
            layer.eval()

        def ours(mode=mode):
            if mode == "inference":
                with torch.no_grad():
                    return layer(x)
            xr = x.detach().requires_grad_()
            y = layer(xr)
            y.backward(gy)
            layer.zero_grad(set_to_none=True)
            return y.detach()

        def theirs(mode=mode):
            if mode == "inference":
                with torch.no_grad():
                    return dcls_forward(dcls, x, D)
            xr = x.detach().requires_grad_()
            y = dcls_forward(dcls, xr, D)
            y.backward(gy)
            dcls.zero_grad(set_to_none=True)
            return y.detach()

        (t_ours, m_ours, y_ours), (t_dcls, m_dcls, y_dcls) = measure_pair(ours, theirs, device, repeats)
        with torch.no_grad():
            ref = delayed_linear_naive(x, layer.weight, layer.positions, D, sigma if mode == "train" else None)
        scale = ref.abs().max().clamp_min(1e-30)
        err_oracle = ((y_ours - ref).abs().max() / scale).item()
        err_dcls = ((y_ours - y_dcls).abs().max() / scale).item() if mode == "train" and sigma >= 0.27 else None
        rows.append({
            "config": name, "B": B, "T": T, "in": c_in, "out": c_out, "max_delay": D, "mode": mode, "sigma": sigma,
            "ours_s": t_ours, "dcls_s": t_dcls, "speedup": t_dcls / t_ours,
            "ours_peak_bytes": m_ours, "dcls_peak_bytes": m_dcls,
            "rel_err_vs_oracle": err_oracle, "rel_err_vs_dcls": err_dcls,
        })
        r = rows[-1]
        label = f"{mode} sigma={sigma:g}" if sigma is not None else mode
        print(f"| {name} | {label} | {t_ours * 1e3:9.1f} | {t_dcls * 1e3:9.1f} | {r['speedup']:6.2f}x | "
              f"{m_ours / 2**20:8.1f} | {m_dcls / 2**20:8.1f} | {err_oracle:.1e} | "
              f"{'-' if err_dcls is None else f'{err_dcls:.1e}'} |", flush=True)
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", nargs="+", default=["shd", "ssc"], choices=sorted(CONFIGS))
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--time", type=int, default=100)
    ap.add_argument("--small", action="store_true", help="batch 16 (CPU in about a minute)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench_delay.json")
    args = ap.parse_args(argv)
    if args.small:
        args.batch = min(args.batch, 16)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"device: {device_name(device)} ({device}), threads {torch.get_num_threads()}, B={args.batch}, "
          f"T={args.time}")
    print("| config | mode | DelayedLinear ms | Dcls1d ms | speedup | ours MiB | dcls MiB | err vs oracle | "
          "err vs dcls |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    for name in args.configs:
        rows += run_config(name, args.batch, args.time, device, args.repeats, args.seed)
    result = {
        **environment(device), "device_type": device.type, "threads": torch.get_num_threads(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "batch": args.batch, "time": args.time,
        "repeats": args.repeats, "rows": rows,
    }
    write_json(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
