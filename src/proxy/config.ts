// The proxy's config is the gateway's (src/gateway/config.ts): one type, validated once.
export * from '../gateway/config.js';
