/**
 * A Backstage user orders an App through the form generated from the App's JSON Schema: the order service
 * refuses an invalid value (a CEL rule of the XRD, so only the server knows) and the form shows the error at
 * the field; the valid order opens a pull request that waits for review; approved elsewhere, the order page
 * changes live; My services, the resource's page and the entity card show the new App.
 *
 * The browser talks only to the dev backend's `maxcloud` plugin, as the guest user signed in through
 * Backstage; the test itself uses the order service's API (as an admin elsewhere would) to require reviews
 * and to approve.
 */
import { expect, Page, test } from '@playwright/test';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pushLogs } from '../testing/loki';

const SHOTS = resolve(__dirname, '..', 'test-results', 'screenshots');

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run through playwright.config.ts (globalSetup)`);
  return value;
}

async function admin(method: string, path: string, body?: unknown) {
  const response = await fetch(`${env('MAXCLOUD_E2E_API')}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${env('MAXCLOUD_E2E_API_KEY')}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

async function shot(page: Page, name: string) {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** Opens a page of the dev app, signing in as the guest user through the backend when asked to. */
async function open(page: Page, path: string) {
  await page.goto(`${env('MAXCLOUD_E2E_APP_URL')}${path}`);
  const enter = page.getByRole('button', { name: 'Enter' });
  const ready = page.getByRole('tab', { name: 'Marketplace' }).or(page.getByTestId('maxcloud-entity-card'));
  await expect(enter.or(ready).first()).toBeVisible({ timeout: 60_000 });
  if (await enter.isVisible()) await enter.click();
  await expect(ready.first()).toBeVisible();
}

test('order an App through the generated form and follow it live', async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', e => errors.push(e.message));

  // The marketplace: the catalog's types with descriptions, merge policies and prices.
  await open(page, '/maxcloud');
  const app = page.getByTestId('service-type-App');
  await expect(app).toContainText('Serverless container app that scales to zero');
  await expect(app.getByTestId('price')).toContainText(/EUR 0\.00–\d+\.\d\d per month/);
  await expect(app.getByTestId('merge-policy')).toHaveText('merges at once');
  await expect(page.getByTestId('service-type-Database').getByTestId('merge-policy')).toHaveText('needs review');
  await shot(page, '01-marketplace');

  // The order form, generated from the App's JSON Schema: defaults, enums, descriptions.
  await app.getByRole('button', { name: 'Order App' }).click();
  await expect(page).toHaveURL(/\/maxcloud\/order\/App$/);
  await expect(page.locator('#root_port')).toHaveValue('8080');
  await expect(page.locator('#root_scaling_maxScale')).toHaveValue('10');
  await expect(page.getByText('TCP port the container listens on for HTTP requests.')).toBeVisible();
  await expect(page.getByTestId('order-price')).toContainText('at the defaults');
  await page.getByTestId('order-name').fill('shop');
  await page.locator('#root_image').fill('nginx:1.27');
  await shot(page, '02-order-form');

  // An invalid value the JSON Schema allows but the App's CEL rule refuses: the order service's error shows
  // at the field, and nothing is ordered.
  await page.locator('#root_scaling_minScale').fill('5');
  await page.locator('#root_scaling_maxScale').fill('2');
  await page.getByTestId('order-submit').click();
  const fieldError = page.locator('#root_scaling_minScale__error');
  await expect(fieldError).toHaveText(/minScale must not exceed maxScale/);
  await expect(page.getByTestId('order-error')).toContainText('parameters.scaling.minScale');
  expect((await admin('GET', '/orders')).body).toEqual([]);
  await fieldError.scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(SHOTS, '03-field-error.png') });

  // This organisation now wants Apps reviewed (as its admin would decide elsewhere).
  expect((await admin('PUT', '/policies/App/create', { policy: 'review' })).status).toBe(200);

  // Fixed: the order is placed; its page shows the pull request waiting for review.
  await page.locator('#root_scaling_maxScale').fill('20');
  await expect(page.getByTestId('order-price')).toContainText('with these parameters');
  await page.getByTestId('order-submit').click();
  await expect(page).toHaveURL(/\/maxcloud\/orders\/[0-9a-f-]+$/);
  const view = page.getByTestId('order-view');
  await expect(view.getByTestId('order-resource-name')).toHaveText('shop');
  await expect(view.getByTestId('pull-request-title')).toHaveText(/^Pull request #\d+$/);
  await expect(view.getByTestId('order-state')).toHaveAttribute('data-state', 'pr_open');
  await expect(view.getByTestId('review-state')).toHaveText('review pending');
  await expect(view.getByTestId('pull-request-body')).toContainText('Creates App shop');
  await expect(view.getByTestId('live-indicator')).toHaveAttribute('data-live', 'true');
  const orderId = (await view.getAttribute('data-order-id'))!;
  const placed = (await admin('GET', `/orders/${orderId}`)).body;
  expect(placed).toMatchObject({
    kind: 'App',
    name: 'shop',
    requester: expect.stringContaining('user:default/jane'),
    parameters: { image: 'nginx:1.27', scaling: { minScale: 5, maxScale: 20 } },
  });
  await shot(page, '04-order-review-pending');

  // Approved elsewhere: the page changes from "review pending" to merged without reloading.
  await page.evaluate(() => ((window as any).__notReloaded = true));
  expect((await admin('POST', `/orders/${orderId}/approve`, {})).status).toBe(200);
  await expect(view.getByTestId('order-state')).toHaveAttribute('data-state', 'merged', { timeout: 10_000 });
  await expect(view.getByTestId('review-state')).toContainText('approved by');
  await expect(view.getByTestId('pull-request')).toHaveAttribute('data-pr-state', 'merged');
  expect(await page.evaluate(() => (window as any).__notReloaded)).toBe(true);
  await shot(page, '05-order-merged-live');

  // My services: the App with its status, pull request and review state.
  await page.getByRole('tab', { name: 'My services' }).click();
  const row = page.getByRole('row').filter({ has: page.getByTestId('service-link').filter({ hasText: 'shop' }) });
  await expect(row.getByTestId('resource-status')).toHaveText('pending');
  await expect(row.getByTestId('pull-request-link')).toHaveText(/^Pull request #\d+$/);
  await expect(row.getByTestId('review-state')).toContainText('approved by');
  await expect(row.getByTestId('service-order-state')).toHaveAttribute('data-state', 'merged');
  await shot(page, '06-my-services');

  // The user acts for two organisations: in the other one (a member there) there is nothing yet, and an
  // order of it waiting for review has no approve button for a member.
  const other = env('MAXCLOUD_E2E_TENANT2');
  const waiting = await fetch(`${env('MAXCLOUD_E2E_API')}/orders`, {
    method: 'POST',
    headers: { authorization: `Bearer ${env('MAXCLOUD_E2E_API_KEY2')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ kind: 'Database', name: 'ledger', parameters: {} }),
  }).then(r => r.json());
  await page.getByTestId('tenant-select').click();
  await page.getByRole('option', { name: `${other} (member)` }).click();
  const ledger = page.getByRole('row').filter({ has: page.getByTestId('service-link').filter({ hasText: 'ledger' }) });
  await expect(ledger.getByTestId('review-state')).toHaveText('review pending');
  await expect(page.getByTestId('service-link').filter({ hasText: 'shop' })).toHaveCount(0);
  await shot(page, '06b-other-tenant');
  await ledger.getByTestId('service-order-link').click();
  await expect(page.getByTestId('order-view')).toHaveAttribute('data-order-id', waiting.id);
  await expect(page.getByTestId('review-state')).toHaveText('review pending');
  await expect(page.getByTestId('approve-order')).toHaveCount(0);
  await page.getByRole('tab', { name: 'My services' }).click();
  await page.getByTestId('tenant-select').click();
  await page.getByRole('option', { name: `${env('MAXCLOUD_E2E_TENANT')} (admin)` }).click();
  await expect(row.getByTestId('review-state')).toContainText('approved by');

  // The pull request link of the local provider leads to the pull request on the order's page.
  await row.getByTestId('pull-request-link').click();
  await expect(page).toHaveURL(new RegExp(`/maxcloud/orders/${orderId}#pull-request$`));
  await expect(page.getByTestId('pull-request-body')).toBeVisible();

  // The App prints (its log lines, as a log shipper delivers them to Loki).
  const pod = {
    namespace: `mc-${env('MAXCLOUD_E2E_TENANT')}`,
    pod: 'shop-00001-deployment-6d9f7c-x4k2p',
    app: 'shop',
    revision: 'shop-00001',
  };
  const t0 = Date.now() - 30_000;
  await pushLogs(env('MAXCLOUD_E2E_LOKI_URL'), {
    ...pod,
    values: [
      [t0, 'nginx: starting'],
      [t0 + 12, 'nginx: listening on 0.0.0.0:8080'],
      [t0 + 2_000, '10.0.0.7 - "GET / HTTP/1.1" 200 615'],
    ],
  });

  // The resource's page: its orders, and no cluster connected for the resource tree in dev.
  await page.getByTestId('order-service-link').click();
  const detail = page.getByTestId('service-detail');
  await expect(detail).toContainText('apps/shop.yaml');
  await expect(detail.getByTestId('resource-tree-unavailable')).toContainText('no cluster is connected');
  await expect(detail.getByTestId('service-orders')).toContainText(/Pull request #\d+/);
  // its revisions (ordered through the catalog: none named, all traffic to the latest)
  await expect(detail.getByTestId('revisions-none')).toContainText('Requests go 100% to the latest revision.');
  // its logs, read from Loki through the backend plugin; following streams new lines into the page
  const logLines = detail.getByTestId('log-line');
  await expect(logLines).toHaveCount(3);
  await expect(logLines.first()).toContainText('[shop-00001] nginx: starting');
  await detail.getByTestId('logs-follow').check();
  await expect(detail.getByTestId('logs-following')).toBeVisible();
  await expect(logLines).toHaveCount(3);
  await pushLogs(env('MAXCLOUD_E2E_LOKI_URL'), { ...pod, values: [[Date.now(), '10.0.0.9 - "POST /cart HTTP/1.1" 201 42']] });
  await expect(logLines.last()).toContainText('POST /cart', { timeout: 15_000 });
  await expect(logLines).toHaveCount(4);
  await shot(page, '07-service-detail');

  // Costs & limits: the quotas, the running month's invoice preview (the user is an admin here) and the
  // secrets' names and keys, never their values.
  expect(
    (await admin('PUT', '/secrets/shop-db', { data: { DATABASE_URL: 'postgres://secret-value', PASSWORD: 'pw-secret-value' } }))
      .status,
  ).toBe(201);
  await page.getByRole('tab', { name: 'Costs & limits' }).click();
  await expect(page.getByTestId('quota-services')).toHaveAttribute('data-used', '1');
  await expect(page.getByTestId('quota-services').getByTestId('quota-limit')).toHaveText('unlimited');
  await expect(page.getByTestId('invoice')).toHaveAttribute('data-final', 'false');
  await expect(page.getByTestId('invoice-final')).toContainText('preview');
  await expect(page.getByTestId('invoice-gross')).toHaveText(/^EUR \d+\.\d\d$/);
  await expect(page.getByTestId('secret').getByTestId('secret-keys')).toContainText('DATABASE_URL');
  await expect(page.getByTestId('costs-page')).not.toContainText('secret-value');
  await shot(page, '09-costs-and-limits');
  // In the organisation where the user is a member, the invoice is not even asked for.
  await page.getByTestId('tenant-select').click();
  await page.getByRole('option', { name: `${other} (member)` }).click();
  await expect(page.getByTestId('invoice-admins-only')).toContainText('only admins');
  await expect(page.getByTestId('invoice')).toHaveCount(0);
  await expect(page.getByTestId('quotas')).toBeVisible();
  await page.getByTestId('tenant-select').click();
  await page.getByRole('option', { name: `${env('MAXCLOUD_E2E_TENANT')} (admin)` }).click();
  await expect(page.getByTestId('invoice')).toBeVisible();

  // The entity card of a catalog entity that stands for the App.
  await open(page, `/entity-card?resource=App/shop&tenant=${env('MAXCLOUD_E2E_TENANT')}`);
  const card = page.getByTestId('maxcloud-entity-card');
  await expect(card.getByTestId('order-state')).toHaveAttribute('data-state', 'merged');
  await expect(card.getByTestId('resource-status')).toHaveText('pending');
  await expect(card.getByTestId('pull-request-link')).toHaveText(/^Pull request #\d+$/);
  await shot(page, '08-entity-card');

  expect(errors).toEqual([]);
});
