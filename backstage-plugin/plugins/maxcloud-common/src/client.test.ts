import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MaxcloudClient } from './client';
import { MaxcloudApiError } from './errors';
import { MaxcloudEvent } from './types';
// eslint-disable-next-line @backstage/no-relative-monorepo-imports
import { RunningMaxcloud, startMaxcloud } from '../../../testing/maxcloudServer';

describe('MaxcloudClient against maxcloud-server dev', () => {
  let server: RunningMaxcloud;
  let client: MaxcloudClient;

  beforeAll(async () => {
    server = await startMaxcloud();
    const { apiKey } = await server.register('ops@example.com', 'Client Co');
    client = new MaxcloudClient({ baseUrl: server.api, headers: { authorization: `Bearer ${apiKey}` } });
  });
  afterAll(() => server?.stop());

  it('reads the catalog generated from the XRDs', async () => {
    const catalog = await client.catalog();
    expect(catalog.map(e => e.kind).sort()).toEqual(['App', 'DNSRecord', 'Database', 'Registry', 'Workspace']);
    const app = await client.catalogEntry('apps');
    expect(app.kind).toBe('App');
    expect((app.schema as any).properties.image.type).toBe('string');
    expect(app.ui_order[0]).toBe('image');
    expect(app.price).toMatchObject({ currency: 'EUR', monthly_min: '0.00' });
    const estimate = await client.estimate('App', { image: 'nginx', scaling: { minScale: 1, maxScale: 1 } });
    expect(estimate.monthly_min).toBe(estimate.monthly_max);
    expect(Number(estimate.monthly_min)).toBeGreaterThan(0);
  });

  it('places an order, follows it on the event stream and finds the resource', async () => {
    const abort = new AbortController();
    const seen: MaxcloudEvent[] = [];
    const stream = (async () => {
      for await (const event of client.events({ signal: abort.signal })) {
        seen.push(event);
        if (event.type === 'order' && event.data.state === 'merged') break;
      }
    })();
    const order = await client.createOrder(
      { kind: 'App', name: 'shop', parameters: { image: 'nginx:1.27' } },
      { idempotencyKey: 'client-test-1' },
    );
    expect(order.state).toBe('accepted');
    expect(order.parameters).toMatchObject({ image: 'nginx:1.27', port: 8080 });
    await stream;
    abort.abort();
    const states = seen.flatMap(e => (e.type === 'order' && e.data.order_id === order.id ? [e.data.state] : []));
    expect(states).toEqual(['accepted', 'pr_open', 'merged']);
    expect(seen.every(e => e.id !== undefined)).toBe(true);

    const replay = await client.createOrder(
      { kind: 'App', name: 'shop', parameters: { image: 'nginx:1.27' } },
      { idempotencyKey: 'client-test-1' },
    );
    expect(replay.id).toBe(order.id);
    const merged = await client.order(order.id);
    expect(merged.pull_request?.merge_policy).toBe('auto');
    expect(merged.history.map(h => h.state)).toEqual(['accepted', 'pr_open', 'merged']);
    const resources = await client.resources();
    expect(resources).toEqual([expect.objectContaining({ kind: 'App', name: 'shop', path: 'apps/shop.yaml' })]);
    expect((await client.orders()).map(o => o.id)).toContain(order.id);

    // Replaying from an event id gives the events after it, in order.
    const first = seen[0].id!;
    const again: string[] = [];
    const replayAbort = new AbortController();
    for await (const event of client.events({ signal: replayAbort.signal, lastEventId: first })) {
      if (event.type === 'order') again.push(event.data.state);
      if (again.length === 2) break;
    }
    replayAbort.abort();
    expect(again).toEqual(['pr_open', 'merged']);
  });

  it('turns error answers into MaxcloudApiError with the field', async () => {
    const error = await client
      .createOrder({ kind: 'App', name: 'bad', parameters: { image: 'nginx', scaling: { maxScale: 0 } } })
      .catch(e => e);
    expect(error).toBeInstanceOf(MaxcloudApiError);
    expect(error).toMatchObject({ status: 422, code: 'invalid_parameters', field: 'parameters.scaling.maxScale' });
    const several = await client
      .createOrder({ kind: 'App', name: 'bad', parameters: { port: 0, scaling: { maxScale: 0 } } })
      .catch(e => e);
    expect(several.fields.map((f: any) => f.field)).toEqual([
      'parameters.image',
      'parameters.port',
      'parameters.scaling.maxScale',
    ]);
    await expect(client.catalogEntry('nope')).rejects.toMatchObject({ status: 404, code: 'not_found' });
    const anonymous = new MaxcloudClient({ baseUrl: server.api });
    await expect(anonymous.resources()).rejects.toMatchObject({ status: 401, code: 'unauthorized' });
    const broken = new MaxcloudClient({ baseUrl: `${server.url}/healthz-nope` });
    await expect(broken.catalog()).rejects.toBeInstanceOf(MaxcloudApiError);
  });
});

