"""Developer stack behind `make test` and `make demo`.

`python -m carehub.devstack run -- CMD ...` runs CMD with DATABASE_URL and REDIS_URL pointing at
PostgreSQL and Redis: the ones named in the environment, else the ones on their default local
ports, else embedded servers (data under `.devstack/`). `python -m carehub.devstack demo` migrates,
seeds and runs the web server, a Celery worker and Celery beat against them.
"""
