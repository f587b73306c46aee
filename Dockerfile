# plait's container: the same worker and server code as the local runtime (python -m plait.cluster.entrypoint),
# configured by the AgentDeployment's ConfigMap (mounted at /etc/plait/agent) and environment (PLAIT_ROLE,
# PLAIT_POOL, POD_NAME, ...; see cluster/entrypoint.py). Two variants differ only in torch's build:
#   docker build --target cpu  -t plait:latest .        # CPU pools, tool workers, the router, the operator
#   docker build --target cuda -t plait:cuda .          # NVIDIA pools (torch's CUDA wheels carry the CUDA
#                                                       # runtime; the node's driver comes with the NVIDIA
#                                                       # container toolkit)
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY plait ./plait
COPY ir ./ir
COPY planner ./planner
COPY codegen ./codegen
COPY scheduler ./scheduler
COPY cluster ./cluster
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PLAIT_AGENT_DIR=/etc/plait/agent PLAIT_RUN_DIR=/tmp/plait
RUN useradd --create-home --uid 10001 plait
WORKDIR /home/plait

FROM base AS cpu
ARG TORCH_VERSION=2.13.0
COPY --from=wheel /wheels /wheels
# torch first, from its CPU index (PyPI's build would bring CUDA); then plait and the rest from PyPI
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu "torch==${TORCH_VERSION}" \
    && pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER 10001
ENTRYPOINT ["python", "-m", "plait.cluster.entrypoint"]

FROM base AS cuda
ARG TORCH_VERSION=2.13.0
ARG CUDA=cu128
COPY --from=wheel /wheels /wheels
RUN pip install --no-cache-dir --index-url "https://download.pytorch.org/whl/${CUDA}" "torch==${TORCH_VERSION}" \
    && pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER 10001
ENTRYPOINT ["python", "-m", "plait.cluster.entrypoint"]
