"""``isac-market evaluate``: any SB3 model or rule-based policy on the same held-out seeds; on
the multi-agent market (``--env isac_market_v0``), FRBank's rule or RLlib policies per agent
type."""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from isac_market_env.envs import ENV_IDS
from isac_market_env.metrics.episode import client_utility
from isac_market_env.runs import Progress, env_id_argument, mean_ci95, write_atomic

RULES = ("frbank", "fixed", "newsvendor")
HELD_OUT_FIRST_SEED = 1_000_000  # training and evaluation seeds never overlap
MULTI_AGENT_ENV = "isac_market_v0"


def evaluate_env_argument(text: str) -> str:
    """argparse type of evaluate's ``--env``: a Gymnasium id or the multi-agent market."""
    if text in (MULTI_AGENT_ENV, f"isac_market_env:{MULTI_AGENT_ENV}"):
        return MULTI_AGENT_ENV
    try:
        return env_id_argument(text)
    except argparse.ArgumentTypeError as error:
        raise argparse.ArgumentTypeError(f"{error}, or {MULTI_AGENT_ENV}") from None


def load_policy(spec: str, env_id: str, env_kwargs: dict[str, Any] | None = None) -> Any:
    """A rule-based policy by name (``fixed:RATE`` for another fixed rate), or an SB3 model.

    The overbooking rules are told the env's ``max_overbooking`` so that their rates are exact.
    """
    if env_id == MULTI_AGENT_ENV:
        return load_market_policies(spec, env_kwargs or {})
    name, _, argument = spec.partition(":")
    if name in RULES:
        from isac_market_env.baselines import make_policy

        if name == "frbank" and env_id != "ISACMarket-Bidding-v0":
            raise ValueError("the frbank policy bids: use it with ISACMarket-Bidding-v0")
        if name != "frbank" and env_id != "ISACMarket-Overbooking-v0":
            raise ValueError(f"the {name} policy sets overbooking rates: use it with "
                             "ISACMarket-Overbooking-v0")
        if argument and name != "fixed":
            raise ValueError(f"only the fixed policy takes an argument (fixed:RATE), got {spec}")
        if name == "frbank":
            return make_policy(name)
        kwargs: dict[str, Any] = {
            "max_overbooking": float((env_kwargs or {}).get("max_overbooking", 0.6))}
        if argument:
            try:
                kwargs["rate"] = float(argument)
            except ValueError as error:
                raise ValueError(f"fixed:RATE needs a number, got {spec}") from error
        return make_policy(name, **kwargs)
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"policy must be one of {', '.join(RULES)} or an SB3 model "
                                f"file; {spec} does not exist")
    try:
        from stable_baselines3 import PPO, SAC
    except ImportError as error:  # pragma: no cover
        raise ValueError("loading a model needs the [train] extra") from error
    classes: list[Any] = [PPO, SAC]
    try:
        from sb3_contrib import MaskablePPO

        classes.insert(0, MaskablePPO)
    except ImportError:  # pragma: no cover - sb3-contrib is optional
        pass
    for cls in classes:
        try:
            model = cls.load(path, device="cpu")
        except (ValueError, KeyError, TypeError, RuntimeError, AttributeError):
            continue
        _check_spaces(model, spec, env_id, env_kwargs or {})
        return model
    raise ValueError(f"{spec} is not a PPO, MaskablePPO or SAC model")


