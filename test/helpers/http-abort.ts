// A streaming completion whose client goes away after the first chunk (socket destroyed).
import { request } from 'node:http';

export function abortMidStream(url: string, body: unknown): Promise<void> {
  return new Promise((resolve) => {
    const u = new URL(url + '/v1/completions');
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve();
      });
      res.on('error', () => resolve());
    });
    req.on('error', () => resolve());
    req.end(JSON.stringify(body));
  });
}
