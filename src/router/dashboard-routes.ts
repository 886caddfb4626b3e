// Registers the dashboard on the router's app: the static page and its assets (open, they hold no
// data; strict CSP, nosniff, no caching) and /dashboard/data (behind --api-key like /v1/*: see the
// guard passed to createGatewayApp in server.ts).
import type { FastifyInstance, FastifyReply } from 'fastify';
import { DASHBOARD_CSP, DASHBOARD_CSS, DASHBOARD_HTML, DASHBOARD_JS } from './dashboard-page.js';
import { dashboardData, type DashboardSource } from './dashboard-data.js';

export const isDashboardDataUrl = (url: string) => /^\/dashboard\/data(\?|$)/.test(url);

function asset(reply: FastifyReply, type: string, body: string) {
  return reply
    .header('content-type', `${type}; charset=utf-8`)
    .header('content-security-policy', DASHBOARD_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('cache-control', 'no-store')
    .send(body);
}

export function registerDashboard(app: FastifyInstance, source: () => DashboardSource): void {
  app.get('/dashboard', async (_req, reply) => asset(reply, 'text/html', DASHBOARD_HTML));
  app.get('/dashboard/app.js', async (_req, reply) => asset(reply, 'text/javascript', DASHBOARD_JS));
  app.get('/dashboard/app.css', async (_req, reply) => asset(reply, 'text/css', DASHBOARD_CSS));
  app.get('/dashboard/data', async (_req, reply) => reply.header('cache-control', 'no-store').header('x-content-type-options', 'nosniff').send(dashboardData(source())));
}
