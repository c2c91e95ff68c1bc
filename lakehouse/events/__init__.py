"""Events of the configured domains: contract checks, the generator, topics."""
