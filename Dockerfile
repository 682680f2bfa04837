# callvault: one image for web (`serve --no-worker`) and worker (`worker`) processes.
# Build: docker build -t callvault .   Run: see docs/deployment.md.
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY callvault ./callvault
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CALLVAULT_DATA_DIR=/var/lib/callvault \
    CALLVAULT_HOST=0.0.0.0
COPY --from=build /install /usr/local
RUN useradd --system --uid 10001 --home-dir /var/lib/callvault --create-home callvault
USER 10001
WORKDIR /var/lib/callvault
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["callvault"]
CMD ["serve", "--no-worker"]
