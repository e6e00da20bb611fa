"""The I/O edge around the engine: perform its calls, journal everything, loop."""
