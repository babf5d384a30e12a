"""Time-to-solve CartPole-v1: pglib's REINFORCE vs Stable-Baselines3 PPO and A2C (RL-Zoo hyperparameters).

Solved = the mean undiscounted return of the last 20 finished training episodes is >= 475
(pglib's Config().solve_window and CartPole-v1's reward_threshold; pglib's train stops at the solve).
Every method runs in this one process, on this machine, one seed after another, with
torch.set_num_threads(1) for all of them (small networks; 2-core machines). Wall-clock is
measured from building the environments and the model to the solve (imports and torch's
one-time lazy initialization are warmed up before any timing, by warm_up(), which
sweep_cartpole.py shares along with run_pglib). Not a timed test.

    python benchmarks/bench_cartpole.py                    # 10 pglib seeds, 5 each for PPO and A2C
    python benchmarks/bench_cartpole.py --seeds 3 --sb3-seeds 1 --skip-a2c   # a quick look
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import time

import gymnasium as gym
import numpy as np
import torch

from pglib.train import Config, solve_point, train

THRESHOLD = gym.spec("CartPole-v1").reward_threshold  # 475
WINDOW = Config().solve_window  # 20
# pglib's setting here: still vanilla REINFORCE (reward-to-go, learned value baseline, advantage
# normalization, one policy gradient step per batch of 22 fresh whole episodes), tuned for wall-clock to
# solve: 22 environments (one episode each) per update, 32-32 networks, Adam 0.04 for policy and value,
# one value-regression step per update. Chosen on seeds 100-159, which the benchmark does not use (59/60
# solved, median 0.265 s, 45.8k steps there; the previous setting, 12 envs with Adam 0.03: 0.345 s, 39.7k).
# See README.md for the sweep. Config() defaults: 52k steps, 10/10.
PGLIB = dict(num_envs=22, hidden=(32, 32), lr=0.04, value_lr=0.04, value_steps=1)

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
    """One thread for torch, and a tiny training run so that imports and torch's lazy init are not timed."""
    torch.set_num_threads(1)
    train(Config(total_steps=500, num_envs=2, progress=False))


def run_pglib(seed: int, max_steps: int, **overrides) -> dict:
    """One pglib run with the PGLIB setting (``overrides`` replace its keys or add Config fields). Training
    stops at the solve, so the elapsed time from building the environments to train's return is the time
    to solve (seconds; None if unsolved within max_steps)."""
    start = time.perf_counter()
    _, h = train(Config(seed=seed, total_steps=max_steps, progress=False, **(PGLIB | overrides)))
    elapsed = time.perf_counter() - start
    return dict(solved=h.solved, steps=h.solved_at_step, seconds=elapsed if h.solved else None, total_seconds=elapsed)


def run_sb3(algo: str, seed: int) -> dict:
    from stable_baselines3 import A2C, PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    class SolveCallback(BaseCallback):
        def __init__(self):
            super().__init__()
            self.returns, self.steps, self.solved_at = [], [], None

        def _on_step(self) -> bool:
            ended = False
            for info in self.locals["infos"]:
                if "episode" in info:  # Monitor wrapper: an episode just ended
                    self.returns.append(info["episode"]["r"])
                    self.steps.append(self.num_timesteps)
                    ended = True
            if ended and self.solved_at is None:  # the solve point can only move when an episode ends
                self.solved_at = solve_point(self.returns, self.steps, THRESHOLD, WINDOW)
            return self.solved_at is None

    hp = dict(ZOO[algo])
    n_envs, budget = hp.pop("n_envs"), hp.pop("n_timesteps")
    for key in ("learning_rate", "clip_range"):
        if isinstance(hp.get(key), str):
            hp[key] = linear(float(hp[key][4:]))
    start = time.perf_counter()
    env = make_vec_env("CartPole-v1", n_envs=n_envs, seed=seed)
    model = (PPO if algo == "ppo" else A2C)("MlpPolicy", env, seed=seed, device="cpu", verbose=0, **hp)
    cb = SolveCallback()
    model.learn(budget, callback=cb)
    seconds = time.perf_counter() - start
    return dict(solved=cb.solved_at is not None, steps=cb.solved_at, seconds=seconds if cb.solved_at else None,
                total_seconds=seconds)


def where_the_time_goes(num_envs: int = 16, calls: int = 2000) -> dict:
    """Microseconds per rollout step at batch num_envs: env step; torch policy + torch.distributions
    sampling (the slow path); pglib's numpy sampler (the path rollouts use)."""
    from pglib.policies import CategoricalMLP
    from pglib.rollout import make_vec_env

    envs = make_vec_env("CartPole-v1", num_envs)
    obs, _ = envs.reset(seed=0)
    pi, rng = CategoricalMLP(4, 2), np.random.default_rng(0)
    sampler = pi.sampler()

    def per_call(fn):
        fn()
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        return (time.perf_counter() - t) / calls * 1e6

    def torch_path():
        with torch.no_grad():
            return pi(obs).sample().numpy()

    actions = sampler(obs, rng)
    out = {"env_step_us": per_call(lambda: envs.step(actions)),
           "torch_distribution_sample_us": per_call(torch_path),
           "numpy_gumbel_sample_us": per_call(lambda: sampler(obs, rng))}
    envs.close()
    return {k: round(v, 1) for k, v in out.items()}


def summarize(runs: list[dict]) -> dict:
    solved = [r for r in runs if r["solved"]]
    out = {"solve_rate": f"{len(solved)}/{len(runs)}"}
    for key in ("seconds", "steps"):
        vals = np.array([r[key] for r in solved], dtype=float)
        out[key] = None if not len(vals) else dict(median=float(np.median(vals)), min=float(vals.min()), max=float(vals.max()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=10, help="pglib seeds (default 10)")
    ap.add_argument("--sb3-seeds", type=int, default=5, help="seeds for each SB3 algorithm (default 5)")
    ap.add_argument("--max-steps", type=int, default=300_000, help="pglib's step budget (default 300k)")
    ap.add_argument("--skip-a2c", action="store_true")
    ap.add_argument("--out", default="benchmarks/results/cartpole.json")
    args = ap.parse_args()

    warm_up()
    import stable_baselines3  # noqa: F401  (import outside the timings)

    results = {"machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch thread",
               "config": Config(**PGLIB).__dict__ | {"total_steps": args.max_steps}, "zoo": ZOO,
               "time_split_us_per_step_16_envs": where_the_time_goes(), "runs": {}}
    plan = [("pglib", args.seeds)] + [("ppo", args.sb3_seeds)] + ([] if args.skip_a2c else [("a2c", args.sb3_seeds)])
    for name, n in plan:
        results["runs"][name] = []
        for seed in range(n):
            r = run_pglib(seed, args.max_steps) if name == "pglib" else run_sb3(name, seed)
            results["runs"][name].append(dict(seed=seed, **r))
            print(name, seed, r, flush=True)
    results["summary"] = {k: summarize(v) for k, v in results["runs"].items()}
    s = results["summary"]
    if s["pglib"]["seconds"] and s["ppo"]["seconds"]:
        results["ratio_ppo_over_pglib_median_seconds"] = s["ppo"]["seconds"]["median"] / s["pglib"]["seconds"]["median"]
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.out).write_text(json.dumps(results, indent=1, default=str))
    print(json.dumps({k: results[k] for k in ("summary", "time_split_us_per_step_16_envs")}, indent=1))
    print("PPO / pglib median wall-clock:", results.get("ratio_ppo_over_pglib_median_seconds"))


if __name__ == "__main__":
    main()
