// A Backstage backend with the max-cloud plugins, installed as backstage-plugin/README.md documents for an app
// created with @backstage/create-app: the packages added to packages/backend, one `backend.add` each.
import { createBackend } from '@backstage/backend-defaults';
import { features } from './features';

const backend = createBackend();
for (const feature of features) backend.add(feature);
backend.start();
