"""Time to a verified solve of CartPole-v1: pglib's REINFORCE vs Stable-Baselines3 PPO and A2C,
each tuned for wall-clock with the same budget (sweep_cartpole.py) and, for the peers, also with
RL-Zoo's settings.

One protocol for every method (``verified_solve`` below):

- **Solved** = the mean undiscounted return of the *current* policy on 20 fresh episodes of a
  separate environment (reset seeds 10000-10019, actions sampled from the policy with a numpy
  generator seeded 10000) is >= 475, checked every 5000 simulated steps.
- **Wall-clock** = training time from building the environments and the model to the solving
  check, with the evaluation time taken out (reported apart).
- **Steps** = environment steps simulated (pglib's lockstep waste included: finished
  environments keep stepping until the batch's longest episode ends), beside the steps used.

Every method runs in this one process with ``torch.set_num_threads(1)``; the methods are
interleaved seed by seed (rotating their order), so machine load falls on all of them alike.
Seeds 0-9 here; the sweep used seeds 100 and up. Not a timed test.

    python benchmarks/bench_cartpole.py                 # 10 seeds, every method
    python benchmarks/bench_cartpole.py --seeds 2 --methods pglib ppo_zoo   # a quick look
"""

from __future__ import annotations

import argparse
import sys
import json
import pathlib
import platform
import time

import gymnasium as gym
import numpy as np
import torch

from pglib.practice.rollout import evaluate
from pglib.practice.train import Config, train

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
ENV_ID = "CartPole-v1"
THRESHOLD = gym.spec(ENV_ID).reward_threshold  # 475
EVAL = dict(every=Config().eval_every, episodes=Config().eval_episodes, seed=Config().eval_seed)

# rl-baselines3-zoo, hyperparams/ppo.yml and a2c.yml, entry CartPole-v1 (n_timesteps is the budget;
# PPO's linear schedules decay over it).
ZOO = {
    "ppo": dict(n_envs=8, n_timesteps=100_000, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98,
                n_epochs=20, ent_coef=0.0, learning_rate="lin_0.001", clip_range="lin_0.2"),
    "a2c": dict(n_envs=8, n_timesteps=500_000, ent_coef=0.0),
}


def linear(start: float):
    return lambda progress_remaining: progress_remaining * start


def warm_up() -> None:
    """One thread for torch; a tiny run of each method so that imports and lazy init are not timed."""
    torch.set_num_threads(1)
    train(Config(total_steps=500, num_envs=2, progress=False))
    run_sb3("ppo", dict(n_envs=2, n_steps=16, batch_size=32, n_epochs=1), 0, 64)
    run_sb3("a2c", dict(n_envs=2), 0, 64)


def run_pglib(setting: dict, seed: int, budget: int) -> dict:
    """One pglib run (``Config(**setting)``), to a verified solve or ``budget`` simulated steps."""
    start = time.perf_counter()
    _, h = train(Config(seed=seed, total_steps=budget, progress=False, **setting))
    total = time.perf_counter() - start
    return dict(solved=h.solved, seconds=total - h.eval_seconds if h.solved else None,
                steps_simulated=h.solved_at_simulated, steps_used=h.solved_at_step,
                eval_seconds=h.eval_seconds, evaluations=len(h.eval_returns), total_seconds=total,
                budget_simulated=h.simulated_steps[-1])


def sb3_actor(model, seed: int):
    """``obs -> actions`` sampled from an SB3 policy's action probabilities with numpy (so that the
    evaluation neither uses nor moves torch's random stream, which SB3's training draws from)."""
    rng = np.random.default_rng(seed)

    def act(obs):
        with torch.no_grad():
            obs_t, _ = model.policy.obs_to_tensor(obs)
            probs = model.policy.get_distribution(obs_t).distribution.probs.double().cpu().numpy()
        u = rng.random((len(probs), 1))
        return np.minimum((probs.cumsum(-1) < u).sum(-1), probs.shape[-1] - 1)

    return act


