# One image for every role of dirigent-ts; the entrypoint is the CLI:
#   docker build -t dirigent-ts .
#   docker run --rm dirigent-ts --help
#   docker run -e DIRIGENT_TOKEN=... dirigent-ts control-plane --host cp1 ...   (docker-compose.yml runs them all)
# Stage 1 installs every dependency and compiles; stage 2 holds only the compiled output, the production
# dependencies (uWebSockets.js with the one native binary this platform loads), package.json and the
# example functions, and runs as the base image's unprivileged `node` user (uid 1000).
# With podman, build with `--format docker` (or BUILDAH_FORMAT=docker): the OCI format drops HEALTHCHECK.

FROM node:20-bookworm-slim AS build
# Marks this stage's images (never the final one), so that a cleanup can find them: `podman image prune
# --filter label=dirigent-ts.stage=build`.
LABEL dirigent-ts.stage=build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY actors/ actors/
COPY runtime/ runtime/
COPY cluster/ cluster/
COPY scripts/image-prune.mjs scripts/
# .dockerignore leaves out tests and benchmarks, so dist/ holds only what runs.
RUN npx tsc -p tsconfig.json \
 && npm prune --omit=dev --no-audit --no-fund \
 && node scripts/image-prune.mjs

FROM node:20-bookworm-slim
LABEL org.opencontainers.image.title="dirigent-ts" \
      org.opencontainers.image.description="A serverless cluster manager: control plane, data plane and worker roles (a TypeScript re-implementation of Dirigent)" \
      org.opencontainers.image.licenses="MIT"
ENV NODE_ENV=production
WORKDIR /app
# /data is where a data plane keeps its async jobs and a file-store control plane its state (mount a volume there).
RUN mkdir /data && chown node:node /data
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules/ node_modules/
COPY --from=build /src/dist/ dist/
COPY cluster/examples/ cluster/examples/
# The console's page, which the admin API serves from the source folder (cluster/console/serve.ts).
COPY cluster/console/index.html cluster/console/console.js cluster/console/console.css cluster/console/
COPY scripts/healthcheck.mjs scripts/
USER node
# invoke (HTTP/1.1 + WebSocket), compatibility front (HTTP/1.1 + h2c), cluster transport, admin API
EXPOSE 8080 8081 9090 9091
# The check follows the role the container runs: /readyz on a control plane's admin port, an HTTP answer
# from a data plane's invoke port, a live process for a worker (scripts/healthcheck.mjs).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["node", "scripts/healthcheck.mjs"]
ENTRYPOINT ["node", "dist/cluster/cli.js"]
CMD ["--help"]
