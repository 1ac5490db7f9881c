"""``python -m worker`` starts a worker (the ``agentos-worker`` script does the same)."""

from worker.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
