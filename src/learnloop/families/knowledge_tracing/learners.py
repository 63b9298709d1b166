"""Learner states kept by a loaded version for stateful serving.

Each learner's state holds what the model needs to predict the next attempt in one step — the
network's :class:`~learnloop.families.knowledge_tracing.nets.StepState` (DKT's recurrent state,
or the attentive model's cached layer outputs), the per-skill counters, BKT's P(known) per skill —
plus the learner's recent attempts (for explanations and insights).

States live in memory, least recently used evicted past ``max_learners``. Answers are durable
elsewhere (the family's answer store); when a state is missing — evicted, or a fresh process or
version — :attr:`LearnerStates.history_source` replays the learner's stored answers once.

Thread safety: one lock per learner; the table has its own lock.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from learnloop.families.knowledge_tracing.schemas import Attempt

HistorySource = Callable[[str], Sequence[Attempt]]
RECENT = 200  # recent attempts kept per learner (insights, explanations)


@dataclass
class LearnerState:
    learner_id: str
    step: Any = None  # nets.StepState, or BKT's array of P(known)
    counters: Any = None  # encoding.RecencyState of shape (1,)
    recent: deque[Attempt] = field(default_factory=lambda: deque(maxlen=RECENT))
    answered: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class LearnerStates:
    def __init__(
        self,
        new_state: Callable[[str], LearnerState],
        apply: Callable[[LearnerState, Sequence[Attempt]], None],
        max_learners: int,
    ) -> None:
        self._new = new_state
        self._apply = apply
        self.max_learners = max_learners
        self._states: OrderedDict[str, LearnerState] = OrderedDict()
        self._lock = threading.Lock()
        self.history_source: HistorySource | None = None

    def __len__(self) -> int:
        return len(self._states)

    def peek(self, learner_id: str) -> LearnerState | None:
        with self._lock:
            return self._states.get(learner_id)

    def get(self, learner_id: str) -> tuple[LearnerState, bool]:
        """The learner's state (rebuilt from the history source when missing) and whether the
        learner has any answers."""
        with self._lock:
            found = self._states.get(learner_id)
            if found is not None:
                self._states.move_to_end(learner_id)
                return found, found.answered > 0
        state = self._new(learner_id)
        source = self.history_source
        if source is not None:
            past = list(source(learner_id))
            if past:
                self._apply(state, past)
        with self._lock:
            found = self._states.get(learner_id)
            if found is not None:  # another thread built it meanwhile
                return found, found.answered > 0
            self._states[learner_id] = state
            while len(self._states) > self.max_learners:
                self._states.popitem(last=False)
        return state, state.answered > 0

    def observe(self, learner_id: str, attempts: Sequence[Attempt]) -> LearnerState:
        """Add answered attempts to the learner's state.

        With a history source, the caller stores ``attempts`` there first: a learner without a
        state in memory is then rebuilt from the source, new attempts included.
        """
        if self.peek(learner_id) is None and self.history_source is not None:
            return self.get(learner_id)[0]
        state, _ = self.get(learner_id)
        with state.lock:
            self._apply(state, attempts)
        return state

    def forget(self, learner_id: str) -> bool:
        with self._lock:
            return self._states.pop(learner_id, None) is not None

    def clear(self) -> None:
        with self._lock:
            self._states.clear()
