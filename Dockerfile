# syntax=docker/dockerfile:1
# hm9k: one image for both halves (`hm9k run --apps`, `hm9k run --nodes`).
# Node 22 LTS, the release CI runs (package.json engines: >=22.12).

FROM node:22-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/bundle.mjs ./scripts/
COPY src ./src
# npm run build: tsc, then @kubernetes/client-node bundled tree-shaken into dist/kube/client.js
# (half the library's memory); then the dev dependencies go.
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM node:22-bookworm-slim
# ipmitool fences and powers on hosts through their BMCs; tini forwards signals and reaps children
# (ipmitool and ssh are child processes), so SIGTERM reaches hm9k and nothing is left as a zombie.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ipmitool tini ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY crds ./crds
# NODE_OPTIONS and MALLOC_ARENA_MAX: a small young generation and two malloc arenas, about 45 MB less
# RSS (src/production-runtime.ts says why; the benchmarks run hm9k with the same settings).
ENV NODE_ENV=production \
    HOME=/tmp \
    NODE_OPTIONS=--max-semi-space-size=2 \
    MALLOC_ARENA_MAX=2
# Non-root (the node image's `node` user, uid 1000); the root filesystem may be read-only: hm9k writes
# only to /tmp (mount an emptyDir there).
USER 1000:1000
# 8080 metrics, 8081 probes, 5155 the app half's API (/bulk_app_state, /dea/heartbeat, /dump)
EXPOSE 8080 8081 5155
# --optimize-for-size: a V8 flag, which Node takes only on its command line (src/production-runtime.ts;
# the chart's nodeFlags value replaces it).
ENTRYPOINT ["/usr/bin/tini", "--", "node", "--optimize-for-size", "/app/bin/hm9k.js"]
CMD ["run"]
