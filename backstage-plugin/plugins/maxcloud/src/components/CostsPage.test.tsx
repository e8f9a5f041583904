import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { renderInTestApp } from '@backstage/frontend-test-utils';
import { MaxcloudClient } from '@maxcloud/backstage-plugin-maxcloud-common';
import { maxcloudApiRef } from '../api';
import { MaxcloudRouter } from './MaxcloudRouter';
import { startTestMaxcloud, TestMaxcloud } from './testUtils';

jest.setTimeout(60_000);

async function render(client: MaxcloudClient, path: string) {
  await renderInTestApp(<MaxcloudRouter />, {
    apis: [[maxcloudApiRef, client]],
    mountPath: '/maxcloud',
    initialRouteEntries: [path],
  });
}

function quotaRow(key: string): HTMLElement {
  return screen.getByTestId(`quota-${key}`);
}

describe('Costs & limits against maxcloud-server dev with a quota file', () => {
  let mc: TestMaxcloud;
  let dir: string;
  let member: MaxcloudClient;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'maxcloud-quotas-'));
    const quotas = join(dir, 'quotas.yaml');
    writeFileSync(quotas, 'default:\n  services: 4\n  cpu: "40"\n  memory: 64Gi\n');
    mc = await startTestMaxcloud('Budget Co', { args: ['--quotas', quotas] });
    member = await mc.member('dev@budget.example');
    // one App at its defaults (10 instances at most, 1 vCPU and 512 MiB each) and one secret
    const shop = await mc.admin('POST', '/services', { name: 'shop', image: 'nginx:1.27' });
    if (shop.status !== 201) throw new Error(`deploy shop: ${JSON.stringify(shop.body)}`);
    const secret = await mc.admin('PUT', '/secrets/payment-keys', {
      data: { STRIPE_KEY: 'sk_live_do-not-show', WEBHOOK_SECRET: 'whsec_do-not-show' },
    });
    if (secret.status !== 201) throw new Error(`set the secret: ${JSON.stringify(secret.body)}`);
  });
  afterAll(async () => {
    await mc?.server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is reachable from the navigation', async () => {
    const user = userEvent.setup();
    await render(mc.client, '/maxcloud');
    await user.click(await screen.findByRole('tab', { name: 'Costs & limits' }));
    expect(await screen.findByTestId('costs-page')).toBeInTheDocument();
    expect(screen.getByRole('tab', { name: 'Costs & limits' })).toHaveAttribute('aria-selected', 'true');
  });

  it('shows the limits against what is used, the invoice preview and the secrets to an admin', async () => {
    await render(mc.client, '/maxcloud/costs');
    await screen.findByTestId('quotas', {}, { timeout: 10_000 });
    expect(quotaRow('services')).toHaveAttribute('data-used', '1');
    expect(quotaRow('services')).toHaveAttribute('data-limit', '4');
    expect(within(quotaRow('services')).getByTestId('quota-used')).toHaveTextContent('1');
    expect(within(quotaRow('services')).getByTestId('quota-limit')).toHaveTextContent('4');
    // a quarter of the limit, as a bar
    expect(within(quotaRow('services')).getByRole('progressbar')).toHaveAttribute('aria-valuenow', '25');
    expect(within(quotaRow('cpu_milli')).getByTestId('quota-used')).toHaveTextContent('10 vCPU');
    expect(within(quotaRow('cpu_milli')).getByTestId('quota-limit')).toHaveTextContent('40 vCPU');
    expect(within(quotaRow('memory_bytes')).getByTestId('quota-used')).toHaveTextContent('5 GiB');
    expect(within(quotaRow('memory_bytes')).getByTestId('quota-limit')).toHaveTextContent('64 GiB');
    expect(within(quotaRow('databases')).getByTestId('quota-limit')).toHaveTextContent('unlimited');
    expect(within(quotaRow('databases')).queryByRole('progressbar')).toBeNull();

    // the running month: a preview, with the amounts the order service computed
    const invoice = await screen.findByTestId('invoice', {}, { timeout: 10_000 });
    const expected = (await mc.admin('GET', '/usage/invoice')).body;
    const month = new Date().toISOString().slice(0, 7);
    expect(invoice).toHaveAttribute('data-number', `${mc.slug}-${month}`);
    expect(invoice).toHaveAttribute('data-final', 'false');
    expect(within(invoice).getByTestId('invoice-final')).toHaveTextContent('preview');
    expect(within(invoice).getByTestId('invoice-net')).toHaveTextContent(`EUR ${expected.net}`);
    expect(within(invoice).getByTestId('invoice-vat')).toHaveTextContent(`EUR ${expected.vat}`);
    expect(invoice).toHaveTextContent(`VAT ${expected.vat_percent}%`);
    expect(within(invoice).getByTestId('invoice-gross')).toHaveTextContent(`EUR ${expected.gross}`);
    // no cluster meters pods here: no line yet
    expect(expected.lines).toEqual([]);
    expect(within(invoice).getByTestId('invoice-no-lines')).toBeInTheDocument();

    const secrets = await screen.findByTestId('secrets', {}, { timeout: 10_000 });
    const row = within(secrets).getByTestId('secret');
    expect(row).toHaveAttribute('data-name', 'payment-keys');
    expect(within(row).getByTestId('secret-keys')).toHaveTextContent('STRIPE_KEY');
    expect(within(row).getByTestId('secret-keys')).toHaveTextContent('WEBHOOK_SECRET');
    expect(document.body).not.toHaveTextContent('do-not-show');
  });

  it('updates the quotas live when an order changes the totals', async () => {
    await render(mc.client, '/maxcloud/costs');
    await waitFor(() => expect(quotaRow('services')).toHaveAttribute('data-used', '1'), { timeout: 10_000 });
    // ordered elsewhere (the CLI, the API): the order's events make the page read the totals again
    expect((await mc.admin('POST', '/services', { name: 'blog', image: 'nginx:1.27' })).status).toBe(201);
    await waitFor(() => expect(quotaRow('services')).toHaveAttribute('data-used', '2'), { timeout: 10_000 });
    expect(within(quotaRow('cpu_milli')).getByTestId('quota-used')).toHaveTextContent('20 vCPU');
  });

  it('shows a member the limits and the secret names, but no invoice', async () => {
    await render(member, '/maxcloud/costs');
    await screen.findByTestId('quotas', {}, { timeout: 10_000 });
    expect(quotaRow('services')).toHaveAttribute('data-limit', '4');
    expect(quotaRow('services')).toHaveAttribute('data-used', '2');
    const secrets = await screen.findByTestId('secrets', {}, { timeout: 10_000 });
    expect(within(secrets).getByTestId('secret')).toHaveAttribute('data-name', 'payment-keys');
    // the order service refuses the member: its reason shows, no amount does
    const refused = await screen.findByTestId('invoice-admins-only', {}, { timeout: 10_000 });
    expect(refused).toHaveTextContent('this action needs the admin role in the organisation');
    expect(screen.queryByTestId('invoice')).toBeNull();
    expect(screen.queryByTestId('invoice-gross')).toBeNull();
  });
});
