/**
 * Test support: Backstage's user info service as the catalog would answer it, from a table of each user's
 * ownership refs (their user ref and their groups). A user missing from the table owns only themselves.
 */
import type { BackstageCredentials, UserInfoService } from '@backstage/backend-plugin-api';

export function userInfoOf(ownership: Record<string, string[]>): UserInfoService {
  return {
    async getUserInfo(credentials: BackstageCredentials) {
      const ref = (credentials.principal as { userEntityRef: string }).userEntityRef;
      return { userEntityRef: ref, ownershipEntityRefs: ownership[ref] ?? [ref] };
    },
  };
}