describe('MaxcloudClient: revisions, logs, quotas, invoices and secrets against maxcloud-server dev', () => {
  let server: RunningMaxcloud;
  let admin: MaxcloudClient;
  let member: MaxcloudClient;
  let adminKey: string;
  let slug: string;
  let quotasDir: string;

  beforeAll(async () => {
    // The platform's quota file: limits for every organisation (cpu and memory as Kubernetes quantities).
    quotasDir = mkdtempSync(join(tmpdir(), 'maxcloud-quotas-'));
    const quotas = join(quotasDir, 'quotas.yaml');
    writeFileSync(quotas, 'default:\n  services: 3\n  cpu: "40"\n  memory: 64Gi\n');
    server = await startMaxcloud({ args: ['--quotas', quotas] });
    ({ apiKey: adminKey, slug } = await server.register('ops@limits.example', 'Limits Co'));
    const memberKey = await server.addMember(adminKey, 'dev@limits.example');
    admin = new MaxcloudClient({ baseUrl: server.api, headers: { authorization: `Bearer ${adminKey}` } });
    member = new MaxcloudClient({ baseUrl: server.api, headers: { authorization: `Bearer ${memberKey}` } });
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(quotasDir, { recursive: true, force: true });
  });

  it("reads an App's revisions and traffic split by the resource's id", async () => {
    const created = await server.call(adminKey, 'POST', '/services', { name: 'shop', image: 'nginx:1.27' });
    expect(created.status).toBe(201);
    const id = (await admin.resources()).find(r => r.kind === 'App' && r.name === 'shop')!.id;
    const first = await admin.revisions(id);
    expect(first.service).toBe('shop');
    expect(first.revisions.map(r => [r.name, r.image, r.latest, r.percent])).toEqual([['r1', 'nginx:1.27', true, 100]]);
    const patched = await server.call(adminKey, 'PATCH', `/services/${id}`, { image: 'nginx:1.28' });
    expect(patched.status).toBe(200);
    const second = await member.revisions(id);
    expect(second.latest_revision).toBe('r2');
    expect(second.revisions.map(r => [r.name, r.image, r.latest, r.percent])).toEqual([
      ['r1', 'nginx:1.27', false, 0],
      ['r2', 'nginx:1.28', true, 100],
    ]);
    await expect(admin.revisions('no-such-id')).rejects.toMatchObject({ status: 404, code: 'not_found' });
  });

  it('asks for logs with tail and follow, and passes the refusals on', async () => {
    const id = (await admin.resources()).find(r => r.name === 'shop')!.id;
    // this server reads logs from neither a cluster nor Loki: 503 with the reason
    const unavailable = await (async () => {
      for await (const _ of admin.logs(id, { tail: 5 })) throw new Error('no line expected');
      return undefined;
    })().catch(e => e);
    expect(unavailable).toBeInstanceOf(MaxcloudApiError);
    expect(unavailable).toMatchObject({ status: 503, code: 'unavailable' });
    expect(unavailable.message).toContain('no cluster is connected');
    // the parameters reach the server as query parameters: a tail out of range is refused by name
    const bad = await admin.logs(id, { tail: 0 }).next().catch(e => e);
    expect(bad).toMatchObject({ status: 400, field: 'tail' });
    await expect(admin.logs('no-such-id').next()).rejects.toMatchObject({ status: 404 });
  });

  it('reads the quotas: the limits of the quota file and the totals of the resources', async () => {
    const quota = await member.quotas();
    expect(quota.tenant).toBe(slug);
    expect(quota.limits).toEqual({
      services: 3,
      databases: null,
      max_scale: null,
      cpu_milli: 40_000,
      memory_bytes: 64 * 1024 ** 3,
    });
    // shop: one service at its default maximum scale of 10 instances of 1 vCPU and 512 MiB
    expect(quota.used).toMatchObject({ services: 1, databases: 0, max_scale: 10, cpu_milli: 10_000 });
    expect(quota.used.memory_bytes).toBe(10 * 512 * 1024 ** 2);
  });

  it("previews the running month's invoice for admins only", async () => {
    const month = new Date().toISOString().slice(0, 7);
    const invoice = await admin.invoice();
    expect(invoice).toMatchObject({ tenant: slug, month, number: `${slug}-${month}`, final: false, currency: 'EUR' });
    expect(Number(invoice.gross)).toBeCloseTo(Number(invoice.net) + Number(invoice.vat), 2);
    const previous = await admin.invoice('2026-01');
    expect(previous).toMatchObject({ month: '2026-01', final: true, net: '0.00' });
    const refused = await member.invoice().catch(e => e);
    expect(refused).toBeInstanceOf(MaxcloudApiError);
    expect(refused).toMatchObject({ status: 403, code: 'forbidden' });
    expect(refused.message).toContain('admin');
    await expect(admin.invoice('2026-13')).rejects.toMatchObject({ status: 400 });
  });

  it("lists the secrets' names and key names, never their values", async () => {
    expect(await member.secrets()).toEqual([]);
    const set = await server.call(adminKey, 'PUT', '/secrets/db-creds', {
      data: { USER: 'shop', PASSWORD: 'hunter2-very-secret' },
    });
    expect(set.status).toBe(201);
    const secrets = await member.secrets();
    expect(secrets.map(s => [s.name, s.keys])).toEqual([['db-creds', ['PASSWORD', 'USER']]]);
    expect(JSON.stringify(secrets)).not.toContain('hunter2');
  });
});
