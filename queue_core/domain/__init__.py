"""Per aggregate, the fold ``apply(state, event)`` and the decisions ``decide_*``; pure, no I/O."""
