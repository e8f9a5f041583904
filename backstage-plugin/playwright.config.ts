import { defineConfig } from '@playwright/test';

/**
 * End-to-end test of the max-cloud Backstage plugin in a real headless Chromium (Debian's `chromium`
 * package; nothing is downloaded): `npx playwright test` here. globalSetup starts maxcloud-server dev, the
 * plugin's dev backend and its dev app; screenshots go to test-results/screenshots/.
 */
export default defineConfig({
  testDir: './e2e',
  outputDir: './test-results/e2e',
  globalSetup: './e2e/globalSetup.ts',
  // starting the servers takes up to ~2 minutes on a cold machine; the test itself well under one
  globalTimeout: 10 * 60_000,
  timeout: 180_000,
  expect: { timeout: 15_000 },
  workers: 1,
  retries: 0,
  reporter: [['list'], ['html', { outputFolder: 'playwright-report', open: 'never' }]],
  use: {
    browserName: 'chromium',
    viewport: { width: 1400, height: 1000 },
    actionTimeout: 15_000,
    navigationTimeout: 60_000,
    screenshot: 'only-on-failure',
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
});
