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

async function render(mc: TestMaxcloud, path: string) {
  await renderInTestApp(<MaxcloudRouter />, {
    apis: [[maxcloudApiRef, mc.client]],
    mountPath: '/maxcloud',
    initialRouteEntries: [path],
  });
}

/** Waits until the order reaches `state` on the order service. */
async function orderReaches(mc: TestMaxcloud, id: string, state: string) {
  await waitFor(
    async () => expect((await mc.admin('GET', `/orders/${id}`)).body.state).toBe(state),
    { timeout: 10_000 },
  );
}

async function resource(mc: TestMaxcloud, kind: string, name: string) {
  return (await mc.admin('GET', '/resources')).body.find((r: any) => r.kind === kind && r.name === name);
}

async function ordersOf(mc: TestMaxcloud, name: string): Promise<any[]> {
  return (await mc.admin('GET', '/orders')).body.filter((o: any) => o.name === name);
}

describe('Changing and deleting a resource against maxcloud-server dev', () => {
  let mc: TestMaxcloud;
  beforeAll(async () => {
    mc = await startTestMaxcloud('Change Co');
  });
  afterAll(() => mc?.server.stop());

  it("changes an App through the form prefilled with its spec: an update order with the other values kept", async () => {
    const created = await mc.client.createOrder({
      kind: 'App',
      name: 'web',
      parameters: { image: 'nginx:1.27', port: 9090, scaling: { minScale: 1, maxScale: 3 }, visibility: 'internal' } as any,
    });
    await orderReaches(mc, created.id, 'merged');
    const before = await resource(mc, 'App', 'web');

    const user = userEvent.setup();
    await render(mc, '/maxcloud/services/App/web');
    const detail = await screen.findByTestId('service-detail', {}, { timeout: 10_000 });
    await user.click(within(detail).getByTestId('service-change'));

    // the same generated form, prefilled with the resource's spec; the name is fixed
    await screen.findByTestId('order-form', {}, { timeout: 10_000 });
    expect(screen.getByText('Change App web')).toBeInTheDocument();
    const name = screen.getByTestId('order-name') as HTMLInputElement;
    expect(name.value).toBe('web');
    expect(name.readOnly).toBe(true);
    await user.type(name, 'x');
    expect(name.value).toBe('web');
    expect(field('root_image').value).toBe('nginx:1.27');
    expect(field('root_port').value).toBe('9090');
    expect(field('root_scaling_minScale').value).toBe('1');
    expect(field('root_scaling_maxScale').value).toBe('3');
    expect(field('root_visibility').closest('.MuiFormControl-root')).toHaveTextContent('internal');

    await user.clear(field('root_scaling_maxScale'));
    await user.type(field('root_scaling_maxScale'), '7');
    await user.click(screen.getByTestId('order-submit'));

    // on to the order page, as a create goes
    const view = await screen.findByTestId('order-view', {}, { timeout: 10_000 });
    expect(within(view).getByTestId('order-resource-name')).toHaveTextContent('web');
    await waitFor(() => expect(within(view).getByTestId('order-state')).toHaveAttribute('data-state', 'merged'), {
      timeout: 10_000,
    });
    expect(within(view).getByTestId('pull-request-body')).toHaveTextContent(/App web/);

    const orders = await ordersOf(mc, 'web');
    expect(orders).toHaveLength(2);
    const update = orders.find(o => o.action === 'update');
    expect(update).toMatchObject({ kind: 'App', name: 'web', state: 'merged' });
    expect(update.id).toBe(view.getAttribute('data-order-id'));
    expect(update.idempotency_key).toMatch(/^backstage-/);
    expect(update.parameters).toMatchObject({
      image: 'nginx:1.27',
      port: 9090,
      scaling: { minScale: 1, maxScale: 7 },
      visibility: 'internal',
    });
    // everything else of the spec is what it was; only maxScale changed
    const after = await resource(mc, 'App', 'web');
    expect(after.spec).toEqual({ ...before.spec, scaling: { ...before.spec.scaling, maxScale: 7 } });
  });

  it("shows the order service's field errors of a change inline, and orders nothing", async () => {
    const created = await mc.client.createOrder({
      kind: 'App',
      name: 'api',
      parameters: { image: 'nginx:1.27', scaling: { minScale: 1, maxScale: 3 } } as any,
    });
    await orderReaches(mc, created.id, 'merged');

    const user = userEvent.setup();
    await render(mc, '/maxcloud/services/App/api/edit');
    await screen.findByTestId('order-form', {}, { timeout: 10_000 });
    expect(field('root_scaling_maxScale').value).toBe('3');
    await user.clear(field('root_scaling_minScale'));
    await user.type(field('root_scaling_minScale'), '5');
    await user.click(screen.getByTestId('order-submit'));

    // minScale > maxScale: the XRD's CEL rule, judged by the order service, shown at the field
    await waitFor(() =>
      expect(document.getElementById('root_scaling_minScale__error')).toHaveTextContent(
        'minScale must not exceed maxScale',
      ),
    );
    expect(screen.getByTestId('order-error')).toHaveTextContent('parameters.scaling.minScale');
    expect(screen.queryByTestId('order-view')).toBeNull();
    expect((await ordersOf(mc, 'api')).map(o => o.action)).toEqual(['create']);
    expect((await resource(mc, 'App', 'api')).spec.scaling).toMatchObject({ minScale: 1, maxScale: 3 });
  });

  it('shows a refused change as an alert: the resource was deleted elsewhere meanwhile', async () => {
    const created = await mc.client.createOrder({
      kind: 'App',
      name: 'gone',
      parameters: { image: 'nginx:1.27' } as any,
    });
    await orderReaches(mc, created.id, 'merged');

    const user = userEvent.setup();
    await render(mc, '/maxcloud/services/App/gone/edit');
    await screen.findByTestId('order-form', {}, { timeout: 10_000 });
    const deleted = await mc.client.createOrder({ kind: 'App', name: 'gone', action: 'delete' });
    await orderReaches(mc, deleted.id, 'merged');

    await user.click(screen.getByTestId('order-submit'));
    const alert = await screen.findByTestId('order-error', {}, { timeout: 10_000 });
    expect(alert.textContent).toMatch(/not found|being deleted/);
    expect(screen.getByTestId('order-form')).toBeInTheDocument();
    expect((await ordersOf(mc, 'gone')).map(o => o.action).sort()).toEqual(['create', 'delete']);
  });

  it('deletes an App after a confirmation: a delete order that is merged, and the resource is gone', async () => {
    const created = await mc.client.createOrder({
      kind: 'App',
      name: 'old',
      parameters: { image: 'nginx:1.27' } as any,
    });
    await orderReaches(mc, created.id, 'merged');

    const user = userEvent.setup();
    await render(mc, '/maxcloud/services/App/old');
    const detail = await screen.findByTestId('service-detail', {}, { timeout: 10_000 });
    await user.click(within(detail).getByTestId('service-delete'));

    const dialog = await screen.findByRole('dialog');
    expect(dialog).toHaveTextContent('Delete App old?');
    const explanation = within(dialog).getByTestId('delete-explanation');
    expect(explanation).toHaveTextContent('A pull request removes the file of App old (apps/old.yaml)');
    expect(explanation).toHaveTextContent('Flux prunes');
    await waitFor(() => expect(explanation).toHaveTextContent('needs no review'));
    // nothing is ordered before the confirmation
    expect((await ordersOf(mc, 'old')).map(o => o.action)).toEqual(['create']);
    await user.click(within(dialog).getByTestId('delete-confirm'));

    const view = await screen.findByTestId('order-view', {}, { timeout: 10_000 });
    expect(view).toHaveTextContent('delete App old');
    // Apps are deleted without review: the pull request is merged at once
    await waitFor(() => expect(within(view).getByTestId('order-state')).toHaveAttribute('data-state', 'merged'), {
      timeout: 10_000,
    });
    const orders = await ordersOf(mc, 'old');
    const del = orders.find(o => o.action === 'delete');
    expect(del).toMatchObject({ kind: 'App', name: 'old', state: 'merged' });
    expect(del.id).toBe(view.getAttribute('data-order-id'));

    // the order service forgets the resource once its delete is merged (Flux prunes it from the cluster)
    expect(await resource(mc, 'App', 'old')).toBeUndefined();
    await user.click(within(view).getByTestId('order-service-link'));
    expect(await screen.findByTestId('service-missing', {}, { timeout: 10_000 })).toHaveTextContent(
      'no App called old',
    );
  });

  it('says when deleting needs review, and offers neither change nor delete while a resource is being deleted', async () => {
    const created = await mc.client.createOrder({ kind: 'Database', name: 'db', parameters: {} as any });
    expect((await mc.admin('POST', `/orders/${created.id}/approve`, {})).status).toBe(200);
    await orderReaches(mc, created.id, 'merged');

    const user = userEvent.setup();
    await render(mc, '/maxcloud/services/Database/db');
    const detail = await screen.findByTestId('service-detail', {}, { timeout: 10_000 });
    await user.click(within(detail).getByTestId('service-delete'));
    const dialog = await screen.findByRole('dialog');
    await waitFor(() =>
      expect(within(dialog).getByTestId('delete-explanation')).toHaveTextContent(
        'Deleting a Database needs review',
      ),
    );
    await user.click(within(dialog).getByText('Cancel'));
    await waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());
    expect((await ordersOf(mc, 'db')).map(o => o.action)).toEqual(['create']);

    // deleted elsewhere; the delete waits for review, the resource is `deleting`, and the page follows live
    await mc.client.createOrder({ kind: 'Database', name: 'db', action: 'delete' });
    expect((await resource(mc, 'Database', 'db')).status).toBe('deleting');
    expect(await within(detail).findByTestId('service-being-deleted', {}, { timeout: 10_000 })).toBeInTheDocument();
    expect(within(detail).queryByTestId('service-change')).toBeNull();
    expect(within(detail).queryByTestId('service-delete')).toBeNull();
  });

  it('does not offer the change form of a resource being deleted', async () => {
    const created = await mc.client.createOrder({ kind: 'Database', name: 'db2', parameters: {} as any });
    expect((await mc.admin('POST', `/orders/${created.id}/approve`, {})).status).toBe(200);
    await orderReaches(mc, created.id, 'merged');
    await mc.client.createOrder({ kind: 'Database', name: 'db2', action: 'delete' });

    await render(mc, '/maxcloud/services/Database/db2/edit');
    expect(await screen.findByTestId('service-deleting', {}, { timeout: 10_000 })).toHaveTextContent(
      'Database db2 is being deleted',
    );
    expect(screen.queryByTestId('order-form')).toBeNull();
  });
});
