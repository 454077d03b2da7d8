"""carehub's benchmark suite (`make bench`, `python -m bench [--quick] [scenario ...]`).

See docs/adr/0008-benchmarks.md for the design and bench/results/REPORT.md for the latest
figures. Everything here runs against a database, a Redis db and a Celery queue of its own
(`bench.env`).
"""
