/**
 * Development app of the max-cloud plugin on the new frontend system (`npm start` here): the plugin as a
 * Backstage app installs it, with Backstage's sign-in page (the guest provider of the dev backend, so every
 * request carries a real Backstage user token to the `maxcloud` backend plugin), plus two dev-only pages:
 * `/` leads to `/maxcloud`, and `/entity-card?resource=App/shop&tenant=acme` shows the entity card for a
 * catalog entity with those annotations.
 *
 * Configuration: ../../../app-config.yaml (the backend's URL); start the dev backend in
 * plugins/maxcloud-backend first.
 */
import ReactDOM from 'react-dom/client';
import { createApp } from '@backstage/frontend-defaults';
// The dev app is an app: it loads Backstage UI's styles as createDevApp of @backstage/frontend-dev-utils does.
// eslint-disable-next-line @backstage/no-ui-css-imports-in-non-frontend
import '@backstage/ui/css/styles.css';
import maxcloudPlugin from '../src';
import { devPlugin } from './devPlugin';

const app = createApp({ features: [maxcloudPlugin, devPlugin] });

ReactDOM.createRoot(document.getElementById('root')!).render(app.createRoot());
