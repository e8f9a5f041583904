import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { renderInTestApp } from '@backstage/frontend-test-utils';
import { maxcloudApiRef } from '../api';
import { MaxcloudRouter } from './MaxcloudRouter';
import { startTestMaxcloud, TestMaxcloud } from './testUtils';

jest.setTimeout(60_000);

async function render(mc: TestMaxcloud, path: string) {
  await renderInTestApp(<MaxcloudRouter />, {
    apis: [[maxcloudApiRef, mc.client]],
    mountPath: '/maxcloud',
    initialRouteEntries: [path],
  });
  // the page is live once the event stream is open
  await waitFor(() => expect(screen.getAllByTestId('live-indicator')[0]).toHaveAttribute('data-live', 'true'), {
    timeout: 10_000,
  });
}

async function eventuallyOrderState(mc: TestMaxcloud, id: string, state: string) {
  for (let i = 0; i < 100; i++) {
    const { body } = await mc.admin('GET', `/orders/${id}`);
    if (body.state === state) return body;
    await new Promise(ok => setTimeout(ok, 100));
  }
  throw new Error(`order ${id} did not reach ${state}`);
}

describe('Orders that wait for review, against maxcloud-server dev', () => {
  let mc: TestMaxcloud;
  beforeAll(async () => {
    mc = await startTestMaxcloud('Review Co');
    const policy = await mc.admin('PUT', '/policies/App/create', { policy: 'review' });
    if (policy.status !== 200) throw new Error(`review policy: ${policy.status} ${JSON.stringify(policy.body)}`);
  });
  afterAll(() => mc?.server.stop());

  it('shows the pull request waiting for review and changes live when it is approved elsewhere', async () => {
    const order = await mc.client.createOrder({ kind: 'App', name: 'shop', parameters: { image: 'nginx:1.27' } as any });
    await eventuallyOrderState(mc, order.id, 'pr_open');
    await render(mc, `/maxcloud/orders/${order.id}`);

    const view = await screen.findByTestId('order-view');
    expect(within(view).getByTestId('order-state')).toHaveAttribute('data-state', 'pr_open');
    expect(within(view).getByTestId('review-state')).toHaveTextContent('review pending');
    expect(within(view).getByTestId('required-reviewers')).toHaveTextContent('1 approval required');
    expect(within(view).getByTestId('pull-request')).toHaveAttribute('data-pr-state', 'open');
    expect(within(view).getByTestId('pull-request-body')).toHaveTextContent('Creates App shop');
    expect(within(view).getByTestId('approve-order')).toBeInTheDocument();

    // approved through the API (as by another reviewer): the page follows from the event stream
    expect((await mc.admin('POST', `/orders/${order.id}/approve`, {})).status).toBe(200);
    await waitFor(() => expect(within(view).getByTestId('order-state')).toHaveAttribute('data-state', 'merged'), {
      timeout: 5_000,
    });
    expect(within(view).getByTestId('review-state')).toHaveTextContent(/approved by/);
    expect(within(view).getByTestId('pull-request')).toHaveAttribute('data-pr-state', 'merged');
    expect(within(view).queryByTestId('approve-order')).not.toBeInTheDocument();
    expect(within(view).getByTestId('order-history')).toHaveTextContent('Merged');
  });

  it('approves from the page and lists what waits on the Reviews tab', async () => {
    const user = userEvent.setup();
    const order = await mc.client.createOrder({ kind: 'App', name: 'blog', parameters: { image: 'nginx:1.27' } as any });
    await eventuallyOrderState(mc, order.id, 'pr_open');
    await render(mc, '/maxcloud/reviews');

    const reviews = await screen.findByTestId('reviews');
    const link = await within(reviews).findByText('create App blog');
    await user.click(link);
    const view = await screen.findByTestId('order-view');
    await user.click(within(view).getByTestId('approve-order'));
    await waitFor(() => expect(within(view).getByTestId('order-state')).toHaveAttribute('data-state', 'merged'), {
      timeout: 5_000,
    });
    expect((await mc.admin('GET', `/orders/${order.id}`)).body.pull_request.review_state).toBe('approved');

    await user.click(screen.getByRole('tab', { name: 'Reviews' }));
    await waitFor(() => expect(screen.getByTestId('reviews')).toHaveTextContent('No order waits for a review.'));
  });

  it('rejects with a reason', async () => {
    const user = userEvent.setup();
    const order = await mc.client.createOrder({ kind: 'App', name: 'nope', parameters: { image: 'nginx:1.27' } as any });
    await eventuallyOrderState(mc, order.id, 'pr_open');
    await render(mc, `/maxcloud/orders/${order.id}`);
    const view = await screen.findByTestId('order-view');
    await user.click(within(view).getByRole('button', { name: 'Reject…' }));
    await user.type(within(view).getByLabelText('Why is this change refused?'), 'not this quarter');
    await user.click(within(view).getByTestId('reject-order'));
    await waitFor(() => expect(within(view).getByTestId('order-state')).toHaveAttribute('data-state', 'rejected'), {
      timeout: 5_000,
    });
    expect(within(view).getByTestId('order-failure')).toHaveTextContent('not this quarter');
  });
});
