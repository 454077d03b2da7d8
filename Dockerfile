# The production image: one image for web (gunicorn), worker and beat.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production

RUN useradd --create-home --uid 10001 carehub
WORKDIR /app

# Exactly the locked dependencies, each checked against its hash (ADR 0014; `make lock`), then
# carehub itself without resolving anything.
COPY requirements/production.txt ./requirements/
RUN pip install --require-hashes --no-deps -r requirements/production.txt
COPY pyproject.toml README.md ./
COPY carehub ./carehub
COPY workflows ./workflows
COPY config ./config
COPY manage.py ./
RUN pip install --no-deps --no-build-isolation . && python -c "import django, celery, workflows"

# Static files are collected at build time and served by WhiteNoise. The build needs a key to
# import settings; it is not used for anything and not kept in the image's environment.
RUN DJANGO_SECRET_KEY=collectstatic-only DJANGO_ALLOWED_HOSTS=localhost \
    python manage.py collectstatic --noinput

USER carehub
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--config", "config/gunicorn.conf.py"]
