# syntax=docker/dockerfile:1
# tanuki-sts container image. Build: docker build -t tanuki-sts .
# Two stages: the build stage compiles TypeScript (dev dependencies) and the
# pipeline client bundle; the run stage holds only the compiled code and the
# production dependencies, runs as a non-root user and has no shell.
# Node 22 (maintained LTS) in both stages, so the native module (better-sqlite3)
# built or fetched here matches the runtime's ABI. See docs/deployment.md.

FROM node:22-bookworm-slim AS build
# python3, make and g++ only in case no prebuilt better-sqlite3 binary can be fetched.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY scripts ./scripts
COPY src ./src
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM gcr.io/distroless/nodejs22-debian12:nonroot
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/bin ./bin
COPY --from=build /app/dist ./dist
COPY --from=build /app/node_modules ./node_modules
# The SQLite ledger lives here (mount a volume); unused with store.postgres.
VOLUME ["/var/lib/tanuki-sts"]
# 8600: token endpoint (server.listen); 9464: metrics (server.metricsListen).
EXPOSE 8600 9464
USER nonroot
ENTRYPOINT ["/nodejs/bin/node", "/app/bin/tanuki-sts.js"]
CMD ["serve", "--config", "/etc/tanuki-sts/config.yaml"]
