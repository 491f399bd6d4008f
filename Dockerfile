# The flashcrowd CLI in an image: docker-compose.yml runs the mock gateways and
# the reference checkout from it (Redis and k6 come from their official images).
# Not built on the development machine (no Docker engine there); test/compose.test.ts
# runs each compose command of this image as a local process instead.
FROM node:22-slim
ENV NODE_ENV=production
WORKDIR /app
# Dependencies first, so a source change does not reinstall them. The CLI runs
# TypeScript through tsx (a dependency); dev dependencies are not needed.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY . .
USER node
ENTRYPOINT ["node", "bin/flashcrowd.js"]
CMD ["--help"]
