# The opsloop image: worker, relay and CLI. Build: docker build -t opsloop .
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY opsloop ./opsloop
COPY streams ./streams
COPY detectors ./detectors
COPY retrain ./retrain
COPY storage ./storage
RUN pip install . && useradd --create-home opsloop
USER opsloop
ENTRYPOINT ["opsloop"]
CMD ["worker"]
