# gunicorn settings for production (docker-compose's web service uses this file).
bind = "0.0.0.0:8000"
workers = 3
accesslog = "-"
logger_class = "config.gunicorn_logging.RedactingLogger"


def post_worker_init(worker: object) -> None:
    """Once the worker has loaded Django and carehub, move those long-lived objects out of the
    garbage collector's sight (gc.freeze): its full collections then walk only what requests
    allocate, instead of pausing a request for tens of milliseconds every hundred pages."""
    import gc

    from carehub.web.warmup import warm_up

    warm_up()  # the URL conf, pathway definitions, diagram layouts and templates, before requests

    gc.collect()
    gc.freeze()
