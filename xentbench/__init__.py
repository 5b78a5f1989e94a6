"""xentbench: verify, benchmark, compare and report the ``impls`` loss backends."""
