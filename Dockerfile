# syntax=docker/dockerfile:1
#
# One image for every command of sensor-logger; the compose service picks the command:
#   docker run sensor-logger ingest       the write side (needs KAFKA_BROKERS and DATABASE_URL)
#   docker run sensor-logger query        the read side (needs DATABASE_URL or QUERY_DATABASE_URL)
#   docker run sensor-logger all-in-one   both in one process (needs KAFKA_BROKERS; the embedded
#                                          database lives in /data unless DATABASE_URL is set)
# The image has no Java, so all-in-one cannot start its local Kafka broker here: set KAFKA_BROKERS.
#
# NOTE: no Docker engine ran on the machine where this file was written, so the image has not
# been built. docs/deployment.md says what was checked instead.

# Node.js 20 is the version the test suite runs on. It reached its end of life on 2026-04-30
# (Node.js release schedule), so build with --build-arg NODE_VERSION=22 or 24 once the tests pass there.
ARG NODE_VERSION=20

FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=dev keeps tsx and esbuild: they are runtime dependencies, because bin/sensor-logger.js
# loads the TypeScript sources through tsx. TypeScript, vitest and deno are left out.
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:${NODE_VERSION}-bookworm-slim AS runtime
WORKDIR /app
# Code and packages stay owned by root, so the service user cannot change them.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY bin ./bin
COPY src ./src
# src/cli/Layers.ts imports the local broker's module, also when KAFKA_BROKERS is set.
COPY infra/kafka/LocalKafka.ts ./infra/kafka/LocalKafka.ts
# /data holds the embedded database of all-in-one; mount a volume there to keep it.
RUN mkdir /data && chown node:node /data
# The node user (uid 1000) comes with the official Node.js images.
USER node
# In a container the query service must listen on every interface, not only on loopback.
ENV HTTP_HOST=0.0.0.0 \
    HTTP_PORT=8080 \
    DATA_DIR=/data
EXPOSE 8080
# No HEALTHCHECK here: the ingest job serves no HTTP, so one check cannot fit every command. The
# compose file checks the query service over HTTP.
ENTRYPOINT ["node", "bin/sensor-logger.js"]
CMD ["--help"]
