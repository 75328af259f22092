# syntax=docker/dockerfile:1
# The gateway's image: the package and its gunicorn settings, run as an unprivileged user.
# docs/deploy.md says how compose.yaml runs it (web, workers, migrations) and what to set.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The source is mounted for the install only (writable, its build files thrown away), so the
# image holds the installed package and nothing of the checkout: no .env, no instance/.
RUN --mount=type=bind,source=.,target=/src,rw pip install /src

RUN useradd --system --uid 10001 --user-group --create-home --home-dir /srv/gateway gateway
WORKDIR /srv/gateway
COPY --chown=root:root gunicorn.conf.py wsgi.py ./
USER gateway

# Every interface of the container; the port is the one the HEALTHCHECK asks.
ENV GATEWAY_BIND=0.0.0.0:8000 \
    GATEWAY_INSTANCE_PATH=/srv/gateway/instance
EXPOSE 8000

# Ready only when the database answers and is migrated: a web container is not sent traffic
# before `gateway db upgrade` has run.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status != 200)"]

# Other processes of the same image give their command instead: gateway worker, gateway db upgrade.
CMD ["gunicorn", "--config", "gunicorn.conf.py", "wsgi:app"]
