"""Per aggregate, the fold (``apply(state, event)``) and the decisions (``decide_*(state, ...) -> events``); pure, no I/O."""
