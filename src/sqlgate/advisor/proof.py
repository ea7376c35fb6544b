"""Proof of benefit, for a set of indexes: which candidates the planner uses together,
what each one adds given the others, in which order to build them, and how big they are.

The dialect plans a statement "as if" some indexes existed (``plan_with_indexes``):
PostgreSQL with the ``hypopg`` extension (hypothetical indexes in the planner's memory of
this connection; sqlgate never runs ``CREATE EXTENSION``), SQLite with real indexes built
in a transaction that is always rolled back. MySQL/MariaDB/TiDB cannot, and sqlgate does
not change a user's schema, so their candidates stay unverified.

With costs (PostgreSQL) the set is chosen by backward elimination: plan with every
candidate, keep what the plan uses, then repeatedly drop the member whose removal costs
least, while that is under ``MIN_GAIN`` of every query's cost. Members that only pay
together (one index per OR branch, a join key plus a filter) survive, because removing
either one costs a lot. The order comes from a greedy forward pass; an INCLUDE variant
replaces a member only when the index-only scan saves another ``MIN_GAIN``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from sqlgate.advisor.indexes import Candidate, with_include
from sqlgate.advisor.models import MIN_GAIN
from sqlgate.db.dialects.plans import IndexSyntax, WhatIfPlan

MAX_CANDIDATES = 40  # bounds the planning work of one call (primary shapes first)


@dataclass
class Query:
    statement: exp.Expr
    params: dict[str, Any]
    cost: float | None  # the planner's cost as the schema is
    generic: bool = False  # values unknown (pg_stat_statements): plan it as a generic plan


@dataclass
class Chosen:
    candidate: Candidate
    order: int
    marginal: float | None = None
    costs_after: list[float | None] = field(default_factory=list)  # per query, cumulative in `order`
    works_with: list[str] = field(default_factory=list)
    size: int | None = None
    detail: str = ""
    used_by: set[int] = field(default_factory=set)  # queries whose plan uses it (verified sets)


@dataclass
class Selection:
    chosen: list[Chosen]
    final_costs: list[float | None]  # per query, with the whole set
    notes: list[str]
    verified: bool
    verification: str = ""


class Trial:
    """Plans of each query under sets of candidates (cached)."""

    def __init__(self, dialect: Any, conn: Any, location: str | None, queries: list[Query],
                 candidates: list[Candidate], timeout_ms: int) -> None:
        self.dialect, self.conn, self.location = dialect, conn, location
        self.queries, self.candidates, self.timeout_ms = queries, candidates, timeout_ms
        self._cache: dict[tuple[int, frozenset[int]], tuple[float | None, frozenset[int], dict[int, str]]] = {}
        self.calls = 0

    async def plan(self, query: int, members: frozenset[int]) -> tuple[float | None, frozenset[int], dict[int, str]]:
        """(cost, members the plan uses, plan detail per used member)."""
        key = (query, members)
        if key not in self._cache:
            if not members:
                self._cache[key] = (self.queries[query].cost, frozenset(), {})
            else:
                ordered = sorted(members)
                result = await self._what_if(query, ordered)
                used = frozenset(m for m, hit in zip(ordered, result.used, strict=True) if hit)
                detail = {m: d for m, d in zip(ordered, result.detail, strict=False) if d}
                self._cache[key] = (result.cost, used, detail)
        return self._cache[key]

    async def sizes(self, members: list[int]) -> dict[int, int | None]:
        if not members:
            return {}
        result = await self._what_if(0, sorted(members), sizes=True)
        return dict(zip(sorted(members), result.sizes or [None] * len(members), strict=False))

    async def _what_if(self, query: int, ordered: list[int], sizes: bool = False) -> WhatIfPlan:
        self.calls += 1
        q = self.queries[query]
        indexes = [(self.candidates[m].name, self.candidates[m].create_statement) for m in ordered]
        return await self.dialect.plan_with_indexes(  # type: ignore[no-any-return]
            self.conn, self.location, q.statement, q.params, indexes, self.timeout_ms, sizes=sizes, generic=q.generic
        )


def unverified(candidates: list[Candidate], reason: str, queries: int) -> Selection:
    """The primary candidates, in the order found, marked unverified."""
    primaries = [c for c in candidates if c.primary]
    groups = {c.group for c in primaries if c.group}
    chosen = [
        Chosen(c, i + 1, works_with=[o.name for o in primaries if c.group and o.group == c.group and o is not c])
        for i, c in enumerate(primaries) if not c.group or c.group in groups
    ]
    return Selection(chosen, [None] * queries, [], False, reason)


async def select(trial: Trial, syntax: IndexSyntax, dialect_name: str, min_gain: float = MIN_GAIN) -> Selection:
    """The smallest set of candidates the planner proves useful for the trial's queries."""
    notes: list[str] = []
    valid: list[int] = []
    ranked = sorted(range(len(trial.candidates)), key=lambda i: not trial.candidates[i].primary)
    for index in sorted(ranked[:MAX_CANDIDATES]):
        candidate = trial.candidates[index]
        if not syntax.costs and not candidate.primary:
            continue  # without costs the planner cannot weigh alternatives: try the primary shapes
        if all(k.plain for k in candidate.keys):
            valid.append(index)
            continue
        problem = await trial.dialect.check_index(trial.conn, trial.location, candidate.create_statement)
        if problem is None:
            valid.append(index)
        else:
            notes.append(f"dropped suggestion {candidate.create_statement}: the server refuses it ({problem})")
    everything = frozenset(valid)
    used: set[int] = set()
    first = [await trial.plan(q, everything) for q in range(len(trial.queries))]
    for _, hits, _ in first:
        used |= hits
    for index in sorted(everything - used):
        if trial.candidates[index].primary:  # the other shapes are alternatives tried on the way
            notes.append(f"dropped suggestion {trial.candidates[index].create_statement}: "
                         f"{_who(trial)} does not use it")
    if not used:
        return Selection([], [q.cost for q in trial.queries], notes, True)
    costs = first[0][0] is not None and all(q.cost is not None for q in trial.queries)
    if not costs:  # SQLite: the plan uses them; no costs to weigh, so nothing that merely extends an index
        chosen = []
        for order, index in enumerate(sorted(i for i in used if not trial.candidates[i].extends), start=1):
            detail = "; ".join(d for _, hits, det in first for m, d in det.items() if m == index)
            chosen.append(Chosen(trial.candidates[index], order, detail=detail,
                                 used_by={q for q, (_, hits, _) in enumerate(first) if index in hits}))
        _link_groups(chosen)
        return Selection(chosen, [None] * len(trial.queries), notes, True)
    members = frozenset(used)
    members, marginals = await _eliminate(trial, members, min_gain, notes)
    if members:
        members = await _prefer_narrower(trial, members, everything, min_gain)
        members, marginals = await _upgrade_includes(trial, members, marginals, syntax, dialect_name, min_gain)
    gains = [_gain(q.cost, (await trial.plan(i, members))[0]) for i, q in enumerate(trial.queries)]
    if members and max(gains) < min_gain:
        for index in sorted(members):
            notes.append(f"dropped suggestion {trial.candidates[index].create_statement}: {_who(trial)} "
                         f"lowers the cost by only {max(gains):.0%} with the whole set")
        members = frozenset()
    chosen = await _order(trial, members, marginals, min_gain)
    sizes = await trial.sizes([c_index for c_index in members])
    by_candidate = {id(trial.candidates[m]): m for m in members}
    for item in chosen:
        item.size = sizes.get(by_candidate[id(item.candidate)])
    final = [(await trial.plan(i, members))[0] for i in range(len(trial.queries))]
    return Selection(chosen, final, notes, True)