def load_market_policies(spec: str, env_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Per agent type a policy (a function from a batch of observations and masks to
    actions); the types without one play the rule. ``frbank``: every agent plays the rule;
    ``fixed:RATE``: the BSs (``bs_agents=True``) set RATE for both resources every period;
    an RLlib checkpoint of ``train.marl`` (a directory, or its ``final`` file naming one):
    its learned module per type, acting greedily."""
    from isac_market_env.envs.multiagent import AGENT_TYPES, agent_type, parallel_env

    env = parallel_env(**env_kwargs)
    name, _, argument = spec.partition(":")
    if spec == "frbank":
        return {}
    if name == "fixed":
        try:
            rate = float(argument)
        except ValueError as error:
            raise ValueError(f"fixed:RATE needs a number, got {spec}") from error
        if not env.bs_agents:
            raise ValueError("fixed:RATE sets the BSs' rates: give bs_agents=True in --config")
        action = int(env.rate_actions(np.full(2 * env.n_bss, rate))[0])  # B and P at RATE
        if action == 0:
            raise ValueError(f"fixed:{rate} is not one of the overbooking_levels "
                             f"{env.rate_levels.tolist()}")
        return {"bs": lambda observations, masks: [action] * len(observations)}
    path = Path(spec)
    if path.is_file():
        path = Path(path.read_text().strip())
    root = path / "learner_group" / "learner" / "rl_module"
    if not root.is_dir():
        raise FileNotFoundError(f"policy must be frbank, fixed:RATE or an RLlib checkpoint of "
                                f"train.marl (a directory with learner_group/); {spec} is none")
    try:
        from ray.rllib.core.rl_module.rl_module import RLModule
    except ImportError as error:  # pragma: no cover
        raise ValueError("loading RLlib policies needs the [marl] extra") from error
    policies: dict[str, Any] = {}
    for kind in AGENT_TYPES:
        if not (root / kind).is_dir():
            continue
        module = RLModule.from_checkpoint(str(root / kind))
        agent = next((a for a in env.possible_agents if agent_type(a) == kind), "")
        ours: Any = env.observation_spaces[agent]["observation"] if agent else None
        theirs = module.observation_space
        if isinstance(theirs, gym.spaces.Dict):  # RLlib's masking layout
            theirs = theirs["observations"]
        if ours is None or ours != theirs or module.action_space != env.action_spaces[agent]:
            raise ValueError(f"{spec}: its {kind} policy was trained on other spaces than "
                             f"{MULTI_AGENT_ENV} with these kwargs ({theirs} vs {ours})")
        policies[kind] = _greedy(module)
    if not policies:
        raise ValueError(f"{spec} holds no policy for mu, coalition or bs")
    return policies


def _greedy(module: Any) -> Any:
    """An RLlib module as a policy: the most likely allowed action for each observation."""
    import torch

    def act(observations: list[np.ndarray], masks: list[np.ndarray]) -> list[int]:
        batch = {"observations": torch.as_tensor(np.stack(observations)),
                 "action_mask": torch.as_tensor(np.stack(masks).astype(np.float32))}
        with torch.no_grad():
            logits = module.forward_inference({"obs": batch})["action_dist_inputs"]
        return [int(a) for a in logits.argmax(dim=-1).tolist()]

    return act


def _market_actions(policies: dict[str, Any], obs: dict[str, Any],
                    infos: dict[str, Any]) -> dict[str, int]:
    """Every agent's action: its type's policy (one batch per type) where there is one and
    the agent has a decision, else the rule's."""
    from isac_market_env.envs.multiagent import agent_type

    actions = {a: int(info["rule_action"]) for a, info in infos.items()}
    for kind, policy in policies.items():
        agents = [a for a in obs if agent_type(a) == kind
                  and obs[a]["action_mask"].sum() > 1]
        if agents:
            chosen = policy([obs[a]["observation"] for a in agents],
                            [obs[a]["action_mask"] for a in agents])
            actions.update(zip(agents, chosen, strict=True))
    return actions


@functools.lru_cache(maxsize=4096)
def _welfare_bound(env_kwargs_json: str, seed: int, n_periods: int) -> float:
    """The certified welfare bound of a seed's markets (the ``optimal`` row on every period's
    market; participation drifts as in the game, independently of what anyone does), kept
    for the next policy evaluated on the same seeds."""
    from isac_market_env.envs.multiagent import parallel_env
    from isac_market_env.market.periods import ContractPeriods
    from isac_market_env.market.variants import get_mechanism

    env = parallel_env(**json.loads(env_kwargs_json))
    periods = ContractPeriods(env.scenario_name, env.config, get_mechanism("optimal"), seed,
                              env.drift_std, env.eua_directory)
    bound = 0.0
    for _ in range(n_periods):
        s = periods.next_market(np.zeros(2 * env.n_bss)).run().summary()
        bound += s.get("welfare_upper_bound", s["social_welfare"])
        periods.drift()
    return bound


def evaluate_market_game(policies: dict[str, Any], seeds: list[int], env_kwargs: dict[str, Any],
                         welfare_bound: bool = True) -> list[dict[str, float]]:
    """One episode of the multi-agent market per seed. Per episode: SW, MU and BS utility,
    NI, ECIBC, the net welfare (SW minus the overhead's price), SW over the certified welfare
    bound of the same markets (the ``optimal`` row, every period), and how the MUs bid: their
    long-term contracts' payment over expected value, the share of their proposals that jump
    above the ascending bid, and the share of the rounds in which the rule would propose for
    an MU but it passes (dropping out early: bid shading in an ascending auction)."""
    from isac_market_env.envs.multiagent import parallel_env
    from isac_market_env.metrics.episode import episode_summary, net_welfare

    rows = []
    progress = Progress(len(seeds), "evaluate (episodes)")
    for seed in seeds:
        env = parallel_env(**env_kwargs)
        obs, infos = env.reset(seed=seed)
        markets: list[Any] = []
        steps, proposals, jumps, rule_proposals, dropouts = 0, 0, 0, 0, 0
        while env.agents:
            actions = _market_actions(policies, obs, infos)
            for agent in env.agents:  # the MUs the rule would propose for now
                if agent.startswith("mu_") and infos[agent]["rule_action"] != 0:
                    rule_proposals += 1
                    dropouts += actions[agent] == 0
            obs, _, _, _, infos = env.step(actions)
            clients, pays, rule_bids = env.last_proposals
            is_mu = clients < env.n_mus
            proposals += int(is_mu.sum())
            jumps += int((pays[is_mu] > rule_bids[is_mu] + 1e-12).sum())
            if env.market is not None and (not markets or markets[-1] is not env.market):
                markets.append(env.market)
            steps += 1
        totals: dict[str, float] = {}
        pay_to_value: list[float] = []
        for market in markets:
            s = episode_summary(market.signing, market.transactions)
            for key in ("social_welfare", "mu_utility", "bs_utility", "ni", "ecibc_j"):
                totals[key] = totals.get(key, 0.0) + s[key]
            totals["net_welfare"] = (totals.get("net_welfare", 0.0)
                                     + net_welfare(s, market.config.market))
            c = market.contracts
            mu = c.client < env.n_mus
            pay_to_value += (c.pay[mu] / market.book.sol_value[c.solution[mu]]).tolist()
        if welfare_bound:
            bound = _welfare_bound(json.dumps(env_kwargs, sort_keys=True, default=str), seed,
                                   len(markets))
            totals["welfare_bound"] = bound
            totals["sw_to_bound"] = (totals["social_welfare"] / bound if bound > 0
                                     else float("nan"))
        totals["mu_pay_to_value"] = float(np.mean(pay_to_value)) if pay_to_value else 0.0
        totals["mu_jump_bids"] = jumps / proposals if proposals else 0.0
        totals["mu_dropouts"] = dropouts / rule_proposals if rule_proposals else 0.0
        rows.append({"seed": seed, "steps": steps, **totals})
        progress.advance(f"seed {seed}")
    return rows


def _check_spaces(model: Any, spec: str, env_id: str, env_kwargs: dict[str, Any]) -> None:
    """A model trained on other spaces (another env, market size or env version) would act
    wrongly without any error (SB3's ``predict`` clips to the model's own action space)."""
    env = gym.make(env_id, **env_kwargs)
    try:
        for what in ("observation_space", "action_space"):
            ours, theirs = getattr(env, what), getattr(model, what)
            if ours != theirs:
                raise ValueError(f"{spec} was trained with {what} {theirs}, but {env_id} with "
                                 f"these settings has {ours}")
    finally:
        env.close()


def _predict(policy: Any, obs: np.ndarray, env: gym.Env[Any, Any]) -> Any:
    """The policy's deterministic action; maskable models get the env's action masks."""
    if type(policy).__name__ == "MaskablePPO":
        masks = env.get_wrapper_attr("action_masks")()
        return policy.predict(obs, deterministic=True, action_masks=masks)[0]
    return policy.predict(obs, deterministic=True)[0]


def evaluate(policy: Any, env_id: str, seeds: list[int], env_kwargs: dict[str, Any],
             welfare_bound: bool = True) -> list[dict[str, float]]:
    """One episode per seed; returns per-episode return and summed info metrics (Overbooking-v0:
    DRLC and the overbooking rate set are means over the episode's periods)."""
    if env_id == MULTI_AGENT_ENV:
        return evaluate_market_game(policy, seeds, env_kwargs, welfare_bound)
    rows = []
    for seed in seeds:
        env = gym.make(env_id, **env_kwargs)
        obs, _ = env.reset(seed=seed)
        done, ret = False, 0.0
        totals: dict[str, float] = {}
        steps = 0
        while not done:
            action = _predict(policy, obs, env)
            obs, reward, terminated, truncated, info = env.step(action)
            ret += float(reward)
            steps += 1
            done = terminated or truncated
            if env_id == "ISACMarket-Overbooking-v0":
                for key in ("social_welfare", "mu_utility", "bs_utility", "ni", "drlc"):
                    totals[key] = totals.get(key, 0.0) + float(info[key])
                rates = info["overbooking_bandwidth"] + info["overbooking_power"]
                totals["overbooking_rate"] = (totals.get("overbooking_rate", 0.0)
                                              + float(np.mean(rates)))
        if env_id == "ISACMarket-Bidding-v0":
            inner: Any = env.unwrapped
            market = inner.market
            summary = market.result().summary()
            focal = inner.focal
            totals = {key: summary[key] for key in ("social_welfare", "mu_utility",
                                                    "bs_utility", "ni", "drlc")}
            totals["focal_utility"] = client_utility(market.transactions, focal)
        else:  # per-period means: DRLC, and the rate set (over BSs and both resources)
            totals["drlc"] /= max(steps, 1)
            totals["overbooking_rate"] /= max(steps, 1)
        rows.append({"seed": seed, "return": ret, "steps": steps, **totals})
        env.close()
    return rows


def summarise(rows: list[dict[str, float]]) -> dict[str, float]:
    """Mean and 95% CI half-width of every per-episode metric."""
    out: dict[str, float] = {}
    for metric in (k for k in rows[0] if k not in ("seed", "steps")):
        out[metric], out[f"{metric}_ci95"] = mean_ci95([r[metric] for r in rows])
    return out


def paired_differences(rows: list[dict[str, float]], reference: list[dict[str, float]]
                       ) -> dict[str, float]:
    """Mean and 95% CI of the per-seed difference ``rows - reference`` (same seeds, paired)."""
    out: dict[str, float] = {}
    for metric in (k for k in rows[0] if k not in ("seed", "steps")):
        diffs = [a[metric] - b[metric] for a, b in zip(rows, reference, strict=True)]
        out[metric], out[f"{metric}_ci95"] = mean_ci95(diffs)
    return out


def _fmt(mean: float, half: float) -> str:
    return f"{mean:12.3f}" + ("" if np.isnan(half) else f" ± {half:.3f}")


def cmd_evaluate(args: argparse.Namespace) -> int:
    env_kwargs = json.loads(Path(args.config).read_text()) if args.config else {}
    specs = [s.strip() for s in args.policy.split(",") if s.strip()]
    if not specs:
        raise ValueError("--policy names no policy")
    policies = [load_policy(spec, args.env, env_kwargs) for spec in specs]
    seeds = [args.first_seed + k for k in range(args.seeds)]
    results: list[dict[str, Any]] = []
    for spec, policy in zip(specs, policies, strict=True):
        rows = evaluate(policy, args.env, seeds, env_kwargs, not args.no_bound)
        stats = summarise(rows)
        entry: dict[str, Any] = {"policy": spec, **stats, "per_seed": rows}
        print(f"{spec} on {args.env}, {len(seeds)} held-out seeds from {args.first_seed}:")
        for metric in (k for k in stats if not k.endswith("_ci95")):
            print(f"  {metric:16s} {_fmt(stats[metric], stats[metric + '_ci95'])}")
        if results:
            diff = paired_differences(rows, results[0]["per_seed"])
            entry["paired_difference_to_first"] = diff
            print(f"  paired difference to {specs[0]} (same seeds):")
            compared = (("social_welfare", "mu_utility", "bs_utility", "net_welfare",
                         "sw_to_bound") if args.env == MULTI_AGENT_ENV
                        else ("return", "social_welfare"))
            for metric in (m for m in compared if m in diff):
                print(f"    {metric:14s} {_fmt(diff[metric], diff[metric + '_ci95'])}")
        results.append(entry)
    if args.json:
        payload: dict[str, Any] = {"env": args.env, "seeds": seeds, "env_kwargs": env_kwargs,
                                   "policies": results}
        if len(results) == 1:  # one policy: its fields at the top level
            payload.update(results[0])
        write_atomic(Path(args.json), json.dumps(payload, indent=2, default=float))
    return 0


def add_evaluate_parser(sub: Any) -> None:
    parser = sub.add_parser("evaluate", help="evaluate a model or rule on held-out seeds")
    parser.add_argument("--policy", required=True,
                        help="model .zip or frbank|fixed[:RATE]|newsvendor; on "
                        f"{MULTI_AGENT_ENV}, frbank, fixed:RATE (BSs) or a train.marl "
                        "checkpoint; several, comma-separated, run on the same seeds and "
                        "compared with the first (paired CIs)")
    parser.add_argument("--env", required=True, type=evaluate_env_argument,
                        help=" or ".join(ENV_IDS) + " (or the isac_market_env:ID form), or "
                        f"{MULTI_AGENT_ENV} (the multi-agent market; its --config holds "
                        "parallel_env kwargs)")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=HELD_OUT_FIRST_SEED)
    parser.add_argument("--no-bound", action="store_true",
                        help=f"{MULTI_AGENT_ENV}: skip the certified welfare bound (the optimal "
                        "row on every market: about 10 s per 10 transactions at 50 MUs)")
    parser.add_argument("--config", default=None, help="JSON file of gym.make kwargs")
    parser.add_argument("--json", default=None)
    parser.set_defaults(func=cmd_evaluate)
