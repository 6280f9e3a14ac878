FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
RUN pip install -e .
COPY . .
RUN DJANGO_SECRET_KEY=build-only-key-not-used-at-runtime-0000 python manage.py collectstatic --noinput
# /srv/attachments: the volume of inbound attachments (docker-compose.yml) starts owned by the app.
RUN useradd --create-home tidings && mkdir -p /srv/attachments && chown -R tidings /app /srv/attachments
USER tidings
EXPOSE 8000
CMD ["python", "-m", "config.processes", "web"]
ENV HOST=0.0.0.0 PORT=8000
