import { MaxcloudClient } from '@maxcloud/backstage-plugin-maxcloud-common';
// The shared test support of the workspace starts the real order service; it is no package of its own.
// eslint-disable-next-line @backstage/no-relative-monorepo-imports
import { RunningMaxcloud, startMaxcloud } from '../../../../testing/maxcloudServer';

/** A real `maxcloud-server dev` with one registered organisation, and a client acting as its admin. */
export interface TestMaxcloud {
  server: RunningMaxcloud;
  slug: string;
  apiKey: string;
  client: MaxcloudClient;
  /** A JSON call as the organisation's admin. */
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  /** A client acting as a new member (not an admin) of the organisation. */
  member(email: string): Promise<MaxcloudClient>;
}

/** `options`: more flags and environment of `maxcloud-server dev` (a quota file, a Loki). */
export async function startTestMaxcloud(
  org: string,
  options: { args?: string[]; env?: Record<string, string> } = {},
): Promise<TestMaxcloud> {
  const server = await startMaxcloud(options);
  const { slug, apiKey } = await server.register(`admin@${org.toLowerCase().replace(/\W+/g, '')}.example`, org);
  const client = new MaxcloudClient({
    baseUrl: server.api,
    headers: { authorization: `Bearer ${apiKey}` },
  });
  return {
    server,
    slug,
    apiKey,
    client,
    admin: (method, path, body) => server.call(apiKey, method, path, body),
    async member(email) {
      const key = await server.addMember(apiKey, email);
      return new MaxcloudClient({ baseUrl: server.api, headers: { authorization: `Bearer ${key}` } });
    },
  };
}
