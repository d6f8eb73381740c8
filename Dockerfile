# The operator image: `aifactory run` as UID 10001, with nothing fetched at build or run time.
# Build: make image. It makes the base image from Debian packages (hack/base-image.sh), the wheels
# of the operator and its dependencies (build/wheels), then builds this file with both.
ARG BASE_IMAGE=aifactory-base:bookworm

# Stage 1: a virtual environment installed from the wheels alone (--no-index), with pip run from
# its own wheel, so the venv holds neither pip nor setuptools.
FROM ${BASE_IMAGE} AS build
COPY build/wheels/ /wheels/
RUN python3 -m venv --without-pip /opt/venv \
    && pip_wheel=$(ls /wheels/pip-*.whl) \
    && /opt/venv/bin/python "$pip_wheel/pip" install --no-index --find-links /wheels --no-cache-dir \
       --no-compile --quiet aifactory-operator \
    && /opt/venv/bin/python -m compileall -q /opt/venv/lib

# Stage 2: the base and the venv; the root filesystem is read-only in the chart, /tmp a memory volume.
FROM ${BASE_IMAGE}
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:/usr/bin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
ENTRYPOINT ["aifactory", "run"]
CMD ["--liveness", "http://0.0.0.0:8080/healthz"]
