# The operator image: `aifactory run` as UID 10001, with nothing fetched at build or run time.
# Build: make image. It makes the base image from Debian packages (hack/base-image.sh), the wheels
# of pip, of the dependencies and of the operator (build/wheels/{pip,dependencies,operator}), then
# builds this file with them.
ARG BASE_IMAGE=aifactory-base:bookworm

# Stage 1: a virtual environment with the dependencies, installed from their wheels alone
# (--no-index) by pip run from its own wheel, so the venv holds neither pip nor setuptools. Its
# layer changes only when a dependency does.
FROM ${BASE_IMAGE} AS dependencies
COPY build/wheels/pip/ /pip/
COPY build/wheels/dependencies/ /wheels/
RUN python3 -m venv --without-pip /opt/venv \
    && /opt/venv/bin/python "$(ls /pip/pip-*.whl)/pip" install --no-index --no-cache-dir --no-compile \
       --quiet /wheels/*.whl \
    && /opt/venv/bin/python -m compileall -q /opt/venv/lib

# Stage 2: the operator alone, into a prefix of its own laid out like the venv, compiled for the
# paths it will have there.
FROM dependencies AS operator
COPY build/wheels/operator/ /wheels/operator/
RUN /opt/venv/bin/python "$(ls /pip/pip-*.whl)/pip" install --no-index --no-deps --no-cache-dir --no-compile \
       --quiet --prefix /opt/operator /wheels/operator/*.whl \
    && /opt/venv/bin/python -m compileall -q -s /opt/operator -p /opt/venv /opt/operator/lib

# Stage 3: the base, the dependencies and the operator as two layers, so that a new operator version
# is a layer of a few hundred kB (what an air-gapped site carries across for an upgrade). The root
# filesystem is read-only in the chart, /tmp a memory volume.
FROM ${BASE_IMAGE}
COPY --from=dependencies /opt/venv /opt/venv
COPY --from=operator /opt/operator/ /opt/venv/
ENV PATH=/opt/venv/bin:/usr/bin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
ENTRYPOINT ["aifactory", "run"]
CMD ["--liveness", "http://0.0.0.0:8080/healthz"]
