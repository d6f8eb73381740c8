"""Free GPUs grouped by topology domain, so that gang admission scales to large factories (pure).

A job that wants one NVLink domain or rack needs the tightest domain with enough nodes that fit;
finding it by grouping every fitting node of the pool costs O(nodes) per queued job, which is
seconds per decision at 10,000 nodes and 10,000 jobs. The index here keeps each domain's nodes
bucketed by free GPUs and, per GPUs-per-node a job asks for, the domains ranked by how many of
their nodes fit, updated as admission takes GPUs; a placement then costs about the logarithm of
the number of domains plus the nodes it returns.

The ranking reproduces a plain scan exactly, ties included. The scan groups the nodes that fit in
best-fit order (least free first, then name), and breaks ties between domains by the label of the
domain's first such node ("" when that node lacks the label) and then by which domain's first node
comes first in that order; a rank therefore carries the first node's label, free GPUs and name.
"""

import bisect
import heapq
from collections import defaultdict
from itertools import count

# (nodes that fit, their free GPUs, label of the first one, its free GPUs, its name).
Rank = tuple[int, int, str, int, str]


class DomainRanking:
    """The domains with at least one node that fits one GPUs-per-node size, grouped by how many fit.

    Per group two heaps: by free GPUs, for the tightest whole domain, and by label, for spreading
    over the fewest domains. A domain whose rank changes is pushed again with a new stamp; entries
    with an old stamp are stale and dropped when they reach the top, which costs less than finding
    and removing them from the middle of a heap.
    """

    def __init__(self, ranks: dict[str, Rank | None]) -> None:
        self.current: dict[str, tuple[int, Rank]] = {}  # domain -> (stamp, rank)
        self.sizes: dict[int, int] = {}  # nodes that fit -> domains with that many
        self.tightest: dict[int, list[tuple[int, str, int, str, int, str]]] = defaultdict(list)
        self.spreading: dict[int, list[tuple[str, int, str, int, str]]] = defaultdict(list)
        self.stamps = count()
        for domain, rank in ranks.items():
            self.update(domain, rank)

    def update(self, domain: str, rank: Rank | None) -> None:
        """Records the domain's new rank; None when none of its nodes fits any more."""
        old = self.current.get(domain)
        if old is not None and old[1] == rank:
            return
        if old is not None:
            self._resize(old[1][0], -1)
            del self.current[domain]
        if rank is None:
            return
        stamp = next(self.stamps)
        self.current[domain] = (stamp, rank)
        fits, total, label, first_free, first_name = rank
        self._resize(fits, +1)
        heapq.heappush(self.tightest[fits], (total, label, first_free, first_name, stamp, domain))
        heapq.heappush(self.spreading[fits], (label, first_free, first_name, stamp, domain))

    def tightest_with(self, nodes: int) -> str | None:
        """The domain with the fewest fitting nodes (at least `nodes`), then the fewest free GPUs."""
        sizes = [fits for fits in self.sizes if fits >= max(nodes, 1)]
        if not sizes:
            return None
        heap = self.tightest[min(sizes)]
        while not self._is_current(heap[0][-2], heap[0][-1]):
            heapq.heappop(heap)
        return heap[0][-1]

    def most_fitting(self, nodes: int) -> list[str]:
        """Domains with the most fitting nodes first (then by label), until together they hold `nodes`."""
        chosen: list[str] = []
        held = 0
        for fits in sorted(self.sizes, reverse=True):
            heap, popped = self.spreading[fits], []
            while heap and held < nodes:
                entry = heapq.heappop(heap)
                if self._is_current(entry[-2], entry[-1]):
                    popped.append(entry)
                    chosen.append(entry[-1])
                    held += fits
            # Looking must not change the index: current entries go back on their heap.
            for entry in popped:
                heapq.heappush(heap, entry)
            if held >= nodes:
                break
        return chosen

    def largest(self) -> int:
        """The most nodes that fit in any one domain; 0 when none fits anywhere."""
        return max(self.sizes, default=0)

    def _is_current(self, stamp: int, domain: str) -> bool:
        current = self.current.get(domain)
        return current is not None and current[0] == stamp

    def _resize(self, fits: int, change: int) -> None:
        self.sizes[fits] = self.sizes.get(fits, 0) + change
        if not self.sizes[fits]:
            del self.sizes[fits]


class DomainIndex:
    """One pool's nodes grouped by domain at one topology level, each domain's node names bucketed by
    free GPUs (each bucket sorted), and a ranking of the domains per GPUs-per-node size asked for.

    `free` is shared with its owner, who calls `move` after every change to it.
    """

    def __init__(self, free: dict[str, int], domain_of: dict[str, str], label_of: dict[str, str]) -> None:
        self.free = free
        self.domain_of = domain_of  # node -> its domain at this level, or its own name when unlabelled
        self.label_of = label_of  # node -> its label at this level, "" when unlabelled
        self.buckets: dict[str, dict[int, list[str]]] = defaultdict(dict)
        for name in sorted(domain_of):
            self.buckets[domain_of[name]].setdefault(free[name], []).append(name)
        self.rankings: dict[int, DomainRanking] = {}

    def ranking(self, gpus: int) -> DomainRanking:
        """The domains ranked for nodes with room for `gpus`, built on first use."""
        if gpus not in self.rankings:
            self.rankings[gpus] = DomainRanking({domain: self.rank(domain, gpus) for domain in self.buckets})
        return self.rankings[gpus]

    def rank(self, domain: str, gpus: int) -> Rank | None:
        buckets = self.buckets[domain]
        levels = sorted(level for level in buckets if level >= gpus)
        if not levels:
            return None
        first = buckets[levels[0]][0]
        fits = sum(len(buckets[level]) for level in levels)
        total = sum(level * len(buckets[level]) for level in levels)
        return (fits, total, self.label_of[first], levels[0], first)

    def fitting_nodes(self, domain: str, gpus: int, nodes: int) -> list[str]:
        """The first `nodes` of the domain's nodes with room for `gpus`, in best-fit order."""
        chosen: list[str] = []
        buckets = self.buckets[domain]
        for level in sorted(level for level in buckets if level >= gpus):
            chosen.extend(buckets[level][: nodes - len(chosen)])
            if len(chosen) >= nodes:
                break
        return chosen

    def whole_domain(self, gpus: int, nodes: int) -> list[str] | None:
        """Nodes for a gang in the tightest single domain that holds it, or None."""
        domain = self.ranking(gpus).tightest_with(nodes)
        return None if domain is None else self.fitting_nodes(domain, gpus, nodes)

    def fewest_domains(self, gpus: int, nodes: int) -> list[str]:
        """Nodes for a gang spread over the domains with the most fitting nodes first."""
        chosen: list[str] = []
        for domain in self.ranking(gpus).most_fitting(nodes):
            chosen.extend(self.fitting_nodes(domain, gpus, nodes - len(chosen)))
        return chosen

    def largest_block(self, gpus: int) -> int:
        """The most nodes with room for `gpus` in any one domain."""
        return self.ranking(gpus).largest()

    def move(self, name: str, before: int) -> None:
        """Re-files a node whose free GPUs changed from `before` to what `free` now says."""
        domain, after = self.domain_of[name], self.free[name]
        buckets = self.buckets[domain]
        names = buckets[before]
        del names[bisect.bisect_left(names, name)]
        if not names:
            del buckets[before]
        bisect.insort(buckets.setdefault(after, []), name)
        for gpus, ranking in self.rankings.items():
            # A node with no room for `gpus` before or after the change changes nothing there.
            if max(before, after) >= gpus:
                ranking.update(domain, self.rank(domain, gpus))