def run_sb3(algo: str, setting: dict, seed: int, budget: int | None = None) -> dict:
    """One SB3 run of ``algo`` with ``setting`` (SB3 keyword arguments plus ``n_envs`` and, for
    the zoo, ``n_timesteps``), to a verified solve or its budget, under the protocol above."""
    from stable_baselines3 import A2C, PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    class VerifiedSolve(BaseCallback):
        def __init__(self):
            super().__init__()
            self.next_eval, self.eval_seconds, self.evaluations, self.solved_at = EVAL["every"], 0.0, 0, None

        def _on_step(self) -> bool:
            if self.num_timesteps < self.next_eval:
                return True
            self.next_eval += EVAL["every"] * (1 + (self.num_timesteps - self.next_eval) // EVAL["every"])
            t = time.perf_counter()
            mean = evaluate(sb3_actor(self.model, EVAL["seed"]), ENV_ID, EVAL["episodes"], EVAL["seed"]).mean()
            self.eval_seconds += time.perf_counter() - t
            self.evaluations += 1
            if mean >= THRESHOLD:
                self.solved_at = self.num_timesteps
            return self.solved_at is None

    hp = dict(setting)
    n_envs, zoo_budget = hp.pop("n_envs"), hp.pop("n_timesteps", None)
    budget = zoo_budget or budget
    for key in ("learning_rate", "clip_range"):
        if isinstance(hp.get(key), str):
            hp[key] = linear(float(hp[key][4:]))
    start = time.perf_counter()
    env = make_vec_env(ENV_ID, n_envs=n_envs, seed=seed)
    model = (PPO if algo == "ppo" else A2C)("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **hp)
    cb = VerifiedSolve()
    model.learn(budget, callback=cb)
    total = time.perf_counter() - start
    env.close()
    solved = cb.solved_at is not None
    return dict(solved=solved, seconds=total - cb.eval_seconds if solved else None,
                steps_simulated=cb.solved_at, steps_used=cb.solved_at, eval_seconds=cb.eval_seconds,
                evaluations=cb.evaluations, total_seconds=total, budget_simulated=budget)


def run(method: str, setting: dict, seed: int, budget: int) -> dict:
    algo = method.split("_")[0]
    return run_pglib(setting, seed, budget) if algo == "pglib" else run_sb3(algo, setting, seed, budget)


def run_in_worker(method: str, setting: dict, seed: int, budget: int) -> dict:
    """:func:`run` in a fresh Ray worker: one torch thread and the one-time warm-up first."""
    torch.set_num_threads(1)
    warm_up()
    return run(method, setting, seed, budget)


def median_inf(values) -> float | None:
    """Median with an unsolved run (None) counted as slower than every solved one; None if the
    median itself is unsolved."""
    m = float(np.median([np.inf if v is None else v for v in values]))
    return None if np.isinf(m) else m


def summarize(runs: list[dict]) -> dict:
    out = {"solved": f"{sum(r['solved'] for r in runs)}/{len(runs)}"}
    for key in ("seconds", "steps_simulated", "steps_used", "eval_seconds"):
        vals = [r[key] for r in runs]
        solved = [v for v in vals if v is not None]
        out[key] = dict(median=median_inf(vals), min=min(solved, default=None), max=max(solved, default=None))
    return out


def tuned(method: str) -> dict:
    """The setting sweep_cartpole.py chose for ``method`` (its committed result)."""
    path = RESULTS / f"cartpole_sweep_{method}.json"
    return json.loads(path.read_text())["chosen"]["setting"]


def methods() -> dict:
    out = {}
    for name in ("pglib", "ppo", "a2c"):
        try:
            out[f"{name}_tuned"] = tuned(name)
        except FileNotFoundError:
            print(f"no sweep result for {name}: run benchmarks/sweep_cartpole.py --methods {name}")
    out["ppo_zoo"], out["a2c_zoo"] = ZOO["ppo"], ZOO["a2c"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budget", type=int, default=300_000, help="simulated steps (zoo: its n_timesteps)")
    ap.add_argument("--methods", nargs="*", default=None, help="subset of the methods")
    ap.add_argument("--part", type=int, nargs=2, default=None, metavar=("K", "P"),
                    help="run only the seeds with seed %% P == K (P processes share the run)")
    ap.add_argument("--merge", type=int, metavar="P", help="combine the P parts' results")
    ap.add_argument("--out", default=str(RESULTS / "cartpole.json"))
    ap.add_argument("--ray", action="store_true",
                    help="one Ray task per method x seed (all cores, or RAY_ADDRESS's cluster); the "
                         "times then come from runs that share the machine, so compare them only "
                         "with each other")
    args = ap.parse_args()
    if args.merge:
        parts = [json.loads((RESULTS / f"cartpole_part{k}.json").read_text()) for k in range(args.merge)]
        results = dict(parts[0], parts=[{k: p[k] for k in ("load_average_at_start", "load_average_at_end")}
                                        for p in parts])
        results["runs"] = {name: sorted((r for p in parts for r in p["runs"][name]), key=lambda r: r["seed"])
                           for name in parts[0]["runs"]}
        return report(results, args.out)
    warm_up()
    todo = {k: v for k, v in methods().items() if args.methods is None or k in args.methods}
    results = {"machine": f"{platform.processor() or platform.machine()}, 1 torch thread",
               "load_average_at_start": load_average(), "protocol": dict(threshold=THRESHOLD, **EVAL),
               "budget": args.budget, "settings": todo, "runs": {k: [] for k in todo}}
    names = list(todo)
    seeds = [s for s in range(args.seeds) if args.part is None or s % args.part[1] == args.part[0]]
    out = args.out if args.part is None else str(RESULTS / f"cartpole_part{args.part[0]}.json")
    if args.ray:  # every method x seed as one task (tools/raymap.py); results in seed order
        sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tools"))
        from raymap import run_calls

        pairs = [(name, seed) for seed in seeds for name in names]
        done = run_calls(run_in_worker, [((name, todo[name], seed, args.budget), {}) for name, seed in pairs],
                         use_ray=True, on_result=lambda i, r: print(*pairs[i], r, flush=True))
        for (name, seed), r in zip(pairs, done):
            results["runs"][name].append(dict(seed=seed, **r))
        results["load_average_at_end"] = load_average()
        seeds = []  # nothing left for the sequential loop
    for seed in seeds:
        for name in names[seed % len(names):] + names[:seed % len(names)]:  # rotate the order
            r = run(name, todo[name], seed, args.budget)
            results["runs"][name].append(dict(seed=seed, **r))
            print(name, seed, {k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()}, flush=True)
        results["load_average_at_end"] = load_average()
        pathlib.Path(out).write_text(json.dumps(results, indent=1, default=str))  # after every seed
    if args.part is None:
        report(results, out)


def load_average() -> list[str]:
    path = pathlib.Path("/proc/loadavg")
    return path.read_text().split()[:3] if path.exists() else []


def report(results: dict, out: str) -> None:
    results["summary"] = {k: summarize(v) for k, v in results["runs"].items()}
    s, ratios = results["summary"], {}
    for peer in ("ppo_tuned", "ppo_zoo", "a2c_tuned", "a2c_zoo"):
        if peer in s and "pglib_tuned" in s and s[peer]["seconds"]["median"] and s["pglib_tuned"]["seconds"]["median"]:
            ratios[peer] = s[peer]["seconds"]["median"] / s["pglib_tuned"]["seconds"]["median"]
    results["ratio_peer_over_pglib_median_seconds"] = ratios
    pathlib.Path(out).write_text(json.dumps(results, indent=1, default=str))
    print(json.dumps(results["summary"], indent=1))
    print("peer / pglib median wall-clock to a verified solve:", ratios)


if __name__ == "__main__":
    main()
