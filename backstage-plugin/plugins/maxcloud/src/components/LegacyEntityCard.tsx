import { useRouteRef } from '@backstage/core-plugin-api';
import { MaxcloudEntityCard } from './EntityMaxcloudCard';
import { legacyRootRouteRef } from '../routes';

function useRootPath(): string | undefined {
  try {
    // eslint-disable-next-line react-hooks/rules-of-hooks
    return useRouteRef(legacyRootRouteRef)();
  } catch {
    // the app does not mount MaxcloudPage: links use the default path
    return undefined;
  }
}

/** The entity card in legacy apps. */
export function LegacyEntityMaxcloudCard() {
  return <MaxcloudEntityCard rootPath={useRootPath()} />;
}
