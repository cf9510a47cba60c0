"""A deterministic layered layout (Sugiyama style) in pure Python, for the static SVG.

Cycles are broken by reversing DFS back edges; layers come from the longest path
(sources then pulled down next to their first consumer); edges spanning several
layers pass through dummy points; a few barycentre sweeps order each layer; x
positions relax toward the neighbours' mean while keeping the order and the gaps.
The browser widget lays out with a maintained engine instead (dagre); this one only
has to be readable and identical on every run.
"""
from __future__ import annotations

from dataclasses import dataclass, field

SWEEPS = 6
RELAXATIONS = 8


@dataclass
class Placed:
    """A box centred at (x, y)."""
    id: str
    width: float
    height: float
    x: float = 0.0
    y: float = 0.0


@dataclass
class Layout:
    boxes: dict                     # id -> Placed
    edges: list                     # (source, target, [(x, y), ...]) in the input order
    width: float = 0.0
    height: float = 0.0
    layers: list = field(default_factory=list)   # ids per layer, dummies left out


def layered_layout(sizes: dict, edges: list, rank_gap: float = 56, node_gap: float = 28,
                   margin: float = 16) -> Layout:
    """Place the boxes ``sizes`` (id -> (width, height)) so that ``edges`` (source, target) point down."""
    ids = list(sizes)
    unique = list(dict.fromkeys((s, t) for s, t in edges if s != t and s in sizes and t in sizes))
    oriented = _break_cycles(ids, unique)
    layer = _layers(ids, oriented)
    chains, rank_members = _add_dummies(ids, oriented, layer)
    order = _order(rank_members, chains)
    width = {v: sizes[v][0] if v in sizes else 0.0 for layer_ids in order for v in layer_ids}
    x = _x_positions(order, chains, width, node_gap)
    heights = [max((sizes[v][1] for v in ranked if v in sizes), default=0.0) for ranked in order]
    y, top = {}, margin
    for rank, ranked in enumerate(order):
        for v in ranked:
            y[v] = top + heights[rank] / 2
        top += heights[rank] + rank_gap
    left = min((x[v] - width[v] / 2 for ranked in order for v in ranked), default=0.0)
    for v in x:
        x[v] += margin - left
    boxes = {v: Placed(v, sizes[v][0], sizes[v][1], x[v], y[v]) for v in ids}
    placed_edges = []
    oriented_as = dict(zip(unique, oriented))
    for s, t in edges:
        if (s, t) not in oriented_as:
            continue
        path = chains[oriented_as[(s, t)]]
        points = [(x[v], y[v]) for v in path]
        points[0] = (points[0][0], points[0][1] + sizes[path[0]][1] / 2)
        points[-1] = (points[-1][0], points[-1][1] - sizes[path[-1]][1] / 2)
        if path[0] != s:  # a reversed (cycle-breaking) edge: draw it from its real source
            points.reverse()
        placed_edges.append((s, t, points))
    right = max((x[v] + width[v] / 2 for ranked in order for v in ranked), default=0.0)
    return Layout(boxes, placed_edges, right + margin, top - rank_gap + margin,
                  [[v for v in ranked if v in sizes] for ranked in order])


def _break_cycles(ids, edges) -> list:
    """The edges with DFS back edges reversed, so the graph is acyclic."""
    successors = {v: [] for v in ids}
    for s, t in edges:
        successors[s].append(t)
    state, back = {}, set()
    for root in ids:
        if root in state:
            continue
        stack = [(root, iter(successors[root]))]
        state[root] = "open"
        while stack:
            v, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[v] = "done"
                stack.pop()
            elif nxt not in state:
                state[nxt] = "open"
                stack.append((nxt, iter(successors[nxt])))
            elif state[nxt] == "open":
                back.add((v, nxt))
    return [(t, s) if (s, t) in back else (s, t) for s, t in edges]


def _layers(ids, edges) -> dict:
    """Longest-path layering from the sources; sources then sit one layer above their first consumer."""
    preds = {v: [] for v in ids}
    succs = {v: [] for v in ids}
    for s, t in edges:
        preds[t].append(s)
        succs[s].append(t)
    remaining = {v: len(preds[v]) for v in ids}
    ready = [v for v in ids if not remaining[v]]
    layer, topo = {}, []
    while ready:
        v = ready.pop(0)
        topo.append(v)
        layer[v] = max((layer[p] + 1 for p in preds[v]), default=0)
        for t in succs[v]:
            remaining[t] -= 1
            if not remaining[t]:
                ready.append(t)
    for v in ids:
        if not preds[v] and succs[v]:
            layer[v] = max(min(layer[t] for t in succs[v]) - 1, 0)
    return layer