def _who(trial: Trial) -> str:
    return "the planner (with the hypothetical indexes)"


def _gain(before: float | None, after: float | None) -> float:
    if before is None or after is None or before <= 0:
        return 0.0
    return 1 - after / before


async def _relevant(trial: Trial, members: frozenset[int], index: int) -> list[int]:
    return [q for q in range(len(trial.queries)) if index in (await trial.plan(q, members))[1]]


async def _marginal(trial: Trial, members: frozenset[int], index: int) -> float:
    """The largest share of a query's cost that ``index`` saves given the other members."""
    best = 0.0
    for q in await _relevant(trial, members, index):
        with_it = (await trial.plan(q, members))[0]
        without = (await trial.plan(q, members - {index}))[0]
        best = max(best, _gain(without, with_it))
    return best


async def _eliminate(trial: Trial, members: frozenset[int], min_gain: float,
                     notes: list[str]) -> tuple[frozenset[int], dict[int, float]]:
    while members:
        marginals = {m: await _marginal(trial, members, m) for m in members}
        weakest = min(sorted(members), key=lambda m: marginals[m])
        if marginals[weakest] >= min_gain:
            return members, marginals
        members = members - {weakest}
        shown = marginals[weakest]
        if not trial.candidates[weakest].primary:
            continue
        notes.append(f"dropped suggestion {trial.candidates[weakest].create_statement}: {_who(trial)} gains only "
                     f"{shown:.1%} from it given the others (under the {min_gain:.0%} minimum)")
    return members, {}


