import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { renderInTestApp } from '@backstage/frontend-test-utils';
import { maxcloudApiRef } from '../api';
import { MaxcloudRouter } from './MaxcloudRouter';
import { startTestMaxcloud, TestMaxcloud } from './testUtils';

jest.setTimeout(60_000);

function field(id: string): HTMLInputElement {
  const el = document.getElementById(id);
  if (!el) throw new Error(`no form field #${id}`);
  return el as HTMLInputElement;
}

async function openForm(mc: TestMaxcloud, kind: string) {
  await renderInTestApp(<MaxcloudRouter />, {
    apis: [[maxcloudApiRef, mc.client]],
    mountPath: '/maxcloud',
    initialRouteEntries: [`/maxcloud/order/${kind}`],
  });
  await screen.findByTestId('order-form', {}, { timeout: 10_000 });
  // wait until the event stream is open, so the live part of the test does not race the connection
  await waitFor(() => expect(screen.getByTestId('order-name')).toBeInTheDocument());
}

describe('Order form against maxcloud-server dev', () => {
  let mc: TestMaxcloud;
  beforeAll(async () => {
    mc = await startTestMaxcloud('Form Co');
  });
  afterAll(() => mc?.server.stop());

  it("is generated from the type's JSON Schema: defaults, enums, descriptions, x-ui-order", async () => {
    await openForm(mc, 'App');
    expect(field('root_port').value).toBe('8080');
    expect(field('root_scaling_maxScale').value).toBe('10');
    expect(field('root_resources_memory').value).toBe('512Mi');
    // descriptions are the help of each field
    expect(screen.getByText('TCP port the container listens on for HTTP requests.')).toBeInTheDocument();
    // an enum is a select showing its default
    const visibility = field('root_visibility');
    expect(visibility.closest('.MuiFormControl-root')).toHaveTextContent('public');
    // x-ui-order: image, port, env, ... before the fields it does not list
    const order = ['root_image', 'root_port', 'root_scaling_minScale', 'root_resources_cpu', 'root_visibility'];
    const all = Array.from(document.querySelectorAll('[id^="root_"]'));
    const idx = order.map(id => all.findIndex(el => el.id === id));
    expect(idx.every(i => i >= 0)).toBe(true);
    expect([...idx].sort((a, b) => a - b)).toEqual(idx);
    // what happens to the order: the type's merge policy and its price
    expect(screen.getByText('merges at once')).toBeInTheDocument();
    expect(screen.getByTestId('order-price')).toHaveTextContent(/at the defaults: EUR 0\.00–\d+\.\d\d per month/);
  });

  it('prices the parameters as they change', async () => {
    const user = userEvent.setup();
    await openForm(mc, 'App');
    await user.type(field('root_image'), 'nginx:1.27');
    await user.clear(field('root_scaling_minScale'));
    await user.type(field('root_scaling_minScale'), '1');
    await user.clear(field('root_scaling_maxScale'));
    await user.type(field('root_scaling_maxScale'), '3');
    const expected = (await mc.client.estimate('App', {
      image: 'nginx:1.27',
      scaling: { minScale: 1, maxScale: 3 },
    })) as { monthly_min: string; monthly_max: string };
    await waitFor(() =>
      expect(screen.getByTestId('order-price')).toHaveTextContent(
        `with these parameters: EUR ${expected.monthly_min}–${expected.monthly_max} per month`,
      ),
    );
    expect(screen.getByTestId('order-price')).toHaveTextContent('1–3 instances');
  });

  it("shows the order service's field errors inline, then places the order and follows it live", async () => {
    const user = userEvent.setup();
    await openForm(mc, 'App');
    await user.type(screen.getByTestId('order-name'), 'a-very-long-name-that-exceeds-the-limit-of-sixty-three-characters');
    await user.type(field('root_image'), 'nginx:1.27');
    await user.clear(field('root_scaling_minScale'));
    await user.type(field('root_scaling_minScale'), '5');
    await user.clear(field('root_scaling_maxScale'));
    await user.type(field('root_scaling_maxScale'), '2');
    await user.click(screen.getByTestId('order-submit'));

    // the name is judged first by the order service
    await waitFor(() =>
      expect(document.getElementById('maxcloud-order-name-helper-text')).toHaveTextContent(
        /must be at most 63 characters long/,
      ),
    );
    await user.clear(screen.getByTestId('order-name'));
    await user.type(screen.getByTestId('order-name'), 'web');
    await user.click(screen.getByTestId('order-submit'));

    // minScale > maxScale passes the JSON Schema but not the XRD's CEL rule: an inline error at the field
    await waitFor(() => expect(document.getElementById('root_scaling_minScale__error')).toHaveTextContent('minScale must not exceed maxScale'));
    expect(screen.getByTestId('order-error')).toHaveTextContent('parameters.scaling.minScale');
    expect(document.getElementById('root_scaling_maxScale__error')).toBeNull();
    expect((await mc.admin('GET', '/orders')).body).toEqual([]);

    await user.clear(field('root_scaling_maxScale'));
    await user.type(field('root_scaling_maxScale'), '20');
    await user.click(screen.getByTestId('order-submit'));

    const view = await screen.findByTestId('order-view', {}, { timeout: 10_000 });
    expect(within(view).getByTestId('order-resource-name')).toHaveTextContent('web');
    // auto-merged in dev: the page follows accepted → pr_open → merged from the event stream
    await waitFor(() => expect(within(view).getByTestId('order-state')).toHaveAttribute('data-state', 'merged'), { timeout: 10_000 });
    expect(within(view).getByTestId('pull-request-title')).toHaveTextContent('Pull request #1');
    expect(within(view).getByTestId('pull-request-body')).toHaveTextContent('Creates App web of tenant');
    expect(within(view).getByTestId('review-state')).toHaveTextContent('no review needed');

    const orders = (await mc.admin('GET', '/orders')).body;
    expect(orders).toHaveLength(1);
    expect(orders[0]).toMatchObject({
      kind: 'App',
      name: 'web',
      state: 'merged',
      parameters: { image: 'nginx:1.27', port: 8080, scaling: { minScale: 5, maxScale: 20 }, visibility: 'public' },
    });
    expect(orders[0].idempotency_key).toMatch(/^backstage-/);
    // only what was chosen (and the defaults), not the empty lists the form starts with
    expect(orders[0].parameters).not.toHaveProperty('args');
    expect(orders[0].parameters).not.toHaveProperty('env');
  });
});
