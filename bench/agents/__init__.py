"""``python -m bench.agents``: concurrent agent conversations on one worker against the floor."""
