# syntax=docker/dockerfile:1
# Hourglass images, one multi-stage build:
#   docker build -t hourglass/hourglass .                    # the Go services (default target)
#   docker build --target spark -t hourglass/spark .         # Spark 4.0.1 + the metric jobs + the Kafka connector
# Versions follow stack/versions.env (Spark 4.0.1, Scala 2.13).

ARG GO_VERSION=1.26
ARG SPARK_IMAGE=apache/spark:4.0.1-scala2.13-java17-python3-ubuntu

# --- the hourglass binary ------------------------------------------------------
FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd ./cmd
COPY internal ./internal
COPY services ./services
COPY router ./router
COPY lag-monitor ./lag-monitor
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/hourglass ./cmd/hourglass

# --- Spark's Kafka connector: the jars the Spark distribution lacks --------------
FROM maven:3.9-eclipse-temurin-17 AS spark-jars
COPY stack/spark/pom.xml /build/pom.xml
RUN mvn -q -B -f /build/pom.xml dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory=/jars -Dspark.version=4.0.1 -Dspark.token.provider.version=4.0.1

# --- Spark image for the metric jobs (driver and executors) -----------------------
FROM ${SPARK_IMAGE} AS spark
USER root
COPY --from=spark-jars /jars/ /opt/spark/jars/
COPY --from=build /out/hourglass /usr/local/bin/hourglass
COPY metrics-jobs/run_job.py /opt/hourglass/metrics-jobs/run_job.py
COPY metrics-jobs/hourglass_jobs /opt/hourglass/metrics-jobs/hourglass_jobs
COPY metrics-jobs/catalog.yaml /etc/hourglass/catalog.yaml
RUN mkdir -p /var/lib/hourglass/jobs && chown -R spark:spark /var/lib/hourglass
ENV HOURGLASS_CATALOG=/etc/hourglass/catalog.yaml \
    HOURGLASS_JOB_SCRIPT=/opt/hourglass/metrics-jobs/run_job.py \
    HOURGLASS_SPARK_SUBMIT=/opt/spark/bin/spark-submit \
    HOURGLASS_PYTHON=python3 \
    HOURGLASS_STATE_DIR=/var/lib/hourglass/jobs
USER spark

# --- the services (default target) --------------------------------------------------
FROM gcr.io/distroless/static-debian12:nonroot AS hourglass
COPY --from=build /out/hourglass /usr/local/bin/hourglass
COPY metrics-jobs/catalog.yaml /etc/hourglass/catalog.yaml
ENV HOURGLASS_CATALOG=/etc/hourglass/catalog.yaml
USER nonroot
ENTRYPOINT ["/usr/local/bin/hourglass"]
