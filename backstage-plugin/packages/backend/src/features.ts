// The backend's features; src/index.ts starts them, the test starts the same list with startTestBackend.
// (An app's packages/backend/src/index.ts writes `backend.add(import('…'))` for each; static imports let the
// test share the list.)
import authPlugin from '@backstage/plugin-auth-backend';
import guestProvider from '@backstage/plugin-auth-backend-module-guest-provider';
import catalogPlugin from '@backstage/plugin-catalog-backend';
import templateEntityModel from '@backstage/plugin-catalog-backend-module-scaffolder-entity-model';
import scaffolderPlugin from '@backstage/plugin-scaffolder-backend';
import maxcloudPlugin from '@maxcloud/backstage-plugin-maxcloud-backend';
import scaffolderModuleMaxcloud from '@maxcloud/backstage-plugin-scaffolder-backend-module-maxcloud';
import catalogModuleMaxcloud from '@maxcloud/backstage-plugin-catalog-backend-module-maxcloud';

export const features = [
  // What an app created with @backstage/create-app already has (here: the parts the max-cloud plugins use).
  authPlugin,
  guestProvider,
  catalogPlugin,
  templateEntityModel,
  scaffolderPlugin,
  // max-cloud: the browser's path to the order service, the order action, the entity provider.
  maxcloudPlugin,
  scaffolderModuleMaxcloud,
  catalogModuleMaxcloud,
];
