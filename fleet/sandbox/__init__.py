"""A local AWS for rehearsals and tests (loopback only): moto behind a fidelity layer that checks signatures, IAM
policies and TLS names as AWS does, with AWS's quotas, faults on demand, an edge, and seeding; its own commands
(`sandbox serve|seed`, `demo`).

May import anything of ``fleet`` but the CLI's command modules. Imported only when one of its commands is named
(the CLI loads them lazily, by name), the demo, the tests and the benchmarks: the tool never needs it.
"""
