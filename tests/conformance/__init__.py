"""The adapter conformance suite and its runs against each chain family."""
