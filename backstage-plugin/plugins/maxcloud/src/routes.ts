import { createRouteRef } from '@backstage/frontend-plugin-api';
import { createRouteRef as createLegacyRouteRef } from '@backstage/core-plugin-api';

/** The max-cloud page (new frontend system). */
export const rootRouteRef = createRouteRef();

/** The max-cloud page (legacy apps). */
export const legacyRootRouteRef = createLegacyRouteRef({ id: 'maxcloud' });
