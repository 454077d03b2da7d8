# gunicorn settings for production (docker-compose's web service uses this file).
bind = "0.0.0.0:8000"
workers = 3
accesslog = "-"
logger_class = "config.gunicorn_logging.RedactingLogger"
