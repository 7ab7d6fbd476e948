"""The speed benchmark: the suite against a naive and a hand-written limit loop (`make bench-speed`)."""
