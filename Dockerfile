# The operator image: `aifactory run`, non-root, with nothing fetched at run time.
# Build: docker build -t aifactory-operator .   (the end-to-end tests run the same entry point)

FROM python:3.11-slim AS build
WORKDIR /src
COPY operator/ operator/
# pip and setuptools are not needed to run: dropping them saves 24 MB and two attack surfaces.
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir ./operator \
    && /opt/venv/bin/pip uninstall --yes pip setuptools

FROM python:3.11-slim
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
ENTRYPOINT ["aifactory", "run"]
CMD ["--liveness", "http://0.0.0.0:8080/healthz"]
