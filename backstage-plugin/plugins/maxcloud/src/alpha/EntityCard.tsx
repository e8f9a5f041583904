import { useRouteRef } from '@backstage/frontend-plugin-api';
import { MaxcloudEntityCard } from '../components/EntityMaxcloudCard';
import { rootRouteRef } from '../routes';

/** The entity card in the new frontend system: links go to where the app mounts the max-cloud page. */
export function NfsEntityMaxcloudCard() {
  const root = useRouteRef(rootRouteRef);
  return <MaxcloudEntityCard rootPath={root?.()} />;
}
