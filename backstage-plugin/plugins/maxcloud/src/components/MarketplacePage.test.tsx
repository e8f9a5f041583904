import { screen, within } from '@testing-library/react';
import { renderInTestApp } from '@backstage/frontend-test-utils';
import { maxcloudApiRef } from '../api';
import { MaxcloudRouter } from './MaxcloudRouter';
import { startTestMaxcloud, TestMaxcloud } from './testUtils';

jest.setTimeout(30_000);

describe('Marketplace against maxcloud-server dev', () => {
  let mc: TestMaxcloud;
  beforeAll(async () => {
    mc = await startTestMaxcloud('Market Co');
  });
  afterAll(() => mc?.server.stop());

  it('shows every service type of the catalog with its description, merge policy and an Order button', async () => {
    await renderInTestApp(<MaxcloudRouter />, {
      apis: [[maxcloudApiRef, mc.client]],
      mountPath: '/maxcloud',
      initialRouteEntries: ['/maxcloud'],
    });
    const app = await screen.findByTestId('service-type-App', {}, { timeout: 10_000 });
    expect(within(app).getByText('Serverless container app that scales to zero, served over HTTPS')).toBeInTheDocument();
    expect(within(app).getByTestId('merge-policy')).toHaveTextContent('merges at once');
    // the monthly estimate at the defaults: 0 to 10 instances of 1 vCPU and 512 MiB
    expect(within(app).getByTestId('price')).toHaveTextContent(/^EUR 0\.00–\d+\.\d\d per month/);
    expect(within(app).getByTestId('price')).toHaveTextContent('0–10 instances of 1 vCPU, 512 MiB');
    expect(within(app).getByRole('button', { name: 'Order App' })).toHaveAttribute('href', '/maxcloud/order/App');
    const database = screen.getByTestId('service-type-Database');
    expect(within(database).getByTestId('merge-policy')).toHaveTextContent('needs review');
    expect(within(database).getByTestId('price')).toHaveTextContent(/^EUR \d+\.\d\d per month/);
    expect(within(screen.getByTestId('service-type-DNSRecord')).getByTestId('price')).toHaveTextContent(
      'No price estimate',
    );
    for (const kind of ['Registry', 'DNSRecord', 'Workspace']) {
      expect(screen.getByTestId(`service-type-${kind}`)).toBeInTheDocument();
    }
  });
});