def _add_dummies(ids, edges, layer):
    """Per edge the chain of points it passes (dummies on skipped layers); members per layer."""
    ranks = max(layer.values(), default=0) + 1
    members = [[] for _ in range(ranks)]
    for v in ids:
        members[layer[v]].append(v)
    chains = {}
    for s, t in edges:
        path = [s]
        for rank in range(layer[s] + 1, layer[t]):
            dummy = f"\0{s}\0{t}\0{rank}"
            members[rank].append(dummy)
            path.append(dummy)
        path.append(t)
        chains[(s, t)] = path
    return chains, members


def _neighbours(chains):
    up, down = {}, {}
    for path in chains.values():
        for a, b in zip(path, path[1:]):
            down.setdefault(a, []).append(b)
            up.setdefault(b, []).append(a)
    return up, down


def _order(members, chains) -> list:
    """Barycentre ordering: alternate downward and upward sweeps, keeping the best crossing count."""
    up, down = _neighbours(chains)
    order = [list(ranked) for ranked in members]
    best, best_crossings = [list(r) for r in order], _crossings(order, down)
    for sweep in range(SWEEPS):
        ranks = range(1, len(order)) if sweep % 2 == 0 else range(len(order) - 2, -1, -1)
        neighbours = up if sweep % 2 == 0 else down
        for rank in ranks:
            fixed = {v: i for i, v in enumerate(order[rank - 1 if sweep % 2 == 0 else rank + 1])}
            current = {v: i for i, v in enumerate(order[rank])}

            def barycentre(v):
                around = [fixed[n] for n in neighbours.get(v, ()) if n in fixed]
                return (sum(around) / len(around) if around else current[v], current[v])
            order[rank].sort(key=barycentre)
        crossings = _crossings(order, down)
        if crossings < best_crossings:
            best, best_crossings = [list(r) for r in order], crossings
    return best


def _crossings(order, down) -> int:
    """Edge crossings between adjacent layers (inversions, counted with a Fenwick tree)."""
    total = 0
    for upper, lower in zip(order, order[1:]):
        position = {v: i for i, v in enumerate(lower)}
        tree = [0] * (len(lower) + 1)
        inserted = 0
        for v in upper:
            targets = [position[t] for t in down.get(v, ()) if t in position]
            for j in targets:  # earlier sources' targets right of j cross this edge
                i, below = j + 1, 0
                while i > 0:
                    below += tree[i]
                    i -= i & -i
                total += inserted - below
            for j in targets:
                i = j + 1
                while i < len(tree):
                    tree[i] += 1
                    i += i & -i
                inserted += 1
    return total


def _x_positions(order, chains, width, gap) -> dict:
    """Left-to-right packing, then relaxation toward the neighbours' mean without overlaps."""
    up, down = _neighbours(chains)
    x = {}
    for ranked in order:
        cursor = 0.0
        for v in ranked:
            x[v] = cursor + width[v] / 2
            cursor += width[v] + gap
    widest = max((x[r[-1]] + width[r[-1]] / 2 for r in order if r), default=0.0)
    for ranked in order:  # centre each layer under the widest
        if ranked:
            shift = (widest - (x[ranked[-1]] + width[ranked[-1]] / 2)) / 2
            for v in ranked:
                x[v] += shift
    for _ in range(RELAXATIONS):
        for ranked in order:
            wanted = []
            for v in ranked:
                around = [x[n] for n in up.get(v, []) + down.get(v, [])]
                wanted.append(sum(around) / len(around) if around else x[v])
            placed = _pack(ranked, wanted, width, gap)
            for v, value in zip(ranked, placed):
                x[v] = value
    return x


def _pack(ranked, wanted, width, gap) -> list:
    """Positions as close to ``wanted`` as the order and minimum gaps allow (push right, then left)."""
    placed = list(wanted)
    for i in range(1, len(ranked)):
        least = placed[i - 1] + (width[ranked[i - 1]] + width[ranked[i]]) / 2 + gap
        placed[i] = max(placed[i], least)
    excess = sum(p - w for p, w in zip(placed, wanted)) / max(len(placed), 1)
    placed = [p - excess for p in placed]
    for i in range(1, len(ranked)):
        least = placed[i - 1] + (width[ranked[i - 1]] + width[ranked[i]]) / 2 + gap
        placed[i] = max(placed[i], least)
    return placed
