# One image for the three gesco services (sender, channel, receiver); docker-compose.yml
# picks the service with its command. CPU build of PyTorch by default; for a GPU
# receiver build with a CUDA wheel index, e.g.
#   docker compose build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu124
# and start with the GPU override:
#   docker compose -f docker-compose.yml -f docker-compose.gpu.yml up
FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.13.0

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GESCO_CHECKPOINT_DIR=/app/checkpoints

WORKDIR /app

# PyTorch first: the largest layer, rebuilt only when its version or index changes.
RUN pip install --index-url "${TORCH_INDEX}" "torch==${TORCH_VERSION}"

COPY pyproject.toml README.md ./
COPY proto ./proto
COPY gesco ./gesco
COPY gesco_net ./gesco_net
COPY sender ./sender
COPY channel ./channel
COPY receiver ./receiver
RUN pip install . && python -c "import gesco.link, gesco_net.cli, sender.app, channel.server, receiver.service"

# The shipped models (diffusion model and segmenter, trained on the synthetic scenes)
# and the configs that reproduce them.
COPY checkpoints ./checkpoints
COPY configs ./configs

RUN useradd --create-home --uid 1000 gesco && mkdir -p /data && chown gesco:gesco /data
USER gesco
VOLUME ["/data"]

# 8000 sender (HTTP), 8001 channel (gRPC), 8002 receiver (REST), 8003 receiver (gRPC)
EXPOSE 8000 8001 8002 8003

CMD ["gesco", "--help"]