async def _prefer_narrower(trial: Trial, members: frozenset[int], valid: frozenset[int],
                           min_gain: float) -> frozenset[int]:
    """Swap a member for a candidate whose keys are its prefix when the longer keys save
    less than ``min_gain``: a smaller index for (nearly) the same plan."""
    for index in sorted(members):
        wide = trial.candidates[index]
        for narrow_index in sorted(valid - members):
            narrow = trial.candidates[narrow_index]
            if narrow.info.name != wide.info.name or narrow.include or len(narrow.keys) >= len(wide.keys) \
                    or wide.keys[:len(narrow.keys)] != narrow.keys:
                continue
            swapped = (members - {index}) | {narrow_index}
            keeps = True
            for q in await _relevant(trial, members, index):
                cost, hits, _ = await trial.plan(q, swapped)
                if narrow_index not in hits or _gain(cost, (await trial.plan(q, members))[0]) >= min_gain:
                    keeps = False
                    break
            if keeps:
                members = swapped
                break
    return members


async def _upgrade_includes(trial: Trial, members: frozenset[int], marginals: dict[int, float],
                            syntax: IndexSyntax, dialect_name: str,
                            min_gain: float) -> tuple[frozenset[int], dict[int, float]]:
    for index in sorted(members):
        variant = with_include(trial.candidates[index], dialect_name, syntax)
        if variant is None:
            continue
        trial.candidates.append(variant)
        new_index = len(trial.candidates) - 1
        upgraded = (members - {index}) | {new_index}
        better = False
        worse = False
        for q in await _relevant(trial, members, index):
            before = (await trial.plan(q, members))[0]
            cost, hits, _ = await trial.plan(q, upgraded)
            if new_index in hits and _gain(before, cost) >= min_gain:
                better = True
            if cost is not None and before is not None and cost > before * 1.01:
                worse = True
        if better and not worse:
            members = upgraded
    return members, {m: await _marginal(trial, members, m) for m in members}


async def _order(trial: Trial, members: frozenset[int], marginals: dict[int, float],
                 min_gain: float) -> list[Chosen]:
    chosen: list[Chosen] = []
    built: frozenset[int] = frozenset()
    remaining = set(members)
    queries = range(len(trial.queries))

    async def score(candidate_set: frozenset[int]) -> float:
        total = 0.0
        for q in queries:
            cost = (await trial.plan(q, candidate_set))[0]
            base = trial.queries[q].cost
            total += (cost or 0.0) / base if base else 0.0
        return total

    while remaining:
        best = min(sorted(remaining), key=lambda m: m)
        best_score = None
        for index in sorted(remaining):
            value = await score(built | {index})
            if best_score is None or value < best_score:
                best, best_score = index, value
        built = built | {best}
        remaining.discard(best)
        after = [(await trial.plan(q, built))[0] for q in queries]
        detail = "; ".join({d for q in queries for m, d in (await trial.plan(q, members))[2].items() if m == best})
        chosen.append(Chosen(trial.candidates[best], len(chosen) + 1, marginal=round(marginals.get(best, 0.0), 4),
                             costs_after=after, detail=detail, used_by=set(await _relevant(trial, members, best))))
    # Members that do little alone work with the others (OR branches, join key + filter).
    for item in chosen:
        index = next(m for m in members if trial.candidates[m] is item.candidate)
        alone = max([_gain(trial.queries[q].cost, (await trial.plan(q, frozenset({index})))[0])
                     for q in await _relevant(trial, members, index)], default=0.0)
        if alone < min_gain and len(chosen) > 1:
            same = [o.candidate.name for o in chosen if o is not item and (
                (item.candidate.group and o.candidate.group == item.candidate.group)
                or o.candidate.info.name == item.candidate.info.name)]
            item.works_with = same or [o.candidate.name for o in chosen
                                       if o is not item and o.used_by & item.used_by]
    _link_groups(chosen)
    return chosen


def _link_groups(chosen: list[Chosen]) -> None:
    for item in chosen:
        if item.candidate.group:
            for other in chosen:
                if other is not item and other.candidate.group == item.candidate.group \
                        and other.candidate.name not in item.works_with:
                    item.works_with.append(other.candidate.name)
