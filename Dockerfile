# The watch-party server. Runs TypeScript through tsx (a runtime dependency): no build step.
FROM node:20-slim

ENV NODE_ENV=production
WORKDIR /app

COPY package.json package-lock.json ./
# Every workspace's package.json: npm ci installs the workspaces the lockfile names.
COPY packages/protocol/package.json ./packages/protocol/
COPY packages/client/package.json ./packages/client/
RUN npm ci --omit=dev && npm cache clean --force

COPY tsconfig.json tsconfig.base.json ./
COPY packages/protocol/src ./packages/protocol/src
# The demo page (/demo) bundles the client SDK from its source at the first request.
COPY packages/client/src ./packages/client/src
COPY demo ./demo
COPY src ./src
COPY migrations ./migrations

# Unprivileged; the embedded database (used only when DATABASE_URL is unset) lives in /app/data.
RUN mkdir -p /app/data && chown node:node /app/data
USER node

EXPOSE 3000
CMD ["npm", "start"]
