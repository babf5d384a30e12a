"""Benchmark: vectorized sampling + reward-to-go gradient estimates vs a per-step loop and the RNG ceiling.

Workload: 10^6 trajectories of length T = 20 on a 5-state, 3-action random MDP (gamma = 0.9),
each turned into its per-trajectory reward-to-go gradient estimate ``[S, A]`` (reduced on the fly
to the mean and the second moment, so that the work cannot be skipped).

Compared with
  (a) a plain per-step Python loop through the gymnasium view (``mdp.to_env()``), actions drawn
      with numpy, the same per-trajectory estimate formed with numpy at the end of each episode;
      timed on fewer episodes and reported as a rate;
  (b) drawing the uniforms the sampler consumes, and nothing else, with numpy
      (``Generator.random(out=buffer)`` in 10^5 chunks): 2 T per trajectory (the first state, T actions,
      T - 1 transitions). This is the practical ceiling of any inverse-CDF sampler.

Usage::

    python benchmarks/bench_sampling.py                 # full run, prints a markdown table
    python benchmarks/bench_sampling.py --n 200000      # quicker
    python benchmarks/bench_sampling.py --fused-only    # only the fused (numba) rows, (a) and (b)

The fused rows (``pglib.fused``, needs numba) sample each trajectory and form its estimate in one
compiled pass over numpy uniforms (2 T per trajectory, the same count as the ceiling (b)); their
JIT compile time is measured separately, in a fresh process with an empty numba cache, and is
not in the rates.

Each vectorized configuration runs in a fresh subprocess so that its peak resident memory
(``ru_maxrss``) is its own. Timings are the best of ``--repeats`` runs (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import torch

S, A, T, GAMMA = 5, 3, 20, 0.9


def problem():
    from pglib import mdp

    m = mdp.random_mdp(S, A, seed=0, gamma=GAMMA, horizon=T)
    logits = torch.randn(S, A, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    return m, logits


def vectorized(n: int, chunk: int, threads: int, repeats: int) -> dict:
    from pglib import estimators, sampling

    torch.set_num_threads(threads)
    m, logits = problem()
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    best, best_cpu = float("inf"), float("inf")
    for r in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        total = torch.zeros(S, A, dtype=torch.float64)
        total_sq = torch.zeros(S, A, dtype=torch.float64)
        for traj in sampling.iter_trajectories(m, logits, n, chunk_size=chunk, seed=r):
            est = estimators.reinforce(traj, logits, GAMMA)  # [chunk, S, A]
            total += est.sum(0)
            total_sq += (est * est).sum(0)
        best, best_cpu = min(best, time.perf_counter() - t0), min(best_cpu, time.process_time() - c0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return dict(n=n, chunk=chunk, threads=threads, seconds=best, rate=n * T / best, cpu=best_cpu, cpu_rate=n * T / best_cpu,
                peak_rss_mb=peak / 1024, rss_growth_mb=(peak - base_rss) / 1024,
                mean_norm=float((total / n).norm()))


def fused_worker(n: int, chunk: int, batch: int, repeats: int) -> dict:
    """pglib.fused: one compiled pass per trajectory. batch=0: reinforce_moments (streamed, sum and sum of
    squares per chunk); batch=1: reinforce_estimates ([N, S, A] held), then the same two sums with numpy."""
    from pglib import fused

    m, logits = problem()
    t0 = time.perf_counter()
    fused.reinforce_moments(m, logits, 10, seed=0) if not batch else fused.reinforce_estimates(m, logits, 10, seed=0)
    compile_s = time.perf_counter() - t0
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    best, best_cpu = float("inf"), float("inf")
    for r in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        if batch:
            est = fused.reinforce_estimates(m, logits, n, seed=r, chunk_size=chunk).reshape(n, -1)
            total, total_sq = est.sum(0), np.einsum("ij,ij->j", est, est)
            mean = total / n
            del est
        else:
            mean = fused.reinforce_moments(m, logits, n, seed=r, chunk_size=chunk).mean
        best, best_cpu = min(best, time.perf_counter() - t0), min(best_cpu, time.process_time() - c0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return dict(n=n, chunk=chunk if not batch else n, threads=1, seconds=best, rate=n * T / best, cpu=best_cpu,
                cpu_rate=n * T / best_cpu, compile_s=compile_s, peak_rss_mb=peak / 1024,
                rss_growth_mb=(peak - base_rss) / 1024, mean_norm=float(np.linalg.norm(mean)))


def python_loop(episodes: int, seed: int = 0) -> dict:
    """One env, one step at a time: what a first implementation looks like."""
    m, logits = problem()
    env = m.to_env()
    pi = torch.softmax(logits, -1).numpy()
    rng = np.random.default_rng(seed)
    total = np.zeros((S, A))
    t0, c0 = time.perf_counter(), time.process_time()
    steps = 0
    for ep in range(episodes):
        s, _ = env.reset(seed=seed * 10**6 + ep)
        states, actions, rewards = [], [], []
        done = False
        while not done:
            a = int(rng.choice(A, p=pi[s]))
            s_next, r, terminated, truncated, _ = env.step(a)
            states.append(s), actions.append(a), rewards.append(r)
            s, done = s_next, terminated or truncated
            steps += 1
        g, G = np.zeros((S, A)), 0.0
        for t in range(len(rewards) - 1, -1, -1):  # reward-to-go, then gamma^t G_t * score
            G = rewards[t] + GAMMA * G
            score = -pi[states[t]].copy()
            score[actions[t]] += 1.0
            g[states[t]] += GAMMA**t * G * score
        total += g
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return dict(episodes=episodes, steps=steps, seconds=seconds, rate=steps / seconds, cpu=cpu, cpu_rate=steps / cpu)


def numpy_uniforms(n: int, repeats: int, chunk: int = 100_000) -> dict:
    """The ceiling: 2 T float64 uniforms per trajectory and nothing else."""
    count = 2 * T * n
    rng = np.random.default_rng(0)
    buf = np.empty(min(chunk * 2 * T, count))
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        left = count
        while left > 0:
            k = min(left, buf.size)
            rng.random(out=buf[:k])
            left -= k
        best, best_cpu = min(best, time.perf_counter() - t0), min(best_cpu, time.process_time() - c0)
    return dict(uniforms=count, seconds=best, rate=n * T / best, cpu=best_cpu, cpu_rate=n * T / best_cpu)


def torch_uniforms(n: int, repeats: int, chunk: int = 100_000) -> dict:
    """The same count drawn with the torch generator the sampler uses (one thread)."""
    torch.set_num_threads(1)
    count = 2 * T * n
    g = torch.Generator().manual_seed(0)
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        left = count
        while left > 0:
            k = min(left, chunk * 2 * T)
            torch.rand(k, generator=g, dtype=torch.float64)
            left -= k
        best, best_cpu = min(best, time.perf_counter() - t0), min(best_cpu, time.process_time() - c0)
    return dict(uniforms=count, seconds=best, rate=n * T / best, cpu=best_cpu, cpu_rate=n * T / best_cpu)


def run_worker(n: int, chunk: int, threads: int, repeats: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", str(n), str(chunk), str(threads), str(repeats)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_fused_worker(n: int, chunk: int, batch: int, repeats: int) -> dict:
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as cache:  # an empty numba cache: the first call really compiles
        out = subprocess.run([sys.executable, __file__, "--fused-worker", str(n), str(chunk), str(batch), str(repeats)],
                             check=True, capture_output=True, text=True, env=os.environ | {"NUMBA_CACHE_DIR": cache})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10**6, help="trajectories (default 10^6)")
    ap.add_argument("--chunk", type=int, default=100_000, help="trajectories per streamed chunk")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--loop-episodes", type=int, default=2000)
    ap.add_argument("--fused-chunk", type=int, default=8192, help="trajectories per chunk of the fused path")
    ap.add_argument("--fused-only", action="store_true", help="only the fused rows, (a) and (b)")
    ap.add_argument("--worker", nargs=4, type=int, help=argparse.SUPPRESS)
    ap.add_argument("--fused-worker", nargs=4, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(vectorized(*args.worker)))
        return
    if args.fused_worker:
        print(json.dumps(fused_worker(*args.fused_worker)))
        return

    rows = []
    if not args.fused_only:
        for threads in (1, 2):
            rows.append(("vectorized, streamed", run_worker(args.n, args.chunk, threads, args.repeats)))
        rows.append(("vectorized, one batch", run_worker(args.n, args.n, 1, 1)))
    try:
        import numba  # noqa: F401
        fused_rows = [("fused (numba), reinforce_moments, streamed", run_fused_worker(args.n, args.fused_chunk, 0, args.repeats)),
                      ("fused (numba), reinforce_estimates, one [N,S,A] batch",
                       run_fused_worker(args.n, args.fused_chunk, 1, args.repeats))]
    except ImportError:
        fused_rows = []
        print("numba is not installed: no fused rows (pip install numba==0.68.1)")
    rows += fused_rows
    loop = python_loop(args.loop_episodes)
    ceiling = numpy_uniforms(args.n, args.repeats)
    trand = None if args.fused_only else torch_uniforms(args.n, args.repeats)

    print(f"workload: N={args.n} trajectories x T={T} steps, S={S}, A={A}, gamma={GAMMA}; "
          f"torch {torch.__version__}, numpy {np.__version__}; best of {args.repeats}")
    print()
    print("Rates in transitions/s, by wall clock and by the process's CPU time (the machine is shared;")
    print("CPU time is what the work costs when it has a core to itself). Ratios use CPU-time rates.")
    print()
    print("| what | threads | chunk | wall s | CPU s | rate (wall) | rate (CPU) | vs loop | numpy ceiling / this | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    ref, top = loop["cpu_rate"], ceiling["cpu_rate"]

    def line(label, r, threads="1", chunk="-", rss="-"):
        print(f"| {label} | {threads} | {chunk} | {r['seconds']:.2f} | {r['cpu']:.2f} | {r['rate']:.3g} | "
              f"{r['cpu_rate']:.3g} | {r['cpu_rate'] / ref:.0f}x | {top / r['cpu_rate']:.2f} | {rss} |")

    for label, r in rows:
        line(label, r, r["threads"], r["chunk"], f"{r['peak_rss_mb']:.0f}")
    line(f"(a) per-step Python loop, gymnasium view ({loop['episodes']} episodes)", loop)
    line(f"(b) numpy uniforms only, 2T per trajectory ({ceiling['uniforms']:.2g} draws)", ceiling)
    if trand is not None:
        line("torch uniforms only (the sampler's generator)", trand)
    print()
    for label, r in fused_rows:
        print(f"{label}: JIT compile (first call, empty numba cache) {r['compile_s']:.2f} s, not in the rates; "
              f"numpy ceiling / this = {top / r['cpu_rate']:.2f} (CPU), {ceiling['rate'] / r['rate']:.2f} (wall)")
    if not args.fused_only:
        one = rows[2][1]
        print(f"process RSS before any sampling (imports only) is in the 'one batch' worker's baseline: "
              f"{one['peak_rss_mb'] - one['rss_growth_mb']:.0f} MB")


if __name__ == "__main__":
    main()
