"""A local AWS for rehearsals and tests (loopback only): moto behind a fidelity layer that checks signatures, IAM
policies and TLS names as AWS does, with AWS's quotas, faults on demand, an edge, and seeding; its own commands
(`sandbox serve|seed`, `demo`).

May import anything of ``fleet`` but the CLI's command modules (it registers its own commands). Imported only by
the CLI's sandbox registration, the demo, the tests and the benchmarks: the tool never needs it.
"""
