"""Policies and the engine that closes the loop: retrain → evaluate and gate → shadow → canary
→ promote, or roll back; every decision an event (see ``engine``)."""

from learnloop.loop.policy.engine import PolicyEngine
from learnloop.loop.policy.lineage import lineage
from learnloop.loop.policy.runner import PolicyRunner
from learnloop.loop.policy.spec import Policy, parse_policy

__all__ = ["Policy", "PolicyEngine", "PolicyRunner", "lineage", "parse_policy"]
