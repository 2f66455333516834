# seed-daemon container image. See docs/deployment.md for how to run it and docs/security.md for
# what each setting protects against.
#
# test/docker/dockerfile.test.ts parses this file: it checks the invariants below and replays the
# build stage's COPY and RUN steps (all but apt-get) on the host, then starts the daemon the way
# ENTRYPOINT does and runs the HEALTHCHECK command. Keep build-stage RUN steps relative to WORKDIR
# and ENTRYPOINT/HEALTHCHECK in exec (JSON) form so that replay stays meaningful.

# ---- build: compile TypeScript and the better-sqlite3 native module ----
FROM node:24-bookworm-slim AS build

# better-sqlite3 compiles SQLite and its binding with node-gyp.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Compile better-sqlite3 from the lockfile-pinned tarball instead of letting prebuild-install
# fetch a binary whose integrity the lockfile does not cover.
ENV npm_config_build_from_source=better-sqlite3

# Dependencies first, so a source change does not reinstall them. --ignore-scripts keeps the
# install scripts of dev tools (esbuild, buf, protobufjs) out of the build; the one production
# dependency that needs its script gets it explicitly.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && npm rebuild better-sqlite3

COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
COPY bin ./bin

# Build, drop dev dependencies, and keep only the compiled addon of better-sqlite3 (its C sources
# and object files are ~25 MB the runtime never reads).
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && cd node_modules/better-sqlite3 \
 && rm -rf deps src \
 && find build -mindepth 1 ! -path build/Release ! -path build/Release/better_sqlite3.node -delete

# One run of the CLI writes V8's code cache of the bundle into dist/.compile-cache (the runtime
# stage has the same Node), so the image's daemon skips most of its compile at every start. The
# runtime user cannot write there, so without this every start would compile.
RUN node bin/seed-daemon.js --version

# ---- runtime ----
FROM node:24-bookworm-slim AS runtime

# The key-encryption key comes from a secret mounted at /run/secrets/seed-daemon-kek (32 random
# bytes in base64, mode 0400 or 0600, owned by uid 10001; examples/docker-compose.yml shows how).
# Without it the daemon exits 2 at once: it never seals keys under a KEK that would die with the
# container. The secret stays outside the /data volume, so a copy of the volume holds no usable
# key (docs/keys.md).
ENV NODE_ENV=production \
    SEED_DAEMON_DATA_DIR=/data \
    SEED_DAEMON_KEK_FILE=/run/secrets/seed-daemon-kek

# Fixed uid/gid so volume ownership is predictable across rebuilds and hosts. The data dir is
# 0700 and owned by that user: the daemon refuses a data dir that group or others can write, or
# that another user owns. A named volume mounted on /data inherits this owner and mode.
RUN groupadd --system --gid 10001 seed \
 && useradd --system --uid 10001 --gid seed --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin seed \
 && install -d -o seed -g seed -m 0700 /data

WORKDIR /app

# Application files stay owned by root: the daemon's user can read them but not change them.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin

USER 10001:10001

VOLUME /data

# 55001: HTTP/1.1 (Connect, gRPC-web, /health, /metrics). 55002: h2c (gRPC, Connect over HTTP/2).
EXPOSE 55001 55002

STOPSIGNAL SIGTERM

# /health needs no token, but it is behind the Host gate like every path: send a loopback Host
# with the listener's port. No curl in slim images, so node does the request.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "const r=require('node:http').get({host:'127.0.0.1',port:55001,path:'/health',headers:{Host:'localhost:55001'},timeout:4000},(s)=>process.exit(s.statusCode===200?0:1));r.on('timeout',()=>r.destroy(new Error('timeout')));r.on('error',()=>process.exit(1))"]

# Inside the container the daemon must listen on all interfaces for a published port to reach
# it; the Host gate (SEED_DAEMON_ALLOWED_HOSTS) and the bearer token (SEED_DAEMON_AUTH_TOKEN, or
# the generated /data/auth.token) still apply. The addresses live in ENTRYPOINT and CMD is empty,
# so `docker run IMAGE --log-level debug` appends flags instead of replacing the addresses.
# Exec form: node is PID 1 and receives SIGTERM itself (it drains and exits 0).
ENTRYPOINT ["node", "/app/bin/seed-daemon.js", "--http-addr", "0.0.0.0:55001", "--grpc-addr", "0.0.0.0:55002"]
CMD []
