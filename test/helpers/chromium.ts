// Headless Debian chromium through playwright-core, for the HTML report tests. Returns null (and marks the
// test skipped with one visible line) where chromium is not installed.
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext } from 'playwright-core';

export const chromiumPath = process.env.PDSERVE_CHROMIUM || '/usr/bin/chromium';

/** `enforceCsp`: keep the pages' Content-Security-Policy (the report tests bypass it; the dashboard's is part of what is tested). */
export async function launchChromium(t: { skip: (msg?: string) => void }, enforceCsp = false): Promise<BrowserContext | null> {
  if (!existsSync(chromiumPath)) {
    console.log(`# chromium not found at ${chromiumPath}: skipping the HTML render check`);
    t.skip('chromium not installed');
    return null;
  }
  const { chromium } = await import('playwright-core');
  return chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'pds-chromium-')), {
    executablePath: chromiumPath, headless: true, bypassCSP: !enforceCsp, viewport: { width: 1250, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
